"""The load profile: its registry is accepted by the catalog loader and its messages by ingest."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest

from ioc.catalog import INDICATORS_FILE, load_catalog
from ioc.places import get_places
from ioc.simulate.load import LoadProfile, registry_toml, run_load
from tests.simulate.recorder import Recorder
from tests.simulate.support import NS, router


def test_the_written_registry_makes_the_collector_accept_the_load(tmp_path: Path) -> None:
    profile = LoadProfile(devices=25, metrics=8, rate=1000, duration_s=0.05)
    path = tmp_path / "load.toml"
    path.write_text(registry_toml(profile, tuple(w.code for w in get_places().wards_of("01"))))
    catalog = load_catalog(INDICATORS_FILE, path)
    assert len(catalog.registry.sources) == 25
    route = router(catalog)
    for sequence in range(50):
        topic, payload = profile.message(sequence, 1_763_600_000_000 + sequence)
        routed = route.route(topic, payload, 1_763_600_000_000 * 1_000_000 + NS)
        assert routed.dead_letters == ()
        (point,) = routed.points
        assert len(point.fields) == 8 + 1  # the metrics and received_ms


def test_messages_cycle_through_the_devices_with_m_metrics() -> None:
    profile = LoadProfile(devices=3, metrics=2, rate=10, duration_s=1)
    sources = [orjson.loads(profile.message(k, 0)[1])["source"] for k in range(4)]
    assert sources == ["load-00001", "load-00002", "load-00003", "load-00001"]
    assert list(orjson.loads(profile.message(0, 0)[1])["metrics"]) == ["pm25", "pm10"]


def test_run_load_sends_rate_times_duration_messages() -> None:
    sink = Recorder()
    sent = run_load(LoadProfile(5, 3, rate=2000, duration_s=0.1), sink, threading.Event())
    assert sent == len(sink.messages) == 200


@pytest.mark.parametrize(
    ("devices", "metrics", "rate", "duration", "option"),
    [
        (0, 1, 1, 1, "--devices"),
        (1, 9, 1, 1, "--metrics"),
        (1, 1, 0, 1, "--rate"),
        (1, 1, 1, 0, "--duration"),
    ],
)
def test_a_bad_profile_names_the_option(
    devices: int, metrics: int, rate: float, duration: float, option: str
) -> None:
    with pytest.raises(ValueError, match=option):
        LoadProfile(devices, metrics, rate, duration)
