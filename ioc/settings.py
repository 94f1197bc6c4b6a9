"""The one settings object, read from ``IOC_*`` environment variables and an optional env file.

Nothing else in the project reads the environment: processes call :func:`load_settings` once at
start and pass the resulting immutable :class:`Settings` down. Every variable is listed in
``VARIABLES`` with its default and its check; an invalid value, or an ``IOC_*`` name that is not a
setting (a typo), fails at start with a message that names the variable and the value.

Precedence: process environment, then the env file (``IOC_ENV_FILE`` or the ``--env-file``
option), then the defaults below.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from ioc.errors import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout this package runs from (``deploy/local`` and the default ``var/`` live here)."""

PREFIX = "IOC_"
ENV_FILE_VARIABLE = "IOC_ENV_FILE"

InfluxApi = Literal["v1", "v2"]
MqttProtocol = Literal["5", "3.1.1"]

_DURATION = re.compile(r"^(INF|(\d+(w|d|h|m))+)$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True, slots=True)
class Settings:
    """Validated configuration of every IOC process."""

    var_dir: Path
    log_level: str
    mqtt_host: str
    mqtt_port: int
    mqtt_username: str | None
    mqtt_password: str | None
    mqtt_protocol: MqttProtocol
    influx_url: str
    influx_api: InfluxApi
    influx_db: str
    influx_username: str | None
    influx_password: str | None
    influx_org: str | None
    influx_token: str | None
    influx_timeout: float
    influx_rpc_port: int
    retention_raw: str
    retention_derived: str
    retention_ops: str
    registry_file: Path
    engine_interval: float
    engine_lookback: str
    ingest_id: str
    ingest_group: str | None
    ingest_max_age: str
    ingest_max_future: str
    ingest_spool_max_mb: int
    ingest_dead_letter_topic: str | None
    api_host: str
    api_port: int
    api_workers: int
    api_keys_file: Path | None
    api_rate_limit: int
    api_cache_seconds: float
    grafana_port: int
    alertmanager_url: str
    alerts_id: str
    alerts_interval: float
    alerts_rules_file: Path | None
    alerts_topic: str
    alerts_webhook_url: str | None
    alerts_email_to: str | None
    wall_url: str | None
    smtp_host: str | None
    smtp_port: int
    smtp_from: str
    smtp_username: str | None
    smtp_password: str | None
    reminders_at: str
    reminders_soon: str

    @property
    def influx_port(self) -> int:
        """The TCP port of ``influx_url`` (explicit, or the scheme's default)."""
        parts = urlsplit(self.influx_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def influx_host(self) -> str:
        """The host name or address of ``influx_url``."""
        return urlsplit(self.influx_url).hostname or ""

    @property
    def api_keys_path(self) -> Path:
        """The API key file: ``IOC_API_KEYS_FILE``, or ``<var>/api/keys.json``."""
        return self.api_keys_file or self.var_dir / "api" / "keys.json"

    @property
    def api_state_dir(self) -> Path:
        """Where the API workers share state (the rate limiter's database)."""
        return self.api_keys_path.parent

    @property
    def alerts_state_dir(self) -> Path:
        """Where an alert evaluator keeps its state (``<var>/alerts``)."""
        return self.var_dir / "alerts"

    @property
    def wall_base_url(self) -> str:
        """Base URL of the Grafana walls for links in alerts (``IOC_WALL_URL`` or local Grafana)."""
        return (self.wall_url or f"http://127.0.0.1:{self.grafana_port}").rstrip("/")

    def retention_policies(self) -> dict[str, str]:
        """Retention policy name to duration; ``raw`` is the database's default policy."""
        return {
            "raw": self.retention_raw,
            "derived": self.retention_derived,
            "ops": self.retention_ops,
        }

    def redacted(self) -> dict[str, str]:
        """Every setting as text for display, with secrets replaced."""
        shown: dict[str, str] = {}
        for spec in VARIABLES:
            value = getattr(self, spec.field)
            if spec.secret and value:
                shown[spec.name] = "***"
            else:
                shown[spec.name] = "" if value is None else str(value)
        return shown


# --- parsers: each takes the raw text and returns the typed value or raises ValueError(why) ---


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise ValueError("must be an integer between 1 and 65535") from None
    if not 1 <= port <= 65535:
        raise ValueError("must be an integer between 1 and 65535")
    return port


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number of seconds greater than 0") from None
    if not (value > 0 and value < float("inf")):
        raise ValueError("must be a number of seconds greater than 0")
    return value


def _host(text: str) -> str:
    if not text or any(c.isspace() for c in text) or "/" in text:
        raise ValueError("must be a host name or an IP address, without scheme or port")
    return text


def _url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:18086"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must be the server's base URL, without path, query or fragment")
    try:
        parts.port  # noqa: B018  (evaluating it validates the port)
    except ValueError:
        raise ValueError("has an invalid port") from None
    return text.rstrip("/")


def _name(text: str) -> str:
    if not _NAME.match(text):
        raise ValueError("must be 1-64 characters of letters, digits, '_', '.', '-'")
    return text


def _duration(text: str) -> str:
    if not _DURATION.match(text):
        raise ValueError("must be an InfluxQL duration such as 90d, 12w, 720h or INF")
    return text


def _optional(text: str) -> str | None:
    return text or None


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError("must be one of " + ", ".join(allowed))
        return text

    return parse


def _log_level(text: str) -> str:
    level = text.upper()
    if level not in _LOG_LEVELS:
        raise ValueError("must be one of " + ", ".join(_LOG_LEVELS))
    return level


def _path(text: str) -> Path:
    if not text:
        raise ValueError("must be a directory path")
    path = Path(text).expanduser()
    return path if path.is_absolute() else (Path.cwd() / path)


def _file(text: str) -> Path:
    if not text:
        raise ValueError("must be a file path")
    path = Path(text).expanduser()
    return path if path.is_absolute() else (Path.cwd() / path)


def _optional_name(text: str) -> str | None:
    return _name(text) if text else None


def _positive_int(text: str) -> int:
    if not re.fullmatch(r"[1-9][0-9]{0,8}", text):
        raise ValueError("must be a whole number greater than 0")
    return int(text)


def _optional_file(text: str) -> Path | None:
    return _file(text) if text else None


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number of seconds, 0 or more") from None
    if not (value >= 0 and value < float("inf")):
        raise ValueError("must be a number of seconds, 0 or more")
    return value


def _optional_url(text: str) -> str | None:
    if not text:
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    return text


def _topic_prefix(text: str) -> str:
    if not text or text.startswith("/") or text.endswith("/") or any(c in text for c in "#+"):
        raise ValueError("must be an MQTT topic prefix without wildcards or outer '/'")
    return text


def _emails(text: str) -> str | None:
    if not text:
        return None
    for address in text.split(","):
        if not re.fullmatch(r"[^@\s,]+@[^@\s,]+", address.strip()):
            raise ValueError("must be e-mail addresses separated by commas")
    return ",".join(a.strip() for a in text.split(","))


def _email(text: str) -> str:
    if not re.fullmatch(r"[^@\s,]+@[^@\s,]+", text):
        raise ValueError("must be an e-mail address")
    return text


def _time_of_day(text: str) -> str:
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", text):
        raise ValueError("must be a time of day HH:MM (Vietnam time, UTC+7)")
    return text


def _lookback(text: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]*(m|h|d)", text):
        raise ValueError("must be a duration such as 90m, 3h or 2d")
    return text


@dataclass(frozen=True, slots=True)
class Variable:
    """One ``IOC_*`` variable: its field, default, parser and documentation."""

    name: str
    field: str
    default: str
    parse: Callable[[str], Any]
    doc: str
    secret: bool = False


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "IOC_VAR_DIR",
        "var_dir",
        str(PROJECT_ROOT / "var"),
        _path,
        "Data, logs and pid files of the local stack and collector spools.",
    ),
    Variable("IOC_LOG_LEVEL", "log_level", "INFO", _log_level, "Log level of every process."),
    Variable("IOC_MQTT_HOST", "mqtt_host", "127.0.0.1", _host, "MQTT broker host."),
    Variable(
        "IOC_MQTT_PORT",
        "mqtt_port",
        "11883",
        _port,
        "MQTT broker port (the local stack listens here).",
    ),
    Variable("IOC_MQTT_USERNAME", "mqtt_username", "", _optional, "MQTT user name, if any."),
    Variable(
        "IOC_MQTT_PASSWORD", "mqtt_password", "", _optional, "MQTT password, if any.", secret=True
    ),
    Variable(
        "IOC_MQTT_PROTOCOL", "mqtt_protocol", "5", _choice("5", "3.1.1"), "MQTT protocol version."
    ),
    Variable(
        "IOC_INFLUX_URL",
        "influx_url",
        "http://127.0.0.1:18086",
        _url,
        "InfluxDB base URL (the local stack listens here).",
    ),
    Variable(
        "IOC_INFLUX_API",
        "influx_api",
        "v1",
        _choice("v1", "v2"),
        "Write API: v1 /write (db, rp, user/password) or v2 /api/v2/write (org, token).",
    ),
    Variable(
        "IOC_INFLUX_DB",
        "influx_db",
        "ioc",
        _name,
        "Database (v1); with v2, buckets are named '<db>/<rp>'.",
    ),
    Variable("IOC_INFLUX_USERNAME", "influx_username", "", _optional, "InfluxDB 1.x user."),
    Variable(
        "IOC_INFLUX_PASSWORD",
        "influx_password",
        "",
        _optional,
        "InfluxDB 1.x password.",
        secret=True,
    ),
    Variable("IOC_INFLUX_ORG", "influx_org", "", _optional, "InfluxDB 2.x organisation."),
    Variable(
        "IOC_INFLUX_TOKEN", "influx_token", "", _optional, "InfluxDB 2.x API token.", secret=True
    ),
    Variable(
        "IOC_INFLUX_TIMEOUT",
        "influx_timeout",
        "10",
        _positive_float,
        "Seconds to wait for InfluxDB on each request.",
    ),
    Variable(
        "IOC_INFLUX_RPC_PORT",
        "influx_rpc_port",
        "18088",
        _port,
        "Local stack only: the InfluxDB 1.x backup/restore RPC port (loopback).",
    ),
    Variable(
        "IOC_RETENTION_RAW",
        "retention_raw",
        "400d",
        _duration,
        "How long raw readings are kept (retention policy 'raw', the default).",
    ),
    Variable(
        "IOC_RETENTION_DERIVED",
        "retention_derived",
        "INF",
        _duration,
        "How long derived indicator values are kept (retention policy 'derived').",
    ),
    Variable(
        "IOC_RETENTION_OPS",
        "retention_ops",
        "30d",
        _duration,
        "How long self-metrics and dead letters are kept (retention policy 'ops').",
    ),
    Variable(
        "IOC_REGISTRY_FILE",
        "registry_file",
        str(Path(__file__).resolve().parent / "catalog" / "sources.toml"),
        _file,
        "The source registry (devices, feeds, probes); default: the packaged demo registry.",
    ),
    Variable(
        "IOC_ENGINE_INTERVAL",
        "engine_interval",
        "60",
        _positive_float,
        "Seconds between two engine cycles.",
    ),
    Variable(
        "IOC_ENGINE_LOOKBACK",
        "engine_lookback",
        "3h",
        _lookback,
        "How far back each engine cycle recomputes periods, for late readings (e.g. 3h, 1d).",
    ),
    Variable(
        "IOC_INGEST_ID",
        "ingest_id",
        "ingest-1",
        _name,
        "This collector's name: its MQTT client id is ioc-<name>, its spool var/spool/<name>.",
    ),
    Variable(
        "IOC_INGEST_GROUP",
        "ingest_group",
        "ioc-ingest",
        _optional_name,
        "Shared-subscription group ($share/<group>/...) of the collectors; empty: not shared.",
    ),
    Variable(
        "IOC_INGEST_MAX_AGE",
        "ingest_max_age",
        "7d",
        _lookback,
        "Readings older than this (device time vs receive time) are rejected as too_old.",
    ),
    Variable(
        "IOC_INGEST_MAX_FUTURE",
        "ingest_max_future",
        "5m",
        _lookback,
        "Readings further ahead than this are rejected as in_future (device clock skew).",
    ),
    Variable(
        "IOC_INGEST_SPOOL_MAX_MB",
        "ingest_spool_max_mb",
        "1024",
        _positive_int,
        "Size limit of a collector's spool; when full it stops acknowledging (backpressure).",
    ),
    Variable(
        "IOC_INGEST_DEAD_LETTER_TOPIC",
        "ingest_dead_letter_topic",
        "",
        _optional,
        "If set, dead letters are also published to <topic>/<reason> (QoS 1).",
    ),
    Variable(
        "IOC_API_HOST",
        "api_host",
        "127.0.0.1",
        _host,
        "Address the API (gunicorn) listens on; loopback unless you put it behind a proxy.",
    ),
    Variable("IOC_API_PORT", "api_port", "18080", _port, "Port the API listens on."),
    Variable("IOC_API_WORKERS", "api_workers", "2", _positive_int, "gunicorn worker processes."),
    Variable(
        "IOC_API_KEYS_FILE",
        "api_keys_file",
        "",
        _optional_file,
        "The API key file (hashes only); default <var>/api/keys.json.",
    ),
    Variable(
        "IOC_API_RATE_LIMIT",
        "api_rate_limit",
        "600",
        _positive_int,
        "Requests per minute allowed to one API key (all workers together); then 429.",
    ),
    Variable(
        "IOC_API_CACHE_SECONDS",
        "api_cache_seconds",
        "5",
        _non_negative_float,
        "How long identical API queries are answered from a worker's cache (0: no cache).",
    ),
    Variable(
        "IOC_GRAFANA_PORT",
        "grafana_port",
        "13000",
        _port,
        "Port of the Grafana that `ioc run` starts on loopback when grafana-server is installed.",
    ),
    Variable(
        "IOC_ALERTMANAGER_URL",
        "alertmanager_url",
        "http://127.0.0.1:19093",
        _url,
        "Alertmanager that receives the alerts (the local stack starts one on this port).",
    ),
    Variable(
        "IOC_ALERTS_ID",
        "alerts_id",
        "alerts-1",
        _name,
        "An alert evaluator's name: MQTT client id ioc-<name>, state <var>/alerts/<name>.sqlite.",
    ),
    Variable(
        "IOC_ALERTS_INTERVAL",
        "alerts_interval",
        "30",
        _positive_float,
        "Seconds between two evaluations of the alert rules.",
    ),
    Variable(
        "IOC_ALERTS_RULES_FILE",
        "alerts_rules_file",
        "",
        _optional_file,
        "Operator alert rules (TOML), added to the rules generated from the catalog.",
    ),
    Variable(
        "IOC_ALERTS_TOPIC",
        "alerts_topic",
        "ioc/alerts/v1",
        _topic_prefix,
        "Retained alert states go to <prefix>/<province>/<alertname>/<severity>/<id>.",
    ),
    Variable(
        "IOC_ALERTS_WEBHOOK_URL",
        "alerts_webhook_url",
        "",
        _optional_url,
        "Local Alertmanager: a webhook receiver for every notification (optional).",
    ),
    Variable(
        "IOC_ALERTS_EMAIL_TO",
        "alerts_email_to",
        "",
        _emails,
        "Local Alertmanager: e-mail addresses that receive every notification (needs IOC_SMTP_*).",
    ),
    Variable(
        "IOC_WALL_URL",
        "wall_url",
        "",
        _optional_url,
        "Base URL of the Grafana walls for links in alerts; default the local Grafana.",
    ),
    Variable("IOC_SMTP_HOST", "smtp_host", "", _optional, "SMTP server for e-mail (optional)."),
    Variable("IOC_SMTP_PORT", "smtp_port", "25", _port, "SMTP server port."),
    Variable(
        "IOC_SMTP_FROM", "smtp_from", "ioc@localhost", _email, "Sender of alert and reminder mail."
    ),
    Variable("IOC_SMTP_USERNAME", "smtp_username", "", _optional, "SMTP user, if any."),
    Variable(
        "IOC_SMTP_PASSWORD", "smtp_password", "", _optional, "SMTP password, if any.", secret=True
    ),
    Variable(
        "IOC_REMINDERS_AT",
        "reminders_at",
        "08:00",
        _time_of_day,
        "Time of day (Vietnam time) the reminder digests to late units are sent.",
    ),
    Variable(
        "IOC_REMINDERS_SOON",
        "reminders_soon",
        "7d",
        _lookback,
        "Tasks due within this window are listed as soon due in the reminders.",
    ),
)

