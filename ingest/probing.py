"""``ioc probe``: check the registry's probe endpoints on a schedule and publish what was seen.

Results go out as IOC JSON on ``ioc/v1/{province}/{source_id}/probe`` with QoS 1, so they enter
the same pipeline as any reading (validated against the ``probe`` kind, stored, counted in the
feeds' live-ness). A probe that cannot reach the broker logs it and tries again next round.
"""

from __future__ import annotations

import logging
import threading
import time

from ingest.probe import Endpoint, probe_all, to_ioc_json
from ioc.catalog import Catalog, SourceClass
from ioc.mqtt import make_client
from ioc.settings import Settings

__all__ = ["endpoints", "run_probes"]

log = logging.getLogger(__name__)


def endpoints(catalog: Catalog) -> tuple[Endpoint, ...]:
    """One endpoint per registered probe source."""
    return tuple(
        Endpoint(source_id=source.id, url=source.url)
        for source in catalog.registry.sources
        if catalog.kind(source.kind).source_class is SourceClass.PROBE and source.url
    )


def run_probes(
    settings: Settings, catalog: Catalog, stop: threading.Event, *, interval: float, once: bool
) -> int:
    """Probe every endpoint each ``interval`` seconds until ``stop``; return results published."""
    targets = endpoints(catalog)
    if not targets:
        log.warning(
            "the registry %s has no probe sources (kind 'probe' with a url)", catalog.registry.path
        )
    client = make_client(settings, f"ioc-probe-{settings.ingest_id}")
    client.connect(settings.mqtt_host, settings.mqtt_port)
    client.loop_start()
    published = 0
    try:
        while True:
            started = time.monotonic()
            results = probe_all(targets)
            for (source_id, payload), result in zip(to_ioc_json(results), results, strict=True):
                source = catalog.registry.source(source_id)
                topic = f"ioc/v1/{source.province}/{source.id}/{source.kind}"
                info = client.publish(topic, payload, qos=1)
                info.wait_for_publish(timeout=10)
                published += 1
                log.info(
                    "%s %s: %s",
                    source_id,
                    "up" if result.up else "DOWN",
                    result.error or f"{result.latency_ms:.0f} ms",
                )
            if once or stop.wait(max(0.0, interval - (time.monotonic() - started))):
                return published
    finally:
        client.disconnect()
        client.loop_stop()
