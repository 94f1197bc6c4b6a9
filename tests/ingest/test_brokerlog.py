"""The broker's log lines, as Mosquitto 2.0.11 publishes them on ``$SYS/broker/log/N``.

Every line below was observed on Debian's Mosquitto 2.0.11 (docs/ingest.md, "What the broker
refuses"); ``tests/ingest/test_broker_refusals.py`` sends the same refusals through the real
broker.
"""

from __future__ import annotations

import pytest

from ingest.brokerlog import BrokerLog, BrokerRefusal, broker_time_s
from ingest.collector import Collector
from ioc.catalog import Catalog, get_catalog
from ioc.settings import load_settings
from ioc.store import encode_point

SOURCE = "01-air-hoan-kiem"  # demo registry, province 01
STAMP = "2026-12-04T15:21:15+0000"
SECOND = 1796397675  # the same instant
NOW_NS = (SECOND + 1) * 10**9


def line(text: str, stamp: str = STAMP) -> bytes:
    return f"{stamp}: {text}".encode()


def connected(client_id: str, user: str | None = None) -> bytes:
    suffix = "" if user is None else f", u'{user}'"
    return line(f"New client connected from 127.0.0.1:52315 as {client_id} (p5, c1, k60{suffix}).")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return get_catalog()


@pytest.fixture
def broker_log(catalog: Catalog) -> BrokerLog:
    return BrokerLog(catalog.registry)


@pytest.mark.parametrize(
    ("text", "cause"),
    [
        ("Client dev-1 disconnected due to oversize packet.", "packet_too_large"),
        ("Client dev-1 disconnected due to malformed packet.", "malformed_packet"),
        ("Client dev-1 disconnected due to protocol error.", "protocol_error"),
        ("Client dev-1 disconnected due to oversize payload.", "payload_too_large"),
        (
            "Client dev-1 disconnected due to QoS too high or retain not supported.",
            "not_supported",
        ),
        ("Client dev-1 disconnected, not authorised.", "not_authorised"),
    ],
)
def test_each_refusal_line_is_read_with_its_cause(
    broker_log: BrokerLog, text: str, cause: str
) -> None:
    refusal = broker_log.read(line(text), NOW_NS)
    assert refusal is not None
    assert (refusal.cause, refusal.client_id, refusal.line) == (cause, "dev-1", f"{STAMP}: {text}")
    assert SECOND * 10**9 <= refusal.time_ns < (SECOND + 1) * 10**9


@pytest.mark.parametrize(
    "text",
    [
        "New connection from 127.0.0.1:52315 on port 1883.",
        "Client dev-1 closed its connection.",
        "Client dev-1 disconnected.",
        "Client dev-1 has exceeded timeout, disconnecting.",
        "Client dev-1 already connected, closing old connection.",
        "mosquitto version 2.0.11 running",
    ],
)
def test_other_lines_are_no_refusals(broker_log: BrokerLog, text: str) -> None:
    assert broker_log.read(line(text), NOW_NS) is None


def test_a_line_without_a_time_stamp_is_ignored(broker_log: BrokerLog) -> None:
    assert broker_log.read(b"Client dev-1 disconnected due to oversize packet.", NOW_NS) is None


def test_the_source_is_the_user_name_the_client_connected_with(broker_log: BrokerLog) -> None:
    assert broker_log.read(connected("dev-1", SOURCE), NOW_NS) is None
    refusal = broker_log.read(line("Client dev-1 disconnected due to oversize packet."), NOW_NS)
    assert refusal is not None
    assert (refusal.source, refusal.province, refusal.username) == (SOURCE, "01", SOURCE)
    assert "'dev-1'" in refusal.message and f"user '{SOURCE}'" in refusal.message


def test_a_client_seen_connecting_with_another_user_is_not_taken_by_its_client_id(
    broker_log: BrokerLog,
) -> None:
    """An authenticated user name wins over a client id that names another source."""
    broker_log.read(connected(SOURCE, "lns-tts"), NOW_NS)
    refusal = broker_log.read(line(f"Client {SOURCE} disconnected due to malformed packet."), 0)
    assert refusal is not None
    assert (refusal.source, refusal.province, refusal.username) == (None, None, "lns-tts")


def test_without_a_user_name_a_client_id_that_is_a_source_id_names_it(
    broker_log: BrokerLog,
) -> None:
    # never seen connecting (the collector started later), and an anonymous client
    unseen = broker_log.read(line(f"Client {SOURCE} disconnected due to protocol error."), NOW_NS)
    broker_log.read(connected("96-water-song-doc"), NOW_NS)
    anonymous = broker_log.read(
        line("Client 96-water-song-doc disconnected due to malformed packet."), NOW_NS
    )
    assert unseen is not None and anonymous is not None
    assert (unseen.source, unseen.province, unseen.username) == (SOURCE, "01", None)
    assert (anonymous.source, anonymous.province) == ("96-water-song-doc", "96")


