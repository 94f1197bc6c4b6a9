"""HTTP(S) availability probes of a province's shared systems, published as IOC JSON metrics.

A province commits to keeping its shared systems (public-service portal, document system, data
sharing platform...) available; ``ioc probe`` checks their endpoints on a schedule and publishes
what it saw through the ordinary ingest pipeline. This module does the checking and the encoding:

- ``probe`` sends one ``GET`` (redirects are not followed: a 3xx is an answer, and counts as up
  with the default ``ok_status``) and reads the status line and headers, never the body.
- ``timeout_s`` is a budget for the whole probe (DNS, connect, TLS handshake, request, headers),
  not per socket operation: each step gets what is left of it, and the attempt runs in a daemon
  thread that ``probe`` stops waiting for at the deadline, so neither a hanging resolver nor a
  server trickling its headers byte by byte can hold a caller past ``timeout_s`` (plus a 0.2 s
  grace). A thread given up on finishes in the background: its socket timeouts end it soon,
  unless the resolver hangs or the server keeps trickling.
- HTTPS verifies the certificate chain and the host name. ``cert_days_left`` comes from the
  verified certificate's notAfter; when verification fails, a second, unverified handshake within
  the same budget fetches the certificate and its notAfter is read from the DER (the stdlib only
  decodes verified peer certificates), so an expired or wrongly issued certificate still reports
  how many days it has (had) left.
- Network problems never raise: they make a down result whose ``error`` is a short, stable reason
  (``timeout after 2.0 s``, ``connection refused``, ``dns: ...``, ``tls: ...``, ``status 503``).

``to_ioc_json`` encodes results as IOC JSON v1 documents (``ingest.formats.ioc_json``) with the
metrics ``probe_up``, ``probe_status``, ``probe_latency_ms`` (unit ``ms``) and
``probe_cert_days`` (unit ``d``); a metric whose value is unknown is left out.
"""

from __future__ import annotations

import calendar
import errno
import http.client
import logging
import math
import queue
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

from ioc import __version__

log = logging.getLogger(__name__)

_SOURCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")  # IOC JSON's rule for "source"
_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")  # what http.client refuses in a request target
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HEADERS = {"User-Agent": f"ioc-probe/{__version__}", "Accept": "*/*", "Connection": "close"}
_GRACE_S = 0.2  # how long past the deadline probe() waits for the attempt to report by itself
_NS_PER_MS = 1_000_000
_S_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One HTTP(S) endpoint to check, published under the registry's probe source ``source_id``.

    ``ok_status`` is the inclusive range of statuses counted as up; ``ca_file`` is a PEM bundle of
    extra CAs trusted besides the system store (a provincial or ministry CA).
    """

    source_id: str
    url: str
    timeout_s: float = 10.0
    ok_status: tuple[int, int] = (200, 399)
    ca_file: str | None = None

    def __post_init__(self) -> None:
        """Refuse an endpoint that could never be probed or published, naming what is wrong."""
        if _SOURCE.fullmatch(self.source_id) is None:
            raise ValueError(f"probe source id {self.source_id!r} is not a valid source id")
        _split(self.url)
        if not (math.isfinite(self.timeout_s) and self.timeout_s > 0):
            raise ValueError(f"probe {self.url!r}: timeout_s {self.timeout_s!r} is not positive")
        low, high = self.ok_status
        if not 100 <= low <= high <= 599:
            raise ValueError(f"probe {self.url!r}: ok_status {self.ok_status!r} is not a range")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe saw: ``time_ns`` is when it started (wall clock), ``latency_ms`` the time to
    the response headers (monotonic clock), ``cert_days_left`` the days until the server
    certificate's notAfter (HTTPS only, negative once expired), ``error`` why it is not up."""

    source_id: str
    url: str
    time_ns: int
    up: bool
    status: int | None
    latency_ms: float | None
    cert_days_left: float | None
    error: str | None


@dataclass(frozen=True, slots=True)
class _Target:
    """The parts of an endpoint URL a connection needs."""

    https: bool
    host: str
    port: int
    path: str


def _split(url: str) -> _Target:
    """Split an http(s) URL into what a connection needs, or raise ValueError naming the url."""
    if _URL_FORBIDDEN.search(url):
        raise ValueError(f"probe url {url!r}: contains whitespace or control characters")
    parts = urlsplit(url)
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError(f"probe url {url!r}: scheme must be http or https")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise ValueError(f"probe url {url!r}: invalid port") from None
    if not parts.hostname:
        raise ValueError(f"probe url {url!r}: no host")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target(parts.scheme == "https", parts.hostname, port, path)


