"""HTTP(S) probes against real servers on loopback (http.server threads, openssl-made certs)."""

from __future__ import annotations

import http.server
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.formats.ioc_json import parse_ioc_json
from ingest.formats.model import RawReading
from ingest.probe import (
    Endpoint,
    ProbeResult,
    _der_not_after,
    probe,
    probe_all,
    to_ioc_json,
)

SLOW_S = 10.0  # how long /slow keeps the client waiting, unless the fixture releases it sooner
SHORT_TIMEOUT_S = 0.5  # the budget of probes meant to time out
DAY_S = 86_400


class _Server(http.server.ThreadingHTTPServer):
    """A loopback test server that records the paths asked for and can hold /slow requests."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.paths: list[str] = []
        self.release = threading.Event()
        self.slow_started = threading.Event()
        self.slow_finished = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients hanging up (timed-out probes, refused certificates) are expected here."""


class _Handler(http.server.BaseHTTPRequestHandler):
    """/ok 200, /fail 500, /redirect 302 to /ok, /slow 200 after SLOW_S; anything else 404."""

    server: _Server
    timeout = 30  # a client that never speaks cannot hold a handler thread for ever

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()  # here, not in the accept loop
        super().setup()

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        if self.path == "/slow":
            self.server.slow_started.set()
            self.server.release.wait(SLOW_S)
            self.server.slow_finished.set()
        status = {"/ok": 200, "/fail": 500, "/redirect": 302, "/slow": 200}.get(self.path, 404)
        body = f"status {status}\n".encode()
        self.send_response(status)
        if status == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@dataclass(frozen=True)
class Served:
    """A running test server and the base URL to reach it."""

    server: _Server
    base: str


