"""LoRaWAN parsers: every TTS and ChirpStack file in shared/, then each way a message is wrong."""

from __future__ import annotations

import orjson
import pytest

from ingest.formats.lorawan import LorawanResult, parse_chirpstack, parse_tts
from ingest.formats.model import RawReading
from ioc.errors import PayloadError
from tests.ingest.formats_support import PAYLOADS, utc_ns

LORAWAN = PAYLOADS / "lorawan"
LEVELSTICK = "3531383150308b12"


def _r(device: str, metric: str, value: float | bool, time: int) -> RawReading:
    return RawReading(device, metric, value, None, time)


def _levelstick(time: int, first: tuple[str, float], second: tuple[str, float]) -> list[RawReading]:
    return [_r(LEVELSTICK, *first, time), _r(LEVELSTICK, *second, time)]


def _druk(value: float) -> tuple[str, float]:
    return ("grondwaterdruk", value)


def _temp(value: float) -> tuple[str, float]:
    return ("grondwatertemperatuur", value)


EXPECTED: dict[str, LorawanResult] = {
    "ttn_v3_uplink_docs_data_formats.json": LorawanResult(
        (
            _r("dev1", "temperature", 1.0, utc_ns("2020-02-12T15:15:46", 14_773_143)),
            _r("dev1", "luminosity", 0.64, utc_ns("2020-02-12T15:15:46", 14_773_143)),
        ),
        (),
    ),
    "ttn_v3_uplink_starter_kit_mclimate_button.json": LorawanResult(
        tuple(
            _r("eui-70b3d52dd600035a", metric, value, utc_ns("2025-04-16T11:54:13", 995_136_483))
            for metric, value in [
                ("batteryVoltage", 3.4),
                ("pressEvent", 1.0),
                ("sensorTemperature", 21.5),
                ("singlePressEventCounter", 16.0),
                ("thermistorProperlyConnected", True),
            ]
        ),
        (),
    ),
    # "type": "parking status" is a label, not a reading; uplink_message.received_at is year 1.
    "ttn_v3_uplink_storage_parking_simulated.json": LorawanResult(
        (
            _r("dev1", "occupied", False, utc_ns("2021-02-04T19:32:31", 488_210_458)),
            _r("dev1", "occupied", True, utc_ns("2021-02-04T19:19:28", 681_910_909)),
        ),
        (),
    ),
    "chirpstack_v4_up_rotterdam_milesight_em300_sld_leak.json": LorawanResult(
        tuple(
            _r("24e124136b325190", metric, value, utc_ns("2025-04-16T09:47:45", 418_000_000))
            for metric, value in [
                ("temperatuur", 19.2),
                ("luchtvochtigheid", 44.5),
                ("lekstatus", 0.0),
            ]
        ),
        (),
    ),
    # log, 6 x up, status, log, up: key order within "object" varies and is kept.
    "chirpstack_v4_events_rotterdam_groundwater_levelstick.json": LorawanResult(
        (
            *_levelstick(utc_ns("2024-12-05T08:21:51", 125_000_000), _druk(111669), _temp(12.64)),
            *_levelstick(utc_ns("2024-12-05T04:21:49", 331_000_000), _druk(112024), _temp(12.63)),
            *_levelstick(utc_ns("2024-12-05T00:21:47", 519_000_000), _temp(12.66), _druk(112313)),
            *_levelstick(utc_ns("2024-12-04T20:21:45", 706_000_000), _druk(112458), _temp(12.67)),
            *_levelstick(utc_ns("2024-12-04T16:21:43", 903_000_000), _temp(12.67), _druk(112511)),
            *_levelstick(utc_ns("2024-12-04T12:21:42", 93_000_000), _druk(112480), _temp(12.65)),
            *_levelstick(utc_ns("2024-12-04T08:21:40", 301_000_000), _druk(112431), _temp(12.67)),
        ),
        ("log", "status", "log"),
    ),
}


def _parse(name: str, payload: bytes) -> LorawanResult:
    return parse_tts(payload) if name.startswith("ttn_") else parse_chirpstack(payload)


