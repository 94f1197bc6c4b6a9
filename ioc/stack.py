"""The local stack: Mosquitto, InfluxDB 1.x and Alertmanager from Debian's packages, as our
child processes.

``ioc stack up`` renders the project's config files (``deploy/local/*.in``) into ``<var>/run/``,
starts each server bound to loopback on the configured ports with its data under
``<var>/<service>/`` and its output in ``<var>/log/<service>.log``, waits until the broker answers
CONNECT with CONNACK, InfluxDB answers ``/ping`` and Alertmanager ``/-/ready``, then creates the
database and retention policies. Alertmanager's receivers come from the settings
(``IOC_ALERTS_WEBHOOK_URL``, ``IOC_ALERTS_EMAIL_TO`` with ``IOC_SMTP_*``; else a null receiver),
its clustering is off. Each started process is recorded in ``<var>/run/<service>.pid``
together with its start time, so ``down`` stops exactly the processes ``up`` started (a recycled
pid is never signalled). Nothing is installed here: missing binaries are reported with the
command that installs them.
"""

from __future__ import annotations

import contextlib
import ctypes
import getpass
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from string import Template
from urllib.parse import urlsplit

from alerts.alertmanager import Alertmanager
from ioc.errors import AlertmanagerError, StackError, StoreError
from ioc.mqtt import connack
from ioc.settings import PROJECT_ROOT, Settings, is_loopback
from ioc.store import Store

log = logging.getLogger(__name__)

TEMPLATES = PROJECT_ROOT / "deploy" / "local"
ALERTMANAGER_TEMPLATES = PROJECT_ROOT / "deploy" / "alertmanager" / "ioc.tmpl"
SERVICES = ("mosquitto", "influxdb", "alertmanager")
_BINARIES = {
    "mosquitto": ("mosquitto", "/usr/sbin/mosquitto", "mosquitto"),
    "influxdb": ("influxd", "/usr/bin/influxd", "influxdb"),
    "alertmanager": (
        "prometheus-alertmanager",
        "/usr/bin/prometheus-alertmanager",
        "prometheus-alertmanager",
    ),
}
_CONFIG_FILES = {
    "mosquitto": "mosquitto.conf",
    "influxdb": "influxdb.conf",
    "alertmanager": "alertmanager.yml",
}
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class AlertTimings:
    """Alertmanager's notification timings (durations in its syntax: ``30s``, ``5m``, ``4h``).

    ``group_wait``: how long a new group waits for more alerts before its first notification;
    ``group_interval``: how long before a changed group is notified again; ``repeat_interval``:
    how long before an unchanged, still firing group is notified again. Tests use seconds.
    """

    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"


def _yaml_string(value: str) -> str:
    """A YAML double-quoted scalar (JSON's string escapes are YAML's)."""
    return json.dumps(value, ensure_ascii=False)


def _receivers_block(settings: Settings) -> str:
    """The receiver ``ioc`` as YAML lines (webhook and/or e-mail), or "" when neither is set."""
    lines: list[str] = []
    if settings.alerts_webhook_url:
        lines += [
            "    webhook_configs:",
            f"      - url: {_yaml_string(settings.alerts_webhook_url)}",
            "        send_resolved: true",
        ]
    if settings.alerts_email_to and settings.smtp_host:
        host = settings.smtp_host
        smarthost = f"[{host}]" if ":" in host else host
        lines += [
            "    email_configs:",
            f"      - to: {_yaml_string(settings.alerts_email_to)}",
            f"        from: {_yaml_string(settings.smtp_from)}",
            f"        smarthost: {_yaml_string(f'{smarthost}:{settings.smtp_port}')}",
            # A loopback relay (or the tests' SMTP server) speaks plain SMTP; others need TLS.
            f"        require_tls: {'false' if is_loopback(host) else 'true'}",
        ]
        if settings.smtp_username:
            lines.append(f"        auth_username: {_yaml_string(settings.smtp_username)}")
        if settings.smtp_password:
            lines.append(f"        auth_password: {_yaml_string(settings.smtp_password)}")
        lines += [
            "        send_resolved: true",
            "        headers:",
            """          Subject: '{{ template "ioc.email.subject" . }}'""",
            """        text: '{{ template "ioc.email.text" . }}'""",
        ]
    return "\n".join(["  - name: ioc", *lines]) + "\n" if lines else ""