def probe(endpoint: Endpoint, *, now: Callable[[], int] = time.time_ns) -> ProbeResult:
    """Check one endpoint with one GET; returns within its timeout and never raises for the network.

    ``now`` gives the wall-clock start (``time_ns``), which is also the instant
    ``cert_days_left`` counts from.
    """
    started_ns = now()
    target = _split(endpoint.url)
    context: ssl.SSLContext | None = None
    if target.https:
        try:
            context = _verifying_context(endpoint.ca_file)
        except OSError as exc:  # ssl.SSLError is an OSError too
            log.error(
                "probe %s: cannot load ca_file %s: %s", endpoint.source_id, endpoint.ca_file, exc
            )
            return _down(endpoint, started_ns, f"tls: cannot load ca_file: {_reason(exc)}")
    begin = time.monotonic()
    reports: queue.SimpleQueue[ProbeResult] = queue.SimpleQueue()
    worker = threading.Thread(
        target=lambda: reports.put(_attempt(endpoint, target, context, started_ns, begin)),
        name=f"probe {endpoint.source_id}",
        daemon=True,
    )
    worker.start()
    try:
        result = reports.get(timeout=endpoint.timeout_s + _GRACE_S)
    except queue.Empty:
        log.info("probe %s: no answer by the deadline, leaving its thread", endpoint.source_id)
        result = _down(endpoint, started_ns, _timed_out(endpoint))
    log.debug(
        "probe %s %s: up=%s status=%s latency_ms=%s cert_days_left=%s error=%s",
        result.source_id,
        result.url,
        result.up,
        result.status,
        result.latency_ms,
        result.cert_days_left,
        result.error,
    )
    return result


def probe_all(endpoints: Sequence[Endpoint], *, max_workers: int = 8) -> tuple[ProbeResult, ...]:
    """Probe endpoints concurrently (at most ``max_workers`` at once); results in input order."""
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, got {max_workers}")
    if not endpoints:
        return ()
    workers = min(max_workers, len(endpoints))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        return tuple(pool.map(probe, endpoints))


def to_ioc_json(results: Sequence[ProbeResult]) -> list[tuple[str, bytes]]:
    """Encode each result as one IOC JSON v1 document, paired with its source id."""
    return [(result.source_id, orjson.dumps(_document(result))) for result in results]


def _document(result: ProbeResult) -> dict[str, object]:
    """The IOC JSON v1 document of one result; metrics with an unknown value are left out."""
    metrics: dict[str, object] = {"probe_up": result.up}
    if result.status is not None:
        metrics["probe_status"] = result.status
    if result.latency_ms is not None:
        metrics["probe_latency_ms"] = {"value": result.latency_ms, "unit": "ms"}
    if result.cert_days_left is not None:
        metrics["probe_cert_days"] = {"value": result.cert_days_left, "unit": "d"}
    return {
        "v": 1,
        "source": result.source_id,
        "time_ms": result.time_ns // _NS_PER_MS,
        "metrics": metrics,
    }


def _verifying_context(ca_file: str | None) -> ssl.SSLContext:
    """A client context trusting the system store plus ``ca_file``, checking host names."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context


def _attempt(
    endpoint: Endpoint,
    target: _Target,
    context: ssl.SSLContext | None,
    started_ns: int,
    begin: float,
) -> ProbeResult:
    """Run the probe itself (in a worker thread) from monotonic ``begin``; every failure becomes
    a down result."""
    status: int | None = None
    latency_ms: float | None = None
    days_left: float | None = None
    error: str | None = None
    deadline = begin + endpoint.timeout_s
    try:
        connection = _connection(target, context, _remaining(deadline))
        try:
            connection.request("GET", target.path, headers=_HEADERS)  # connects, TLS included
            sock = connection.sock
            if isinstance(sock, ssl.SSLSocket):
                days_left = _days_left(_peer_not_after(sock), started_ns)
            if sock is not None:
                sock.settimeout(_remaining(deadline))
            with connection.getresponse() as response:  # status line and headers only
                latency_ms = (time.monotonic() - begin) * 1000
                status = response.status
        finally:
            connection.close()
    except ssl.SSLCertVerificationError as exc:
        error = f"tls: certificate verify failed: {_verify_message(exc)}"
        days_left = _unverified_days_left(target, deadline, started_ns)
    except (OSError, http.client.HTTPException) as exc:
        error = _describe(exc, endpoint)
    except Exception as exc:  # a bug: still report, so that one endpoint cannot stop the others
        log.exception("probe %s: unexpected failure", endpoint.source_id)
        error = f"probe failed: {type(exc).__name__}"
    if error is None and status is not None:
        low, high = endpoint.ok_status
        if not low <= status <= high:
            error = f"status {status}"
    return ProbeResult(
        source_id=endpoint.source_id,
        url=endpoint.url,
        time_ns=started_ns,
        up=error is None,
        status=status,
        latency_ms=latency_ms,
        cert_days_left=days_left,
        error=error,
    )


def _connection(
    target: _Target, context: ssl.SSLContext | None, timeout: float
) -> http.client.HTTPConnection:
    """An unopened connection (HTTPS when a context is given); request() opens it."""
    if context is None:
        return http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    return http.client.HTTPSConnection(target.host, target.port, timeout=timeout, context=context)


def _remaining(deadline: float) -> float:
    """Seconds left before the deadline, or TimeoutError if none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("probe deadline passed")
    return left


def _down(endpoint: Endpoint, started_ns: int, error: str) -> ProbeResult:
    """A down result that got no response at all."""
    return ProbeResult(endpoint.source_id, endpoint.url, started_ns, False, None, None, None, error)