def test_every_lorawan_file_has_expectations() -> None:
    assert sorted(path.name for path in LORAWAN.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_network_server_files(name: str) -> None:
    assert _parse(name, (LORAWAN / name).read_bytes()) == EXPECTED[name]


def test_chirpstack_event_from_the_topic_wins_over_inference() -> None:
    events = orjson.loads((LORAWAN / EXPECTED_EVENTS).read_bytes())
    log, up = orjson.dumps(events[0]), orjson.dumps(events[1])
    assert parse_chirpstack(up, event="up").readings == EXPECTED[EXPECTED_EVENTS].readings[:2]
    assert parse_chirpstack(b"not even json", event="status") == LorawanResult((), ("status",))
    with pytest.raises(PayloadError) as caught:
        parse_chirpstack(log, event="up")  # a log event published as "up" has no object
    assert caught.value.reason == "not_decoded"


EXPECTED_EVENTS = "chirpstack_v4_events_rotterdam_groundwater_levelstick.json"
TTS_DOC = orjson.loads((LORAWAN / "ttn_v3_uplink_docs_data_formats.json").read_bytes())
CS_UP = orjson.loads(
    (LORAWAN / "chirpstack_v4_up_rotterdam_milesight_em300_sld_leak.json").read_bytes()
)
TTS_TIME = utc_ns("2020-02-12T15:15:46", 14_773_143)
CS_TIME = utc_ns("2025-04-16T09:47:45", 418_000_000)


def _tts(decoded: object = None, **top: object) -> bytes:
    """The TTS documentation uplink, with its decoded payload and top-level fields replaced."""
    message = dict(TTS_DOC)
    message["uplink_message"] = dict(TTS_DOC["uplink_message"])
    if decoded is not None:
        message["uplink_message"]["decoded_payload"] = decoded
    for key, value in top.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    return orjson.dumps(message)


def _cs(decoded: object = None, **top: object) -> bytes:
    """The Milesight ChirpStack uplink, with its object and top-level fields replaced."""
    message = dict(CS_UP)
    if decoded is not None:
        message["object"] = decoded
    for key, value in top.items():
        if value is None:
            message.pop(key, None)
        else:
            message[key] = value
    return orjson.dumps(message)


@pytest.mark.parametrize("build", [_tts, _cs])
def test_nested_objects_flatten_with_dots(build: object) -> None:
    assert callable(build)
    decoded = {"soil": {"temp": 4, "moisture": {"top": 0.25}}, "label": "x", "ok": True}
    readings = (parse_tts if build is _tts else parse_chirpstack)(build(decoded)).readings
    time = TTS_TIME if build is _tts else CS_TIME
    device = "dev1" if build is _tts else "24e124136b325190"
    assert readings == (
        _r(device, "soil.temp", 4.0, time),
        _r(device, "soil.moisture.top", 0.25, time),
        _r(device, "ok", True, time),
    )


def test_skipped_values_are_strings_nulls_and_arrays() -> None:
    decoded: dict[str, object] = {"a": None, "b": [1, 2], "c": "3", "d": 3, "e": {}}
    assert parse_tts(_tts(decoded)).readings == (_r("dev1", "d", 3.0, TTS_TIME),)


def test_other_tts_messages_are_ignored_not_errors() -> None:
    join = {"end_device_ids": {"device_id": "dev1"}, "join_accept": {"session_key_id": "AQ=="}}
    ack = {"end_device_ids": {"device_id": "dev1"}, "downlink_ack": {"f_port": 1}}
    assert parse_tts(orjson.dumps(join)) == LorawanResult((), ("join_accept",))
    assert parse_tts(orjson.dumps([join, TTS_DOC, ack])) == LorawanResult(
        EXPECTED["ttn_v3_uplink_docs_data_formats.json"].readings, ("join_accept", "downlink_ack")
    )


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ({"deviceInfo": {}, "time": "x", "batteryLevel": 90, "margin": 7}, "status"),
        ({"deviceInfo": {}, "level": "ERROR", "code": "UPLINK_CODEC"}, "log"),
        ({"deviceInfo": {}, "devAddr": "01020304", "deduplicationId": "x"}, "join"),
        ({"deviceInfo": {}, "acknowledged": True, "fCntDown": 3}, "ack"),
        ({"deviceInfo": {}, "gatewayId": "0102", "fCntDown": 3}, "txack"),
        ({"deviceInfo": {}, "location": {"latitude": 1}}, "location"),
        ({"deviceInfo": {}, "integrationName": "x", "object": {"a": 1}}, "integration"),
        ({"deviceInfo": {}}, "unknown"),
    ],
)
def test_chirpstack_event_kinds_are_inferred(event: dict[str, object], kind: str) -> None:
    assert parse_chirpstack(orjson.dumps(event)) == LorawanResult((), (kind,))


