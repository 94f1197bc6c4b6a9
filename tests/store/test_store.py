"""The store against the real InfluxDB 1.x (and VictoriaMetrics for the v2 write path)."""

from __future__ import annotations

import itertools
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ioc.errors import (
    AuthError,
    LineProtocolError,
    NotFoundError,
    PartialWriteError,
    QueryError,
    ServerError,
    StoreError,
    ThrottledError,
    UnreachableError,
)
from ioc.settings import Settings, load_settings
from ioc.store import Point, Store, qualified, quote_ident
from ioc.store.client import _Answer, _raise_for, _Rejected

pytestmark = pytest.mark.services

NOW = time.time_ns() // 1_000_000_000 * 1_000_000_000
_unique = itertools.count()


def fresh(name: str) -> str:
    """A measurement name no other test uses."""
    return f"{name}_{next(_unique)}_{time.monotonic_ns()}"


def rows(store: Store, measurement: str, rp: str = "raw") -> list[dict[str, object]]:
    db = store.settings.influx_db
    return [
        row
        for series in store.query(f"SELECT * FROM {qualified(db, rp, measurement)}")
        for row in series.rows()
    ]


def test_write_then_read_back_points_from_real_influxdb(store: Store) -> None:
    m = fresh("air")
    points = [
        Point(
            m, {"pm25": 35.2, "count": 3, "ok": True, "note": 'say "hi"'}, NOW, {"ward": "00004"}
        ),
        Point(
            m, {"pm25": 12.0, "count": 1, "ok": False, "note": "a\nb"}, NOW + 1, {"ward": "00008"}
        ),
    ]
    assert store.write(points) == 2
    assert rows(store, m) == [
        {"time": NOW, "count": 3, "note": 'say "hi"', "ok": True, "pm25": 35.2, "ward": "00004"},
        {"time": NOW + 1, "count": 1, "note": "a\nb", "ok": False, "pm25": 12.0, "ward": "00008"},
    ]


def test_rewriting_the_same_point_is_idempotent(store: Store) -> None:
    m = fresh("idem")
    point = Point(m, {"v": 1.5}, NOW, {"ward": "00004"})
    store.write([point])
    store.write([point, point])
    assert len(rows(store, m)) == 1


def test_query_binds_parameters_instead_of_splicing_text(store: Store) -> None:
    m = fresh("bound")
    store.write([Point(m, {"v": float(i)}, NOW + i, {"ward": f"w{i}"}) for i in range(5)])
    sql = f"SELECT v FROM {quote_ident(m)} WHERE ward = $ward AND time >= $since"
    (series,) = store.query(sql, {"ward": "w3", "since": NOW + 1})
    assert series.rows() == [{"time": NOW + 3, "v": 3.0}]
    # A hostile value stays a value: it matches nothing and runs nothing.
    assert store.query(sql, {"ward": "w3' OR ward='w1", "since": 0}) == ()


def test_retention_policies_are_created_with_the_configured_durations(store: Store) -> None:
    db = quote_ident(store.settings.influx_db)
    (series,) = store.query(f"SHOW RETENTION POLICIES ON {db}", epoch=None)
    found = {r["name"]: (r["duration"], r["default"]) for r in series.rows()}
    assert found["raw"] == ("9600h0m0s", True)
    assert found["derived"] == ("0s", False)
    assert found["ops"] == ("720h0m0s", False)


def test_ensure_schema_is_idempotent_and_alters_a_changed_duration(
    service_env: dict[str, str], store: Store
) -> None:
    changed = load_settings({**service_env, "IOC_RETENTION_OPS": "14d"})
    with Store(changed) as other:
        other.ensure_schema()
        other.ensure_schema()
    db = quote_ident(store.settings.influx_db)
    (series,) = store.query(f"SHOW RETENTION POLICIES ON {db}", epoch=None)
    assert {r["name"]: r["duration"] for r in series.rows()}["ops"] == "336h0m0s"
    store.ensure_schema()  # back to the session's settings
    (series,) = store.query(f"SHOW RETENTION POLICIES ON {db}", epoch=None)
    assert {r["name"]: r["duration"] for r in series.rows()}["ops"] == "720h0m0s"


def test_writes_go_to_the_named_retention_policy(store: Store) -> None:
    m = fresh("derived")
    store.write([Point(m, {"v": 1.0}, NOW)], rp="derived")
    assert len(rows(store, m, rp="derived")) == 1
    assert rows(store, m, rp="raw") == []


# --- rejected lines ------------------------------------------------------------------------