def render_alertmanager_config(
    settings: Settings, run_dir: Path, timings: AlertTimings = AlertTimings()
) -> str:
    """The local Alertmanager's configuration (deploy/local/alertmanager.yml.in) for settings."""
    receivers = _receivers_block(settings)
    template = Template((TEMPLATES / "alertmanager.yml.in").read_text())
    return template.substitute(
        run_dir=run_dir,
        templates=_yaml_string(str(ALERTMANAGER_TEMPLATES)),
        receiver="ioc" if receivers else '"null"',
        receivers=receivers,
        group_wait=timings.group_wait,
        group_interval=timings.group_interval,
        repeat_interval=timings.repeat_interval,
    )


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What ``status`` knows about one service of the stack."""

    name: str
    state: str  # "healthy", "unhealthy" (running but not answering) or "stopped"
    pid: int | None
    address: str
    detail: str
    data_dir: Path
    log_file: Path

    @property
    def healthy(self) -> bool:
        """True when the process runs and answers its protocol."""
        return self.state == "healthy"


@dataclass(frozen=True, slots=True)
class _Record:
    """A started process as written to its pid file: pid, kernel start time, argv."""

    pid: int
    start_ticks: int
    argv: tuple[str, ...]


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    after_name = stat.rsplit(")", 1)[1].split()
    state = after_name[0]
    return None if state in ("Z", "X") else int(after_name[19])


def terminate_with_parent() -> None:  # pragma: no cover  (runs in the child before exec)
    """Linux: the child gets SIGTERM when the process that started it dies."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def find_binary(service: str) -> str:
    """Path of the server binary, or StackError saying how to install it."""
    command, fallback, package = _BINARIES[service]
    found = shutil.which(command) or (fallback if os.access(fallback, os.X_OK) else None)
    if not found:
        raise StackError(
            f"{command} is not installed: run `make setup` (installs the Debian package {package})"
        )
    return found


