"""``ioc probe`` end to end: real HTTP servers, the real broker, the collector, InfluxDB."""

from __future__ import annotations

import dataclasses
import http.server
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.collector import Collector
from ingest.probing import run_probes
from ioc.catalog import INDICATORS_FILE, load_catalog
from ioc.settings import Settings
from ioc.store import Store
from tests.ingest.test_collector import wait_for

pytestmark = pytest.mark.services


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ok" else 503)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def web() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_probe_results_flow_through_the_pipeline(
    own_database: Settings, tmp_path: Path, web: str
) -> None:
    registry = tmp_path / "sources.toml"
    registry.write_text(
        "".join(
            f'[[source]]\nid = "01-probe-{name}"\nkind = "probe"\nprovince = "01"\n'
            f'name = "{name}"\nexpected_interval = "1m"\nurl = "{web}/{name}"\n\n'
            for name in ("ok", "broken")
        ),
        encoding="utf-8",
    )
    catalog = load_catalog(INDICATORS_FILE, registry)
    settings = dataclasses.replace(
        own_database, var_dir=tmp_path, ingest_id=f"p{uuid.uuid4().hex[:6]}", ingest_group=None
    )
    collector = Collector(settings, catalog, metrics_interval=1.0)
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert collector.connected.wait(20)
        time.sleep(0.3)
        assert run_probes(settings, catalog, threading.Event(), interval=60, once=True) == 2
        with Store(settings) as store:

            def rows() -> list[dict[str, object]]:
                series = store.query('SELECT * FROM "raw"."probe"')
                return [row for s in series for row in s.rows()]

            wait_for(lambda: len(rows()) == 2, what="two probe points")
            found = {row["source"]: row for row in rows()}
        ok, broken = found["01-probe-ok"], found["01-probe-broken"]
        assert (ok["probe_up"], ok["probe_status"]) == (True, 200.0)
        assert ok["probe_latency_ms"] is not None
        assert (broken["probe_up"], broken["probe_status"]) == (False, 503.0)
    finally:
        stop.set()
        thread.join(timeout=60)