_BY_NAME = {spec.name: spec for spec in VARIABLES}


def settings_environment(settings: Settings) -> dict[str, str]:
    """Every setting as an ``IOC_*`` variable, so a child process gets exactly these settings."""
    environment = {}
    for spec in VARIABLES:
        value = getattr(settings, spec.field)
        environment[spec.name] = "" if value is None else str(value)
    return environment


def read_env_file(path: Path) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines (``#`` comments, optional ``export``, optional quotes)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(
            f"{ENV_FILE_VARIABLE}={str(path)!r}: cannot read: {exc.strerror}"
        ) from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            raise SettingsError(f"{path}:{number}: expected KEY=VALUE, found {raw!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: Path | str | None = None
) -> Settings:
    """Build and validate the settings; raise SettingsError naming every bad variable."""
    env = dict(os.environ if environ is None else environ)
    file_name = env_file if env_file is not None else env.get(ENV_FILE_VARIABLE) or None
    merged: dict[str, str] = {}
    if file_name is not None:
        merged.update(read_env_file(Path(file_name)))
    merged.update({k: v for k, v in env.items() if k.startswith(PREFIX)})
    merged.pop(ENV_FILE_VARIABLE, None)

    problems: list[str] = []
    for name in sorted(merged):
        if name.startswith(PREFIX) and name not in _BY_NAME:
            close = difflib.get_close_matches(name, list(_BY_NAME), n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            problems.append(f"{name} is not a known setting{hint}")

    values: dict[str, Any] = {}
    for spec in VARIABLES:
        text = merged.get(spec.name, spec.default).strip()
        try:
            values[spec.field] = spec.parse(text)
        except ValueError as why:
            shown = "***" if spec.secret else text
            problems.append(f"{spec.name}={shown!r}: {why}")
    if not problems:
        problems.extend(_cross_checks(values))
    if problems:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))
    return Settings(**values)


def _cross_checks(values: Mapping[str, Any]) -> list[str]:
    problems = []
    if values["influx_api"] == "v2":
        for field, name in (("influx_org", "IOC_INFLUX_ORG"), ("influx_token", "IOC_INFLUX_TOKEN")):
            if not values[field]:
                problems.append(f"{name}='': required when IOC_INFLUX_API='v2'")
    if bool(values["influx_username"]) != bool(values["influx_password"]):
        problems.append(
            "IOC_INFLUX_USERNAME and IOC_INFLUX_PASSWORD: set both or neither "
            f"(username={values['influx_username'] or ''!r})"
        )
    if values["alerts_email_to"] and not values["smtp_host"]:
        problems.append("IOC_ALERTS_EMAIL_TO is set but IOC_SMTP_HOST='' is empty")
    if values["smtp_password"] and not values["smtp_username"]:
        problems.append("IOC_SMTP_PASSWORD is set but IOC_SMTP_USERNAME='' is empty")
    if values["mqtt_password"] and not values["mqtt_username"]:
        problems.append("IOC_MQTT_PASSWORD is set but IOC_MQTT_USERNAME='' is empty")
    return problems


def is_loopback(host: str) -> bool:
    """True if ``host`` names this machine's loopback interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