def port_is_free(host: str, port: int) -> bool:
    """True if nothing listens on host:port (we can bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_port_lock = threading.Lock()
_port_rng = random.Random()  # noqa: S311 - port choice, not secrets


def free_ports(count: int) -> list[int]:
    """Distinct loopback ports that are free now, chosen *below* the kernel's ephemeral range.

    A port handed out by ``bind(0)`` lies in the ephemeral range, where any outgoing connection
    of any process may take it as its source port while a server of ours is down (InfluxDB for
    300 s in scenario 4) and then keep it from restarting. Below that range only explicit
    binders compete.
    """
    low, _ = _ephemeral_range()
    first = 10_000 if low > 12_000 else 1024
    chosen: list[int] = []
    with _port_lock, ExitStack() as stack:
        for _ in range(2000):
            if len(chosen) == count:
                break
            port = _port_rng.randrange(first, low)
            if port in chosen:
                continue
            s = stack.enter_context(socket.socket())
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            chosen.append(port)
        while len(chosen) < count:  # a crowded range: fall back to the kernel's choice
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            chosen.append(s.getsockname()[1])
    return chosen


def stack_environment(var_dir: Path, database: str, **extra: str) -> dict[str, str]:
    """``IOC_*`` variables of a private stack in ``var_dir`` on fresh free ports (the tests, the
    fault suite and the benches each run their own stack this way)."""
    mqtt_port, influx, rpc, alertmanager = free_ports(4)
    env = {
        "IOC_VAR_DIR": str(var_dir),
        "IOC_MQTT_PORT": str(mqtt_port),
        "IOC_INFLUX_URL": f"http://127.0.0.1:{influx}",
        "IOC_INFLUX_RPC_PORT": str(rpc),
        "IOC_INFLUX_DB": database,
        "IOC_ALERTMANAGER_URL": f"http://127.0.0.1:{alertmanager}",
    }
    env.update(extra)
    return env


class LocalStack:
    """Start, stop and report the local Mosquitto, InfluxDB and Alertmanager of one ``var``
    directory; ``alert_timings`` are the local Alertmanager's (tests shorten them)."""

    def __init__(self, settings: Settings, *, alert_timings: AlertTimings = AlertTimings()) -> None:
        self.settings = settings
        self.alert_timings = alert_timings
        self.started_now: tuple[str, ...] = ()
        self.var_dir = settings.var_dir
        self.run_dir = self.var_dir / "run"
        self.log_dir = self.var_dir / "log"

    # --- paths and addresses -----------------------------------------------------------------

    def data_dir(self, service: str) -> Path:
        """Where a service keeps its data."""
        return self.var_dir / service

    def log_file(self, service: str) -> Path:
        """Where a service's output goes."""
        return self.log_dir / f"{service}.log"

    def _pid_file(self, service: str) -> Path:
        return self.run_dir / f"{service}.pid"

    def _address(self, service: str) -> tuple[str, int]:
        s = self.settings
        if service == "mosquitto":
            return s.mqtt_host, s.mqtt_port
        if service == "influxdb":
            return s.influx_host, s.influx_port
        url = urlsplit(s.alertmanager_url)
        return url.hostname or "", url.port or (443 if url.scheme == "https" else 80)

    def _ports(self, service: str) -> tuple[int, ...]:
        """Every port a service binds."""
        port = self._address(service)[1]
        return (port, self.settings.influx_rpc_port) if service == "influxdb" else (port,)

    # --- records -----------------------------------------------------------------------------

    def _read_record(self, service: str) -> _Record | None:
        """The recorded process if it is still the one we started; a stale pid file is removed."""
        path = self._pid_file(service)
        try:
            doc = json.loads(path.read_text())
            record = _Record(int(doc["pid"]), int(doc["start_ticks"]), tuple(doc["argv"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable pid file %s", path)
            path.unlink(missing_ok=True)
            return None
        if _start_ticks(record.pid) != record.start_ticks:
            path.unlink(missing_ok=True)
            return None
        return record

    def _write_record(self, service: str, record: _Record) -> None:
        path = self._pid_file(service)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"pid": record.pid, "start_ticks": record.start_ticks, "argv": record.argv})
        )
        tmp.replace(path)

    # --- up ----------------------------------------------------------------------------------

    def _check_addresses(self, services: tuple[str, ...]) -> None:
        s = self.settings
        hosts = {
            "mosquitto": ("IOC_MQTT_HOST", s.mqtt_host),
            "influxdb": ("IOC_INFLUX_URL", s.influx_host),
            "alertmanager": ("IOC_ALERTMANAGER_URL", self._address("alertmanager")[0]),
        }
        for service in services:
            variable, host = hosts[service]
            if not is_loopback(host):
                raise StackError(
                    f"{variable} points at {host!r}: the local stack serves on loopback only. "
                    "Use an existing server instead of `ioc stack up`, or point the variable at "
                    "127.0.0.1."
                )
        if "influxdb" in services and s.influx_api != "v1":
            raise StackError("the local stack runs InfluxDB 1.x: set IOC_INFLUX_API=v1 to use it")
        if "alertmanager" in services and urlsplit(s.alertmanager_url).scheme != "http":
            raise StackError(
                f"IOC_ALERTMANAGER_URL={s.alertmanager_url!r}: the local Alertmanager serves "
                "plain http on loopback"
            )
        ports = {
            "IOC_MQTT_PORT": s.mqtt_port,
            "IOC_INFLUX_URL port": s.influx_port,
            "IOC_INFLUX_RPC_PORT": s.influx_rpc_port,
            "IOC_ALERTMANAGER_URL port": self._address("alertmanager")[1],
        }
        if len(set(ports.values())) != len(ports):
            raise StackError(f"the stack's ports must differ: {ports}")

    def _render(self, service: str) -> Path:
        host, port = self._address(service)
        if service == "alertmanager":
            text = render_alertmanager_config(self.settings, self.run_dir, self.alert_timings)
        else:
            template = Template((TEMPLATES / f"{service}.conf.in").read_text())
            text = template.substitute(
                host=host,
                port=port,
                rpc_port=self.settings.influx_rpc_port,
                data_dir=self.data_dir(service),
                run_dir=self.run_dir,
                user=getpass.getuser(),
            )
        path = self.run_dir / _CONFIG_FILES[service]
        # Owner-only: Alertmanager's may hold the SMTP password.
        path.unlink(missing_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(text)
        return path

    def _argv(self, service: str, config: Path) -> tuple[str, ...]:
        binary = find_binary(service)
        if service == "mosquitto":
            return (binary, "-c", str(config))
        if service == "influxdb":
            return (binary, "run", "-config", str(config))
        host, port = self._address(service)
        listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return (
            binary,
            f"--config.file={config}",
            f"--storage.path={self.data_dir(service)}",
            f"--web.listen-address={listen}",
            f"--web.external-url={self.settings.alertmanager_url.rstrip('/')}",
            "--cluster.listen-address=",  # no clustering (gossip port) for the local one
        )

    def up(
        self,
        *,
        timeout: float = 60.0,
        die_with_parent: bool = False,
        services: tuple[str, ...] = SERVICES,
    ) -> list[ServiceStatus]:
        """Start whatever is not running, wait until each answers, create the schema."""
        unknown = set(services) - set(SERVICES)
        if unknown:
            raise ValueError(f"unknown services {sorted(unknown)}; the stack has {SERVICES}")
        services = tuple(s for s in SERVICES if s in services)
        self._check_addresses(services)
        for path in (self.run_dir, self.log_dir, *(self.data_dir(s) for s in services)):
            path.mkdir(parents=True, exist_ok=True)
        started: list[str] = []
        self.started_now = ()
        answers: dict[str, Callable[[], bool]] = {
            "mosquitto": lambda: connack(self.settings, timeout=1.0) is None,
            "influxdb": self._influx_answers,
            "alertmanager": self._alertmanager_answers,
        }
        try:
            for service in services:
                if self._read_record(service) is not None:
                    log.info("%s already runs (pid file %s)", service, self._pid_file(service))
                    continue
                self._start(service, die_with_parent=die_with_parent)
                started.append(service)
            deadline = time.monotonic() + timeout
            for service in services:
                self._wait(service, deadline, answers[service])
            if "influxdb" in services:
                with Store(self.settings) as store:
                    store.ensure_schema()
        except BaseException:
            for service in reversed(started):
                self._stop(service, timeout=10.0)
            raise
        self.started_now = tuple(started)
        return self.status(services)

    def _start(self, service: str, *, die_with_parent: bool) -> None:
        host, port = self._address(service)
        busy = [p for p in self._ports(service) if not port_is_free(host, p)]
        if busy:
            raise StackError(
                f"cannot start {service}: port {busy[0]} on {host} is already in use by another "
                "process; choose other ports with IOC_MQTT_PORT, IOC_INFLUX_URL, "
                "IOC_INFLUX_RPC_PORT or IOC_ALERTMANAGER_URL"
            )
        argv = self._argv(service, self._render(service))
        with self.log_file(service).open("ab") as out:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=terminate_with_parent if die_with_parent else None,  # noqa: PLW1509
                cwd=self.data_dir(service),
            )
        ticks = _start_ticks(process.pid)
        if ticks is None:
            raise StackError(f"{service} exited at once; see {self.log_file(service)}")
        self._write_record(service, _Record(process.pid, ticks, argv))
        log.info("started %s (pid %d) on %s:%d", service, process.pid, host, port)

    def _influx_answers(self) -> bool:
        try:
            with Store(self.settings) as store:
                store.ping()
        except StoreError:
            return False
        return True

    def _alertmanager_answers(self) -> bool:
        with Alertmanager(self.settings.alertmanager_url, timeout=1.0) as client:
            return client.ready()

    def _wait(self, service: str, deadline: float, answers: Callable[[], bool]) -> None:
        while True:
            if self._read_record(service) is None:
                raise StackError(f"{service} stopped while starting:\n{self._log_tail(service)}")
            if answers():
                return
            if time.monotonic() > deadline:
                host, port = self._address(service)
                raise StackError(
                    f"{service} did not answer in time on {host}:{port}:\n{self._log_tail(service)}"
                )
            time.sleep(0.1)

    def _log_tail(self, service: str, lines: int = 15) -> str:
        try:
            text = self.log_file(service).read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_file(service)})"
        return "\n".join("    " + line for line in text.splitlines()[-lines:])

    # --- down --------------------------------------------------------------------------------

    def down(self, timeout: float = 20.0, services: tuple[str, ...] = SERVICES) -> list[str]:
        """Stop the processes this stack started (newest first); return their names."""
        stopped = []
        for service in reversed(services):
            if self._stop(service, timeout=timeout):
                stopped.append(service)
        return stopped

    def _stop(self, service: str, *, timeout: float) -> bool:
        record = self._read_record(service)
        if record is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGTERM)
        if not self._wait_gone(record, timeout):
            log.warning(
                "%s (pid %d) ignored SIGTERM for %.0fs: killing it", service, record.pid, timeout
            )
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGKILL)
            self._wait_gone(record, 5.0)
        self._pid_file(service).unlink(missing_ok=True)
        log.info("stopped %s (pid %d)", service, record.pid)
        return True

    @staticmethod
    def _wait_gone(record: _Record, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(record.pid, os.WNOHANG)  # reap it if it is our own child
            if _start_ticks(record.pid) != record.start_ticks:
                return True
            time.sleep(0.05)
        return False

    # --- status ------------------------------------------------------------------------------

    def status(self, services: tuple[str, ...] = SERVICES) -> list[ServiceStatus]:
        """Each service: running and answering, running but silent, or stopped."""
        out = []
        for service in services:
            host, port = self._address(service)
            record = self._read_record(service)
            if record is None:
                state, detail = "stopped", "not started by this stack"
            elif service == "mosquitto":
                why = connack(self.settings, timeout=2.0)
                state, detail = (
                    ("healthy", "CONNACK received") if why is None else ("unhealthy", why)
                )
            elif service == "influxdb":
                try:
                    with Store(self.settings) as store:
                        version = store.ping()
                    state, detail = "healthy", f"/ping answered, version {version}"
                except StoreError as exc:
                    state, detail = "unhealthy", str(exc)
            else:
                state, detail = self._alertmanager_health()
            out.append(
                ServiceStatus(
                    name=service,
                    state=state,
                    pid=record.pid if record else None,
                    address=f"{host}:{port}",
                    detail=detail,
                    data_dir=self.data_dir(service),
                    log_file=self.log_file(service),
                )
            )
        return out

    def _alertmanager_health(self) -> tuple[str, str]:
        with Alertmanager(self.settings.alertmanager_url, timeout=2.0) as client:
            if not client.ready():
                return "unhealthy", f"{client.url}/-/ready does not answer 200"
            try:
                status = client.status()
            except AlertmanagerError as exc:
                return "unhealthy", str(exc)
        return "healthy", (
            f"/-/ready answered, version {status.version}, cluster {status.cluster_status}"
        )

    @contextlib.contextmanager
    def running(
        self, *, timeout: float = 60.0, services: tuple[str, ...] = SERVICES
    ) -> Iterator[list[ServiceStatus]]:
        """Run the stack for a ``with`` block, stopping on exit only what this call started.

        The started processes also get SIGTERM if this thread dies without cleaning up.
        """
        statuses = self.up(timeout=timeout, die_with_parent=True, services=services)
        try:
            yield statuses
        finally:
            self.down(services=self.started_now)