def _timed_out(endpoint: Endpoint) -> str:
    """The error of a probe that ran out of time, e.g. ``timeout after 2.0 s``."""
    return f"timeout after {float(endpoint.timeout_s)} s"


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connect timed out",
}


def _describe(exc: OSError | http.client.HTTPException, endpoint: Endpoint) -> str:
    """A short, stable, operator-readable reason for a failed probe."""
    if isinstance(exc, http.client.RemoteDisconnected):  # before OSError: it is both
        return "http: connection closed without a response"
    if isinstance(exc, http.client.HTTPException):
        return f"http: invalid response ({type(exc).__name__})"
    if isinstance(exc, ssl.SSLError):
        return f"tls: {_reason(exc)}"
    if isinstance(exc, socket.gaierror):
        return f"dns: {exc.strerror or exc}"
    if isinstance(exc, TimeoutError) and exc.errno is None:  # a socket timeout, not ETIMEDOUT
        return _timed_out(endpoint)
    known = _ERRNO_REASONS.get(exc.errno) if exc.errno is not None else None
    return known or f"network: {exc.strerror or exc}"


_SSL_LOCATION = re.compile(r"\s*\(_ssl\.c:\d+\)$")


def _reason(exc: OSError) -> str:
    """OpenSSL's reason in words (``WRONG_VERSION_NUMBER`` -> ``wrong version number``)."""
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason.replace("_", " ").lower()
    return _SSL_LOCATION.sub("", exc.strerror or str(exc))


def _verify_message(exc: ssl.SSLCertVerificationError) -> str:
    """Why verification failed (``self-signed certificate``, ``Hostname mismatch, ...``)."""
    message = exc.verify_message
    if isinstance(message, str) and message:
        return message.rstrip(".")
    return _reason(exc)


def _peer_not_after(sock: ssl.SSLSocket) -> float | None:
    """The verified peer certificate's notAfter, in epoch seconds."""
    not_after = (sock.getpeercert() or {}).get("notAfter")
    return ssl.cert_time_to_seconds(not_after) if isinstance(not_after, str) else None


def _days_left(not_after_s: float | None, started_ns: int) -> float | None:
    """Days from the probe's start to notAfter (negative once expired)."""
    if not_after_s is None:
        return None
    return (not_after_s - started_ns / 1e9) / _S_PER_DAY


def _unverified_days_left(target: _Target, deadline: float, started_ns: int) -> float | None:
    """Days left of a certificate that failed verification, fetched by an unverified handshake
    within what is left of the budget; None if that handshake or the decoding fails."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((target.host, target.port), _remaining(deadline)) as raw,
            context.wrap_socket(raw, server_hostname=target.host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        return _days_left(_der_not_after(der) if der else None, started_ns)
    except (OSError, ValueError) as exc:
        log.debug("probe %s: no unverified certificate: %s", target.host, exc)
        return None


def _der_not_after(der: bytes) -> float:
    """notAfter of a DER X.509 certificate (RFC 5280 4.1), in epoch seconds; ValueError if the
    bytes are not shaped like one. Only the path to the validity field is walked."""
    _, certificate, _ = _tlv(der, 0, 0x30)
    _, pos, _ = _tlv(der, certificate, 0x30)  # tbsCertificate
    if der[pos : pos + 1] == b"\xa0":  # [0] EXPLICIT version, absent for v1
        pos = _tlv(der, pos, 0xA0)[2]
    pos = _tlv(der, pos, 0x02)[2]  # serialNumber
    pos = _tlv(der, pos, 0x30)[2]  # signature AlgorithmIdentifier
    pos = _tlv(der, pos, 0x30)[2]  # issuer Name
    _, validity, _ = _tlv(der, pos, 0x30)
    not_after = _tlv(der, validity, None)[2]  # skip notBefore
    tag, start, end = _tlv(der, not_after, None)
    text = der[start:end].decode("ascii")
    if tag == 0x17 and len(text) == 13:  # UTCTime YYMMDDHHMMSSZ; YY < 50 is 20YY (RFC 5280)
        text = ("19" if int(text[:2]) >= 50 else "20") + text
    elif tag != 0x18 or len(text) != 15:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError(f"certificate notAfter: unexpected time {text!r}")
    return float(calendar.timegm(time.strptime(text, "%Y%m%d%H%M%SZ")))


def _tlv(der: bytes, pos: int, tag: int | None) -> tuple[int, int, int]:
    """Read the DER element at ``pos`` (of ``tag`` if given): its tag, content start, end."""
    if pos + 2 > len(der):
        raise ValueError("certificate: truncated")
    found, length = der[pos], der[pos + 1]
    if tag is not None and found != tag:
        raise ValueError(f"certificate: tag {found:#x} at byte {pos}, expected {tag:#x}")
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        if not 1 <= size <= 4 or pos + size > len(der):
            raise ValueError("certificate: bad length")
        length = int.from_bytes(der[pos : pos + size], "big")
        pos += size
    if pos + length > len(der):
        raise ValueError("certificate: truncated")
    return found, pos, pos + length
