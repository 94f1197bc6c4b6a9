#!/usr/bin/env python3
"""Container health checks of the ioc services: ``ioc-healthcheck mqtt|influxdb|api``.

Installed as ``/usr/local/bin/ioc-healthcheck`` by ``deploy/Dockerfile`` and named by the
``healthcheck`` entries of ``deploy/compose.yaml``. It reads the same ``IOC_*`` settings as the
service it checks, so it checks what that service is configured to use.

* ``mqtt`` (collectors, probes, the alert evaluator): this container's network namespace holds
  an established TCP connection to the broker's port: the service is connected (it reconnects by
  itself when the broker goes away, and the check fails until it has).
* ``influxdb`` (engine): InfluxDB answers ``/health`` (the engine has no socket open between
  cycles; a dead engine ends its container, which ``restart`` brings back).
* ``api``: ``GET /api/v1/health/ready`` on the API's own port answers 200.

Exit 0 healthy, 1 unhealthy (with the reason on stderr), as Docker expects.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from ioc.settings import Settings, load_settings

_ESTABLISHED = "01"  # TCP state in /proc/net/tcp{,6}
_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))


def established_remote_ports(tables: tuple[Path, ...] = _TABLES) -> set[int]:
    """Remote ports of the established TCP connections in this network namespace."""
    ports: set[int] = set()
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _ESTABLISHED:
                ports.add(int(fields[2].rsplit(":", 1)[1], 16))
    return ports


def _http_ok(url: str, timeout: float) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - our own URL
            return None if answer.status == 200 else f"{url}: HTTP {answer.status}"
    except OSError as exc:
        return f"{url}: {exc}"


def check(what: str, settings: Settings) -> str | None:
    """None if healthy, else why not."""
    if what == "mqtt":
        if settings.mqtt_port in established_remote_ports():
            return None
        return f"no established connection to the broker port {settings.mqtt_port}"
    if what == "influxdb":
        return _http_ok(f"{settings.influx_url}/health", settings.influx_timeout)
    if what == "api":
        host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::") else settings.api_host  # noqa: S104
        return _http_ok(f"http://{host}:{settings.api_port}/api/v1/health/ready", 5.0)
    return f"unknown check {what!r}: use mqtt, influxdb or api"


def main(argv: list[str]) -> int:
    """Run one check named on the command line."""
    if len(argv) != 2:
        print("usage: ioc-healthcheck mqtt|influxdb|api", file=sys.stderr)
        return 2
    problem = check(argv[1], load_settings())
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