@contextmanager
def _serve(server: _Server, scheme: str) -> Iterator[Served]:
    """Run server in a thread for the duration of a test, then release /slow and stop it."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Served(server, f"{scheme}://127.0.0.1:{server.server_address[1]}")
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


@pytest.fixture
def http_server() -> Iterator[Served]:
    with _serve(_Server(), "http") as served:
        yield served


@dataclass(frozen=True)
class Certs:
    """A test CA and a server certificate it issued for localhost and 127.0.0.1."""

    ca: Path
    cert: Path
    key: Path
    not_after_s: float  # the server certificate's notAfter, as openssl prints it


def _openssl(*args: str | Path) -> str:
    """Run the openssl CLI, failing the test with its stderr if it refuses."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "the HTTPS tests need the openssl command"
    done = subprocess.run(
        [openssl, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _not_after(cert: Path) -> float:
    """A certificate's notAfter in epoch seconds, as read by openssl (not by the code tested)."""
    line = _openssl("x509", "-in", cert, "-noout", "-enddate").strip()
    return float(ssl.cert_time_to_seconds(line.removeprefix("notAfter=")))


def _make_certs(directory: Path, days: int, names: str = "DNS:localhost,IP:127.0.0.1") -> Certs:
    """Generate a CA and a server certificate for ``names`` valid for ``days`` days from now."""
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    _openssl(
        "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", str(days),
        "-subj", "/CN=IOC probe test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    extensions = directory / "server.ext"
    extensions.write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={names}\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid\n"
    )
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    _openssl("req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", str(days), "-extfile", extensions,
    )  # fmt: skip
    return Certs(ca, cert, key, _not_after(cert))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return _make_certs(tmp_path_factory.mktemp("certs"), days=30)


def _https(certs: Certs) -> _Server:
    """A test server speaking TLS with the given server certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.cert, certs.key)
    server = _Server()
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    return server


@pytest.fixture
def https_server(certs: Certs) -> Iterator[Served]:
    with _serve(_https(certs), "https") as served:
        yield served


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback URL whose port is bound but not listening, so connecting is refused."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{holder.getsockname()[1]}/"


# --- plain HTTP -----------------------------------------------------------------------------


def test_healthy_endpoint_is_up(http_server: Served) -> None:
    result = probe(Endpoint("01-probe-dvc", f"{http_server.base}/ok"))
    assert result.up
    assert result.status == 200
    assert result.latency_ms is not None
    assert result.latency_ms > 0
    assert result.error is None
    assert result.cert_days_left is None  # plain HTTP has no certificate
    assert (result.source_id, result.url) == ("01-probe-dvc", f"{http_server.base}/ok")


def test_time_ns_is_when_the_probe_started(http_server: Served) -> None:
    result = probe(Endpoint("s", f"{http_server.base}/ok"), now=lambda: 1_751_328_000_123_456_789)
    assert result.time_ns == 1_751_328_000_123_456_789

    before = time.time_ns()
    result = probe(Endpoint("s", f"{http_server.base}/ok"))
    assert before <= result.time_ns <= time.time_ns()


def test_server_error_is_down_with_its_status(http_server: Served) -> None:
    result = probe(Endpoint("s", f"{http_server.base}/fail"))
    assert not result.up
    assert result.status == 500
    assert result.error == "status 500"
    assert result.latency_ms is not None  # it did answer


def test_redirect_is_an_answer_and_is_not_followed(http_server: Served) -> None:
    result = probe(Endpoint("s", f"{http_server.base}/redirect"))
    assert (result.up, result.status, result.error) == (True, 302, None)
    assert http_server.server.paths == ["/redirect"]

    strict = probe(Endpoint("s", f"{http_server.base}/redirect", ok_status=(200, 299)))
    assert (strict.up, strict.status, strict.error) == (False, 302, "status 302")


def test_slow_server_times_out_before_it_answers(http_server: Served) -> None:
    start = time.monotonic()
    result = probe(Endpoint("s", f"{http_server.base}/slow", timeout_s=SHORT_TIMEOUT_S))
    elapsed = time.monotonic() - start

    assert not result.up
    assert result.error == "timeout after 0.5 s"
    assert (result.status, result.latency_ms) == (None, None)
    # Ordering, not a tight wall-clock limit: the probe gave up while the server still held it.
    assert not http_server.server.slow_finished.is_set()
    assert elapsed < SLOW_S
    assert http_server.server.slow_started.wait(30)  # the request did reach the server


def test_refused_connection(refused_url: str) -> None:
    result = probe(Endpoint("s", refused_url))
    assert not result.up
    assert result.error == "connection refused"
    assert (result.status, result.latency_ms, result.cert_days_left) == (None, None, None)


def test_unknown_host_is_a_dns_error() -> None:
    # .invalid never resolves (RFC 2606); the generous budget lets a slow resolver say so.
    result = probe(Endpoint("s", "http://ioc-probe-test.invalid/", timeout_s=30))
    assert not result.up
    assert result.error is not None
    assert result.error.startswith("dns: "), result.error


# --- HTTPS ----------------------------------------------------------------------------------


def test_https_with_the_issuing_ca_is_up_and_reports_days_left(
    https_server: Served, certs: Certs
) -> None:
    result = probe(Endpoint("s", f"{https_server.base}/ok", ca_file=str(certs.ca)))
    assert (result.up, result.status, result.error) == (True, 200, None)
    assert result.cert_days_left is not None
    assert 29 < result.cert_days_left <= 30.01


def test_https_days_left_count_from_now_and_go_negative(https_server: Served, certs: Certs) -> None:
    endpoint = Endpoint("s", f"{https_server.base}/ok", ca_file=str(certs.ca))
    five_days_before = int((certs.not_after_s - 5 * DAY_S) * 1e9)
    two_days_after = int((certs.not_after_s + 2 * DAY_S) * 1e9)
    assert probe(endpoint, now=lambda: five_days_before).cert_days_left == pytest.approx(5.0)
    assert probe(endpoint, now=lambda: two_days_after).cert_days_left == pytest.approx(-2.0)


def test_https_unverifiable_certificate_is_down_but_reports_days_left(
    https_server: Served, certs: Certs
) -> None:
    # Without the test CA the chain cannot be verified against the system store.
    result = probe(Endpoint("s", f"{https_server.base}/ok"))
    assert not result.up
    assert result.error is not None
    assert result.error.startswith("tls: certificate verify failed: "), result.error
    assert (result.status, result.latency_ms) == (None, None)
    assert https_server.server.paths == []  # no request goes out over an unverified channel
    # ...but a second, unverified handshake still tells how long the certificate has left.
    assert result.cert_days_left is not None
    assert 29 < result.cert_days_left <= 30.01


def test_https_certificate_for_another_name_is_a_tls_error(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    other = _make_certs(tmp_path_factory.mktemp("other"), days=30, names="DNS:elsewhere.example")
    with _serve(_https(other), "https") as served:
        result = probe(Endpoint("s", f"{served.base}/ok", ca_file=str(other.ca)))
    assert not result.up
    assert result.error is not None
    assert result.error.startswith("tls: certificate verify failed: "), result.error
    assert "mismatch" in result.error
    assert result.cert_days_left is not None  # the chain is fine, the name is not
    assert 29 < result.cert_days_left <= 30.01


def test_https_url_against_a_plain_http_server_is_a_tls_error(http_server: Served) -> None:
    url = http_server.base.replace("http://", "https://") + "/ok"
    result = probe(Endpoint("s", url))
    assert not result.up
    assert result.error is not None
    assert result.error.startswith("tls: "), result.error


def test_unreadable_ca_file_is_reported_not_raised(tmp_path: Path, https_server: Served) -> None:
    result = probe(Endpoint("s", f"{https_server.base}/ok", ca_file=str(tmp_path / "none.pem")))
    assert not result.up
    assert result.error is not None
    assert result.error.startswith("tls: cannot load ca_file: "), result.error


@pytest.mark.parametrize("days", [30, 12_000], ids=["UTCTime", "GeneralizedTime"])
def test_der_not_after_agrees_with_openssl(tmp_path: Path, days: int) -> None:
    # notAfter before 2050 is a UTCTime, from 2050 on a GeneralizedTime (RFC 5280 4.1.2.5).
    made = _make_certs(tmp_path, days)
    der = ssl.PEM_cert_to_DER_cert(made.cert.read_text())
    assert _der_not_after(der) == made.not_after_s
    ca_der = ssl.PEM_cert_to_DER_cert(made.ca.read_text())
    assert _der_not_after(ca_der) == _not_after(made.ca)


@pytest.mark.parametrize("der", [b"", b"\x30", b"\x30\x82\xff\xff\x30", b"\x02\x01\x00"])
def test_der_not_after_refuses_what_is_not_a_certificate(der: bytes) -> None:
    with pytest.raises(ValueError, match="certificate"):
        _der_not_after(der)


# --- several endpoints ----------------------------------------------------------------------


def test_probe_all_keeps_input_order_and_runs_concurrently(http_server: Served) -> None:
    slow = Endpoint("s-slow", f"{http_server.base}/slow", timeout_s=SHORT_TIMEOUT_S)
    healthy = Endpoint("s-ok", f"{http_server.base}/ok", timeout_s=30)
    failing = Endpoint("s-fail", f"{http_server.base}/fail", timeout_s=30)

    results = probe_all([slow, healthy, failing])

    assert [r.source_id for r in results] == ["s-slow", "s-ok", "s-fail"]
    assert [r.error for r in results] == ["timeout after 0.5 s", None, "status 500"]
    slow_result, healthy_result, _ = results
    # The healthy probe did not queue behind the slow one: it started before the slow one gave
    # up, and its own latency does not contain the slow one's wait.
    assert healthy_result.time_ns - slow_result.time_ns < SHORT_TIMEOUT_S * 1e9
    assert healthy_result.latency_ms is not None
    assert healthy_result.latency_ms < SHORT_TIMEOUT_S * 1000
    assert not http_server.server.slow_finished.is_set()


def test_probe_all_with_one_worker_still_keeps_order(http_server: Served, refused_url: str) -> None:
    endpoints = [
        Endpoint("a", f"{http_server.base}/fail"),
        Endpoint("b", refused_url),
        Endpoint("c", f"{http_server.base}/ok"),
    ]
    results = probe_all(endpoints, max_workers=1)
    assert [(r.source_id, r.error) for r in results] == [
        ("a", "status 500"),
        ("b", "connection refused"),
        ("c", None),
    ]


def test_probe_all_edge_cases() -> None:
    assert probe_all([]) == ()
    with pytest.raises(ValueError, match="max_workers"):
        probe_all([], max_workers=0)


# --- IOC JSON -------------------------------------------------------------------------------

T_NS = 1_751_328_000_123_456_789  # 2025-07-01T00:00:00.123456789Z
T_MS_NS = 1_751_328_000_123_000_000  # the same, cut to the millisecond that time_ms carries


def test_ioc_json_of_an_up_result_round_trips() -> None:
    result = ProbeResult(
        "01-probe-dvc", "https://dvc.example.vn/", T_NS, True, 200, 12.5, 41.25, None
    )
    ((source, payload),) = to_ioc_json([result])
    assert source == "01-probe-dvc"
    assert parse_ioc_json(payload) == (
        RawReading("01-probe-dvc", "probe_up", True, None, T_MS_NS),
        RawReading("01-probe-dvc", "probe_status", 200.0, None, T_MS_NS),
        RawReading("01-probe-dvc", "probe_latency_ms", 12.5, "ms", T_MS_NS),
        RawReading("01-probe-dvc", "probe_cert_days", 41.25, "d", T_MS_NS),
    )


def test_ioc_json_of_a_down_result_leaves_out_unknown_values() -> None:
    refused = ProbeResult("a", "http://a/", T_NS, False, None, None, None, "connection refused")
    failing = ProbeResult("b", "http://b/", T_NS, False, 503, 8.0, None, "status 503")
    expired = ProbeResult("c", "https://c/", T_NS, False, None, None, -3.5, "tls: ...")
    encoded = to_ioc_json([refused, failing, expired])
    assert [source for source, _ in encoded] == ["a", "b", "c"]
    assert [parse_ioc_json(payload) for _, payload in encoded] == [
        (RawReading("a", "probe_up", False, None, T_MS_NS),),
        (
            RawReading("b", "probe_up", False, None, T_MS_NS),
            RawReading("b", "probe_status", 503.0, None, T_MS_NS),
            RawReading("b", "probe_latency_ms", 8.0, "ms", T_MS_NS),
        ),
        (
            RawReading("c", "probe_up", False, None, T_MS_NS),
            RawReading("c", "probe_cert_days", -3.5, "d", T_MS_NS),
        ),
    ]


def test_ioc_json_of_real_probes_parses(http_server: Served, refused_url: str) -> None:
    results = probe_all([Endpoint("ok", f"{http_server.base}/ok"), Endpoint("no", refused_url)])
    for (source, payload), result in zip(to_ioc_json(results), results, strict=True):
        readings = parse_ioc_json(payload)
        assert {r.device_ref for r in readings} == {source} == {result.source_id}
        assert {r.time for r in readings} == {result.time_ns // 1_000_000 * 1_000_000}
        values = {r.metric: r.value for r in readings}
        assert values["probe_up"] is result.up
        assert values.get("probe_latency_ms") == result.latency_ms


# --- endpoint validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://files.example.vn/", "scheme must be http or https"),
        ("dvc.example.vn", "scheme must be http or https"),
        ("http://", "no host"),
        ("https://dvc.example.vn:99999/", "invalid port"),
        ("http://dvc.example.vn/a b", "whitespace or control"),
    ],
)
def test_endpoint_refuses_an_unprobeable_url(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        Endpoint("s", url)
    assert repr(url) in str(raised.value)


@pytest.mark.parametrize(
    "fields",
    [
        {"source_id": "-bad"},
        {"source_id": "has space"},
        {"timeout_s": 0},
        {"timeout_s": float("nan")},
        {"ok_status": (400, 200)},
        {"ok_status": (0, 399)},
    ],
)
def test_endpoint_refuses_bad_settings(fields: dict[str, object]) -> None:
    settings: dict[str, object] = {"source_id": "s", "url": "http://dvc.example.vn/", **fields}
    with pytest.raises(ValueError, match="probe"):
        Endpoint(**settings)  # type: ignore[arg-type]