TTS_BAD = [
    (_tts(end_device_ids=None), "missing_field"),
    (_tts(end_device_ids={"dev_eui": "0004A30B001C0530"}), "missing_field"),
    (_tts(end_device_ids={"device_id": 5}), "wrong_type"),
    (_tts(end_device_ids={"device_id": ""}), "invalid_name"),
    (_tts(end_device_ids="dev1"), "wrong_type"),
    (_tts(received_at=None), "missing_field"),
    (_tts(received_at=1581520546), "wrong_type"),
    (_tts(received_at="2020-02-12 15:15:46"), "invalid_time"),
    (_tts(received_at="0001-01-01T00:00:00Z"), "time_out_of_range"),
    (_tts(received_at="2300-01-01T00:00:00Z"), "time_out_of_range"),
    (_tts(uplink_message=None), "missing_field"),
    (_tts(uplink_message=[]), "wrong_type"),
    (_tts(uplink_message={"f_port": 1}), "not_decoded"),
    (_tts([1, 2]), "wrong_type"),
    (_tts({"type": "parking status"}), "no_readings"),
    (_tts({"t": 18446744073709551615}), "value_out_of_range"),
    (_tts({"a.b": 1, "a": {"b": 2}}), "duplicate_metric"),
    (_tts({"": 1}), "invalid_name"),
    (_tts({"a": {"": 1}}), "invalid_name"),
    (_tts({"l1": {"l2": {"l3": {"l4": {"l5": {"l6": {"l7": {"l8": {"l9": 1}}}}}}}}}), "too_deep"),
    (_tts().replace(b"1.0", b"NaN"), "invalid_json"),
    (_tts().replace(b"1.0", b"Infinity"), "invalid_json"),
    (_tts().replace(b"1.0", b"1e309"), "not_finite"),
    (_tts().replace(b'"dev1"', b'"dev\xc01"'), "invalid_utf8"),
]
CHIRPSTACK_BAD = [
    (_cs(deviceInfo=None), "missing_field"),
    (_cs(deviceInfo={"devEui": None}), "wrong_type"),
    (_cs(deviceInfo={"deviceName": "wl001a"}), "missing_field"),
    (_cs(time=None), "missing_field"),
    (_cs(time="1969-12-31T23:59:59.999+00:00"), "time_out_of_range"),
    (_cs(time="2025-04-16T09:47:45.418"), "invalid_time"),
    (_cs(object=None), "not_decoded"),
    (_cs(object="temperatuur=19.2"), "wrong_type"),
    (_cs({"status": "leak"}), "no_readings"),
    (_cs().replace(b"19.2", b"-Infinity"), "invalid_json"),
    (_cs().replace(b"19.2", b"-1e309"), "not_finite"),
    (_cs()[:-1], "invalid_json"),
]


@pytest.mark.parametrize(("payload", "expected"), TTS_BAD)
def test_bad_tts_messages(payload: bytes, expected: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_tts(payload)
    assert caught.value.reason == expected


@pytest.mark.parametrize(("payload", "expected"), CHIRPSTACK_BAD)
def test_bad_chirpstack_messages(payload: bytes, expected: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_chirpstack(payload)
    assert caught.value.reason == expected
    with pytest.raises(PayloadError) as caught:
        parse_chirpstack(payload, event="up")
    assert caught.value.reason == expected


def test_deep_flattening_limit_is_eight_levels() -> None:
    decoded = {"l1": {"l2": {"l3": {"l4": {"l5": {"l6": {"l7": {"l8": 1}}}}}}}}
    assert parse_tts(_tts(decoded)).readings == (
        _r("dev1", "l1.l2.l3.l4.l5.l6.l7.l8", 1.0, TTS_TIME),
    )


def test_one_bad_message_rejects_the_whole_array() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_chirpstack(b"[" + _cs() + b"," + _cs(time=None) + b"]")
    assert caught.value.reason == "missing_field"
    assert "$[1].time" in str(caught.value)


def test_tts_message_without_any_known_kind_is_an_error() -> None:
    with pytest.raises(PayloadError) as caught:
        parse_tts(b'{"end_device_ids": {"device_id": "dev1"}, "hello": 1}')
    assert caught.value.reason == "missing_field"