def test_a_client_id_cannot_forge_the_user_or_the_cause(broker_log: BrokerLog) -> None:
    """The broker's own text ends every line: a client id that imitates it changes nothing."""
    forged_id = f"x (p5, c1, k60, u'{SOURCE}'). Client y disconnected due to oversize packet."
    broker_log.read(connected(forged_id, "nobody"), NOW_NS)
    refusal = broker_log.read(line(f"Client {forged_id} disconnected due to protocol error."), 0)
    assert refusal is not None
    assert (refusal.cause, refusal.client_id, refusal.username) == (
        "protocol_error",
        forged_id,
        "nobody",
    )
    assert refusal.source is None


def test_a_refused_login_has_no_client_id_to_go_by(broker_log: BrokerLog) -> None:
    refusal = broker_log.read(line("Client <unknown> disconnected, not authorised."), NOW_NS)
    assert refusal is not None
    assert (refusal.cause, refusal.client_id) == ("not_authorised", "<unknown>")
    assert refusal.source is None


@pytest.mark.parametrize(
    ("stamp", "second"),
    [
        ("1796397675", SECOND),  # Mosquitto's default format
        ("2026-12-04T15:21:15+0000", SECOND),  # deploy/: %Y-%m-%dT%H:%M:%S%z
        ("2026-12-04T22:21:15+0700", SECOND),
        ("Fri Dec  4 15:21:15 2026", None),  # any other format
    ],
)
def test_the_brokers_time_stamp(stamp: str, second: int | None) -> None:
    assert broker_time_s(stamp) == second


def test_an_unknown_time_stamp_format_falls_back_to_the_receive_time(
    broker_log: BrokerLog,
) -> None:
    text = "Client dev-1 disconnected due to oversize packet."
    refusal = broker_log.read(line(text, stamp="Fri Dec  4 15:21:15 2026"), NOW_NS)
    assert refusal is not None
    assert NOW_NS <= refusal.time_ns < NOW_NS + 10**9


def test_two_collectors_reading_the_same_lines_write_the_same_points(catalog: Catalog) -> None:
    """Every collector reads every line; the points must be identical so InfluxDB keeps one."""
    lines = [
        connected("dev-1", SOURCE),
        line("Client dev-1 disconnected due to oversize packet."),
        line("Client dev-1 disconnected due to oversize packet."),  # again, the same second
        line("Client dev-2 disconnected due to malformed packet."),
        line("Client dev-1 disconnected due to oversize packet.", "2026-12-04T15:21:16+0000"),
    ]
    first, second = BrokerLog(catalog.registry), BrokerLog(catalog.registry)
    ours = [first.read(payload, NOW_NS) for payload in lines]
    theirs = [second.read(payload, NOW_NS + 123_456_789) for payload in lines]
    points = [encode_point(r.to_point()) for r in ours if r is not None]
    assert points == [encode_point(r.to_point()) for r in theirs if r is not None]
    stamps = [r.time_ns for r in ours if r is not None]
    assert len(set(stamps)) == 4, "each refusal a point of its own"
    assert stamps[0] + 1 == stamps[1]  # a repetition is the next nanosecond of its slot


def test_the_point_is_a_dead_letter_without_a_collector_tag(broker_log: BrokerLog) -> None:
    broker_log.read(connected("dev-1", SOURCE), NOW_NS)
    refusal = broker_log.read(line("Client dev-1 disconnected due to oversize packet."), NOW_NS)
    assert isinstance(refusal, BrokerRefusal)
    point = refusal.to_point()
    assert point.measurement == "dead_letter"
    assert point.tags == {"reason": "broker_refused", "province": "01"}
    assert point.fields["source"] == SOURCE
    assert point.fields["cause"] == "packet_too_large"
    assert point.fields["client_id"] == "dev-1"
    assert point.fields["topic"] == ""  # the broker does not log it


def test_the_collector_counts_refusals_by_cause_in_its_figures() -> None:
    collector = Collector(load_settings({}), get_catalog())
    assert collector.read_broker_log(connected("dev-1", SOURCE), NOW_NS) == []
    (ops,) = collector.read_broker_log(
        line("Client dev-1 disconnected due to oversize packet."), NOW_NS
    )
    assert ops.startswith("dead_letter,province=01,reason=broker_refused ")
    collector.read_broker_log(line("Client dev-3 disconnected due to malformed packet."), NOW_NS)
    assert collector.counters["broker_log_lines"] == 3
    assert collector.counters["broker_refused"] == 2
    assert collector.counters["broker_refused.packet_too_large"] == 1
    assert collector.counters["broker_refused.malformed_packet"] == 1
    # not the collector's own dead letters: those count what it rejected itself
    assert not [key for key in collector.counters if key.startswith("dead_letters")]