def test_unparseable_lines_are_named_and_the_rest_is_written(store: Store) -> None:
    m = fresh("parse")
    good = [f"{m} v=1 {NOW}", f"{m} v=2 {NOW + 1}"]
    bad = [f"{m} v= {NOW + 2}", f"{m} v=1 99999999999999999999"]
    with pytest.raises(PartialWriteError) as caught:
        store.write_lines([good[0], bad[0], good[1], bad[1]])
    assert caught.value.accepted == 2
    assert [r.line for r in caught.value.rejected] == bad
    assert all(r.reason for r in caught.value.rejected)
    assert [r["v"] for r in rows(store, m)] == [1.0, 2.0]


def test_type_conflicts_are_isolated_line_by_line(store: Store) -> None:
    m = fresh("conflict")
    store.write([Point(m, {"v": 1.0}, NOW)])
    lines = [f'{m},k=s v="text" {NOW + 1}'] + [
        f"{m},k={i} v={i}.5 {NOW + 10 + i}" for i in range(9)
    ]
    lines.insert(5, f"{m},k=int v=7i {NOW + 2}")
    with pytest.raises(PartialWriteError) as caught:
        store.write_lines(lines)
    assert sorted(r.line for r in caught.value.rejected) == sorted([lines[0], lines[5]])
    assert all("field type conflict" in r.reason for r in caught.value.rejected)
    assert caught.value.accepted == 9
    assert len(rows(store, m)) == 10


def test_a_conflict_inside_one_batch_rejects_only_the_conflicting_line(store: Store) -> None:
    m = fresh("intra")
    lines = [f"{m} v=1 {NOW}", f'{m} v="s" {NOW + 1}', f"{m} v=3 {NOW + 2}"]
    with pytest.raises(PartialWriteError) as caught:
        store.write_lines(lines)
    # The server refuses the whole batch; isolation finds the one line to blame.
    assert [r.line for r in caught.value.rejected] == [lines[1]]
    assert [r["v"] for r in rows(store, m)] == [1.0, 3.0]


def test_points_older_than_the_retention_policy_are_rejected_with_the_reason(store: Store) -> None:
    m = fresh("old")
    year_2000 = 946_684_800 * 10**9
    with pytest.raises(PartialWriteError) as caught:
        store.write([Point(m, {"v": 1.0}, NOW), Point(m, {"v": 2.0}, year_2000)], rp="ops")
    assert [r.line for r in caught.value.rejected] == [f"{m} v=2.0 {year_2000}"]
    assert "beyond retention policy" in caught.value.rejected[0].reason
    assert caught.value.accepted == 1


def test_a_newline_injection_reaches_the_server_only_through_a_naive_writer(store: Store) -> None:
    m, forged = fresh("inject"), fresh("forged")
    # What a writer that does not know line protocol's limits would send:
    naive = f"{m},ward=00004\n{forged} value=1 {NOW}"
    with pytest.raises(PartialWriteError):
        store.write_lines([naive])
    assert len(rows(store, forged)) == 1  # the server stored a point nobody meant to write
    with pytest.raises(LineProtocolError, match="tag value"):
        store.write([Point(m, {"value": 1.0}, NOW, {"ward": f"00004\n{forged}"})])


_tag_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\"),
    min_size=1,
    max_size=12,
)
_hostile = st.text(alphabet=st.sampled_from(",= \"'#\n\t\\{}éĐ😀ab"), max_size=16)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    tag=st.one_of(_tag_text, st.sampled_from([",", "=", " ", '"', "a b,c=d"])),
    text=_hostile | st.text(max_size=16),
)
def test_real_influxdb_reads_back_exactly_the_one_point_we_wrote(
    store: Store, tag: str, text: str
) -> None:
    m = fresh("prop")
    store.write([Point(m, {"text": text, "n": 1}, NOW, {"tag": tag})])
    (series,) = store.query(f"SELECT * FROM {quote_ident(m)} GROUP BY *")
    assert series.tags == {"tag": tag}
    assert series.rows() == [{"time": NOW, "n": 1, "text": text}]
    assert store.query(f"SHOW MEASUREMENTS WITH MEASUREMENT = {quote_ident(m)}", epoch=None)


# --- errors ---------------------------------------------------------------------------------


def test_a_bad_query_raises_query_error(store: Store) -> None:
    with pytest.raises(QueryError, match="error parsing query"):
        store.query("SELEC nothing")
    with pytest.raises(QueryError, match="exactly one statement"):
        store.query("SHOW DATABASES; SHOW DATABASES", epoch=None)


