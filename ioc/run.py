"""``ioc run`` (what ``make run`` starts): the whole system with demo data, stopped by Ctrl-C.

Order, each step visible on the terminal:

1. the local stack (Mosquitto, InfluxDB, Alertmanager), as ``ioc stack up`` starts it;
2. the collector (``ioc ingest``) and the API (``ioc api`` under gunicorn), and a demo API key
   (operator scope, valid one day) printed with a sample curl;
3. the simulator's history (``ioc simulate --once --history H``): the last H hours of the demo
   fleet, published through the broker as fast as it acknowledges, stored by the collector;
4. one engine backfill of those hours, so every indicator has values at once;
5. the engine (``ioc engine run``), the alert evaluator (``ioc alerts run``) and the live
   simulator, until Ctrl-C or SIGTERM. The first firing alerts (the demo's never-connected
   departments at once, a flood alarm after its ``for``) are printed when Alertmanager has them.

Children run in their own sessions (Ctrl-C reaches only this process, which stops them in
order: simulator, alerts, engine, API, collector last so that it flushes) and get SIGTERM if this
process dies. Their output goes to ``<var>/log/<name>.log``. A child that exits on its own
stops the whole composition with its name and log file.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

from ioc.errors import StackError
from ioc.settings import Settings, settings_environment
from ioc.stack import LocalStack, terminate_with_parent

if TYPE_CHECKING:
    from dashboards.local import LocalGrafana

HELP = (
    "the whole system with demo data: stack, collector, engine, alerts, API, simulator (make run)"
)

log = logging.getLogger(__name__)

DEFAULT_HISTORY = "12h"
"""Enough for NowCast (12 hours of PM) and every hourly indicator; about a minute to publish."""
STOP_ORDER = ("grafana", "simulate", "alerts", "engine", "api", "ingest")
GRAFANA_HINT = (
    "no grafana-server on PATH: the walls run in the compose stack of deploy/ "
    "(README 'Walls'), or install Grafana and run `make run` again"
)


@dataclass
class Child:
    """One ``ioc`` subcommand running as a child process, its output in a log file."""

    name: str
    argv: Sequence[str]
    log_file: Path
    command: Sequence[str] | None = None  # a program other than ``ioc`` (Grafana)
    extra_environment: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self, environment: dict[str, str]) -> None:
        """Start it in its own session (Ctrl-C is ours to forward), dying with us."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_file.open("ab")
        argv = [*self.command] if self.command else [sys.executable, "-m", "ioc.cli", *self.argv]
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**environment, **self.extra_environment},
            start_new_session=True,
            preexec_fn=terminate_with_parent,  # noqa: PLW1509 - prctl only, no locks taken
        )

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait, then SIGKILL; the exit code (None if it never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s: killing it", self.name, timeout)
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
        return self.process.returncode

    @property
    def exited(self) -> int | None:
        """The exit code if it has exited, else None."""
        return None if self.process is None else self.process.poll()


class Composition:
    """The demo system: the stack and the ``ioc`` processes around it."""

    def __init__(
        self,
        settings: Settings,
        *,
        history: str = DEFAULT_HISTORY,
        provinces: str | None = None,
        out: IO[str] = sys.stdout,
    ) -> None:
        self.settings = settings
        self.history = history
        self.provinces = provinces
        self.out = out
        self.stack = LocalStack(settings)
        self.environment = {**os.environ, **settings_environment(settings)}
        self.environment.pop("IOC_ENV_FILE", None)  # the settings are complete already
        self.children: dict[str, Child] = {}
        self.demo_key: str | None = None
        self.grafana: LocalGrafana | None = None
        self.alerts_seen = False

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _child(self, name: str, *argv: str) -> Child:
        child = Child(name, argv, self.stack.log_dir / f"{name}.log")
        child.start(self.environment)
        self.children[name] = child
        return child

    def _simulate_args(self) -> list[str]:
        return ["--provinces", self.provinces] if self.provinces else []

    def start(self, stop: threading.Event, *, timeout: float = 60.0) -> bool:
        """Steps 1-5; False if ``stop`` was set on the way (the caller then calls ``close``)."""
        statuses = self.stack.up(timeout=timeout, die_with_parent=True)
        for status in statuses:
            self._say(f"  {status.name:<12} {status.state:<8} {status.address}")
        self._child("ingest", "ingest")
        self._child("api", "api")
        self._start_grafana()
        self.demo_key = self._demo_key()
        self._wait_api(timeout, stop)
        if stop.is_set():
            return False
        self._say(f"publishing the last {self.history} of the demo fleet (log: history.log) ...")
        started = time.monotonic()
        history = self._child(
            "history", "simulate", "--once", "--history", self.history, *self._simulate_args()
        )
        while history.exited is None:
            if stop.wait(1.0):
                return False
            self._check_children(exclude=("history",))
        if history.exited != 0:
            raise StackError(f"the simulator's history failed; see {history.log_file}")
        self._say(f"  published in {time.monotonic() - started:.0f} s")
        self._backfill(stop)
        if stop.is_set():
            return False
        self._child("engine", "engine", "run")
        self._child("alerts", "alerts", "run")
        self._child("simulate", "simulate", "--history", "0m", *self._simulate_args())
        return True

    def _start_grafana(self) -> None:
        """Start a local Grafana with the generated walls, when one is installed."""
        from dashboards.local import LocalGrafana, find_grafana  # noqa: PLC0415

        command = find_grafana()
        if command is None:
            self._say(f"  grafana      {GRAFANA_HINT}")
            return
        self.grafana = LocalGrafana.prepare(self.settings, command, self.stack.var_dir)
        child = Child(
            "grafana",
            (),
            self.stack.log_dir / "grafana.log",
            command=self.grafana.argv(),
            extra_environment=self.grafana.environment(),
        )
        child.start(self.environment)
        self.children["grafana"] = child
        self._say(f"  grafana      starting {self.grafana.url}")

    def _demo_key(self) -> str:
        from ioc.api.keys import KeyStore  # noqa: PLC0415 - only the demo needs a key at start

        _key, cleartext = KeyStore(self.settings.api_keys_path).create(
            "demo (make run)", "operator", expires=timedelta(days=1)
        )
        return cleartext

    def _wait_api(self, timeout: float, stop: threading.Event) -> None:
        url = f"{self.api_url}/health/live"
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback
                    if answer.status == 200:
                        return
            except OSError:
                pass
            self._check_children()
            if time.monotonic() > deadline:
                raise StackError(f"the API did not answer at {url}; see {self.stack.log_dir}")
            stop.wait(0.5)

    def _backfill(self, stop: threading.Event) -> None:
        hours = int(self.history[:-1]) * {"m": 1 / 60, "h": 1, "d": 24}[self.history[-1]]
        start = datetime.now(UTC) - timedelta(hours=hours + 1)
        self._say(f"computing every indicator since {start:%Y-%m-%d %H:%M} UTC (backfill.log) ...")
        backfill = self._child("backfill", "engine", "backfill", start.isoformat())
        while backfill.exited is None:
            if stop.wait(1.0):
                return
        if backfill.exited != 0:
            raise StackError(f"the engine backfill failed; see {backfill.log_file}")

    @property
    def api_url(self) -> str:
        """The API's base URL."""
        return f"http://{self.settings.api_host}:{self.settings.api_port}/api/v1"

    def banner(self) -> None:
        """Where to look, with a working curl."""
        self._say("")
        self._say("The IOC backend runs with demo data:")
        self._say(f"  API docs       {self.api_url}/docs  (OpenAPI: {self.api_url}/openapi.json)")
        self._say(f"  demo API key   {self.demo_key}  (operator scope, valid one day)")
        self._say(
            f"  try            curl -H 'X-API-Key: {self.demo_key}' "
            f"'{self.api_url}/indicators/vn_aqi/ranking'"
        )
        self._say(f"  MQTT broker    mqtt://{self.settings.mqtt_host}:{self.settings.mqtt_port}")
        self._say(
            f"  InfluxDB       {self.settings.influx_url} (database {self.settings.influx_db})"
        )
        self._say(
            f"  alerts         {self.settings.alertmanager_url}/#/alerts  (Alertmanager);"
            f" curl -H 'X-API-Key: {self.demo_key}' '{self.api_url}/alerts'"
        )
        self._say(
            f"  alert topic    mosquitto_sub -h {self.settings.mqtt_host}"
            f" -p {self.settings.mqtt_port} -v -t '{self.settings.alerts_topic}/#'"
        )
        if self.grafana is not None:
            self._say(
                f"  walls          {self.grafana.url}/d/ioc-national-overview  (anonymous viewer;"
                f" admin password {self.grafana.admin_password})"
            )
        else:
            self._say(f"  walls          {GRAFANA_HINT}")
        self._say(f"  logs           {self.stack.log_dir}/")
        self._say("Press Ctrl-C to stop everything.")

    def _check_children(self, exclude: Sequence[str] = ()) -> None:
        for name, child in self.children.items():
            if name in exclude or name in ("history", "backfill"):
                continue
            code = child.exited
            if code is not None:
                raise StackError(f"{name} exited with code {code}; see {child.log_file}")

    def watch_once(self) -> None:
        """Raise StackError if a child or a server of the stack has stopped."""
        self._check_children()
        stopped = [s.name for s in self.stack.status() if s.state == "stopped"]
        if stopped:
            raise StackError(f"{', '.join(stopped)} stopped; see {self.stack.log_dir}")

    def firing_alerts(self) -> list[str]:
        """One line per alert active in Alertmanager (empty when none, or not reachable)."""
        from alerts.alertmanager import Alertmanager  # noqa: PLC0415
        from ioc.errors import AlertmanagerError  # noqa: PLC0415

        try:
            with Alertmanager(self.settings.alertmanager_url, timeout=2.0) as client:
                found = client.alerts()
        except AlertmanagerError:
            return []
        lines = []
        for alert in sorted(found, key=lambda a: sorted(a.labels.items())):
            name = alert.labels.get("alertname", "?")
            severity = alert.labels.get("severity", "?")
            summary = alert.annotations.get("summary_en") or ", ".join(
                f"{k}={v}" for k, v in sorted(alert.labels.items())
            )
            lines.append(f"{name} ({severity}): {summary}")
        return lines

    def _announce_alerts(self) -> None:
        """Print the first firing alerts once, with where to see them all."""
        lines = self.firing_alerts()
        if not lines:
            return
        self.alerts_seen = True
        self._say(f"{len(lines)} alerts firing, for example:")
        for line in lines[:5]:
            self._say(f"  {line}")
        self._say(
            f"all of them: {self.settings.alertmanager_url}/#/alerts or GET {self.api_url}/alerts"
        )

    def watch(self, stop: threading.Event) -> None:
        """Until ``stop``: raise StackError if a child or a server of the stack stops."""
        ticks = 0
        while not stop.wait(1.0):
            self.watch_once()
            ticks += 1
            if not self.alerts_seen and ticks % 10 == 0:
                self._announce_alerts()

    def close(self) -> None:
        """Stop the children in order, then what the stack started."""
        for name in ("history", "backfill", *STOP_ORDER):
            child = self.children.get(name)
            if child is not None:
                child.stop()
        self.stack.down(services=self.stack.started_now)


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``ioc run``."""
    parser.add_argument(
        "--history",
        default=DEFAULT_HISTORY,
        help=f"hours of demo history to publish first (default {DEFAULT_HISTORY})",
    )
    parser.add_argument(
        "--provinces", help="province codes to simulate, comma-separated (default: the demo five)"
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Start everything, print where to look, stop everything on Ctrl-C."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("received %s: stopping everything", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    composition = Composition(settings, history=args.history, provinces=args.provinces)
    code = 0
    try:
        if composition.start(stop):
            composition.banner()
            composition.watch(stop)
    except StackError as error:
        print(f"ioc run: {error}", file=sys.stderr)
        code = 1
    finally:
        print("stopping ...", flush=True)
        composition.close()
    print("stopped.")
    return code
