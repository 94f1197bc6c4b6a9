"""End to end: `ioc run`'s composition (what `make run` starts) gives values for every family.

The same :class:`ioc.run.Composition` as `make run`, on a private stack with free ports, with a
shorter history (3 h) so it runs in about a minute: stack, collector, API, simulator history,
engine backfill, then the engine, the alert evaluator and the live simulator; the API must then
answer non-empty values for every indicator family, the collector must have rejected nothing,
and Alertmanager must hold the demo's firing alerts (Hà Nội's never-connected departments).
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ioc.catalog import get_catalog
from ioc.run import Composition
from ioc.settings import load_settings
from ioc.stack import free_ports
from ioc.store import Store
from tests.conftest import stack_environment

pytestmark = pytest.mark.services

FAMILIES = {
    "air": "vn_aqi",
    "water": "flood_level",
    "traffic": "traffic_volume",
    "public services (Decision 766)": "dossier_on_time_rate",
    "Resolution 57 tasks": "task_completion_rate",
    "data sharing": "data_transactions",
    "feed liveness": "feed_live_share",
}


def _get(url: str, key: str) -> Any:
    request = urllib.request.Request(url, headers={"X-API-Key": key})  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return json.loads(answer.read())


def test_the_demo_composition_serves_every_indicator_family(tmp_path: Path) -> None:
    [api_port] = free_ports(1)
    environment = stack_environment(
        tmp_path / "var",
        IOC_API_PORT=str(api_port),
        IOC_ENGINE_INTERVAL="5",
        IOC_ALERTS_INTERVAL="5",
    )
    settings = load_settings(environment)
    out = io.StringIO()
    composition = Composition(settings, history="3h", out=out)
    stop = threading.Event()
    try:
        assert composition.start(stop, timeout=90), out.getvalue()
        assert composition.demo_key is not None
        base = composition.api_url
        for family, indicator in FAMILIES.items():
            page = _get(
                f"{base}/indicators/{indicator}/values?level=province", composition.demo_key
            )
            values = [item["value"] for item in page["items"]]
            assert values, f"{family}: no {indicator} value for any province\n{out.getvalue()}"
        # the situations of INDICATORS.md §7 are visible through the API
        feeds = _get(f"{base}/feeds?province=01&state=never_reported", composition.demo_key)
        departments = {item["department"] for item in feeds["items"]}
        assert {"Sở Y tế", "Sở Công Thương", "Sở Tư pháp"} <= departments
        overdue = _get(
            f"{base}/indicators/tasks_overdue/values?level=province&province=01",
            composition.demo_key,
        )
        assert overdue["items"][0]["value"] > 0
        # the alert evaluator fires for the departments that never reported (no `for`)
        deadline = time.monotonic() + 90
        while not any(line.startswith("feed-silent") for line in composition.firing_alerts()):
            assert time.monotonic() < deadline, f"no alert firing\n{out.getvalue()}"
            composition.watch_once()
            time.sleep(2)
        alerts = _get(f"{base}/alerts?province=01", composition.demo_key)
        silent = {
            a["labels"].get("source")
            for a in alerts["items"]
            if a["labels"]["alertname"] == "feed-silent"
        }
        never = {item["source"] for item in feeds["items"]}
        assert never <= silent, (never, silent)
        composition.banner()
        assert "/alerts" in out.getvalue() and "mosquitto_sub" in out.getvalue()
        # the live processes keep running, and nothing the simulator sent was rejected
        time.sleep(2)
        composition.watch_once()
        catalog = get_catalog(settings.registry_file)
        assert catalog.registry.sources
        with Store(settings) as store:
            letters = store.query('SELECT count("message") FROM "ops"."dead_letter"')
        assert not letters, letters[0].rows() if letters else None
    finally:
        composition.close()
    for child in composition.children.values():
        assert child.exited is not None  # everything stopped