def test_unknown_database_and_retention_policy_raise_not_found(
    service_env: dict[str, str], services: Settings
) -> None:
    with Store(load_settings({**service_env, "IOC_INFLUX_DB": "no_such_db"})) as other:
        with pytest.raises(NotFoundError, match="database not found"):
            other.write([Point("m", {"v": 1.0}, NOW)])
        with pytest.raises(NotFoundError, match="database not found"):
            other.query('SELECT * FROM "m"')
    with Store(services) as store, pytest.raises(NotFoundError, match="retention policy not found"):
        store.write([Point("m", {"v": 1.0}, NOW)], rp="no_such_rp")


def test_nothing_listening_raises_unreachable(service_env: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings({**service_env, "IOC_INFLUX_URL": f"http://127.0.0.1:{port}"})
    with Store(settings) as other, pytest.raises(UnreachableError) as caught:
        other.ping()
    assert caught.value.retryable


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_server_that_never_answers_times_out_as_unreachable(
    service_env: dict[str, str], silent_server: int
) -> None:
    url = f"http://127.0.0.1:{silent_server}"
    settings = load_settings({**service_env, "IOC_INFLUX_URL": url, "IOC_INFLUX_TIMEOUT": "0.3"})
    with Store(settings) as other, pytest.raises(UnreachableError, match="did not answer"):
        other.write([Point("m", {"v": 1.0}, NOW)])


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "retryable"),
    [
        (401, b'{"error":"authorization failed"}', {}, AuthError, False),
        (403, b'{"code":"forbidden","message":"insufficient permissions"}', {}, AuthError, False),
        (404, b'{"error":"database not found: \\"x\\""}', {}, NotFoundError, False),
        (500, b'{"error":"retention policy not found: r"}', {}, NotFoundError, False),
        (429, b'{"message":"too many requests"}', {"Retry-After": "7"}, ThrottledError, True),
        (503, b"busy", {"Retry-After": "2"}, ThrottledError, True),
        (503, b"unavailable", {}, ServerError, True),
        (500, b'{"error":"timeout"}', {}, ServerError, True),
        (418, b"teapot", {}, StoreError, False),
    ],
)
def test_http_answers_map_onto_the_error_tree(
    status: int, body: bytes, headers: dict[str, str], error: type[StoreError], retryable: bool
) -> None:
    with pytest.raises(error) as caught:
        _raise_for(_Answer(status, body, headers), "write")
    assert type(caught.value) is error
    assert caught.value.retryable is retryable
    assert caught.value.status == status
    if error is ThrottledError:
        assert caught.value.retry_after == float(headers["Retry-After"])  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", [400, 413, 422])
def test_refusals_are_resolved_line_by_line_not_raised_directly(status: int) -> None:
    with pytest.raises(_Rejected):
        _raise_for(_Answer(status, b'{"error":"partial write: x dropped=1"}', {}), "write")


# --- v2 write path (influxdb-client) against a real /api/v2/write -------------------------


def test_v2_write_path_stores_points_in_a_real_server(victoria_metrics: str, tmp_path) -> None:
    settings = load_settings(
        {
            "IOC_VAR_DIR": str(tmp_path),
            "IOC_INFLUX_URL": victoria_metrics,
            "IOC_INFLUX_API": "v2",
            "IOC_INFLUX_ORG": "ioc",
            "IOC_INFLUX_TOKEN": "not-checked-by-this-server",
        }
    )
    m = fresh("vtwo")
    with Store(settings) as store:
        written = store.write(
            [Point(m, {"pm25": 12.5 + i}, NOW + i * 10**9, {"ward": "00004"}) for i in range(3)]
        )
    assert written == 3
    query = urllib.parse.urlencode({"match[]": f'{{__name__="{m}_pm25"}}'})
    deadline = time.monotonic() + 30
    while True:  # the server makes new points searchable after a flush, not at once
        urllib.request.urlopen(f"{victoria_metrics}/internal/force_flush").close()  # noqa: S310
        with urllib.request.urlopen(f"{victoria_metrics}/api/v1/export?{query}") as answer:  # noqa: S310
            lines = answer.read().splitlines()
        if (lines and len(orjson.loads(lines[0])["values"]) == 3) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    (exported,) = [orjson.loads(line) for line in lines]
    assert exported["metric"]["ward"] == "00004"
    assert exported["values"] == [12.5, 13.5, 14.5]
    assert exported["timestamps"] == [NOW // 10**6 + i * 1000 for i in range(3)]
