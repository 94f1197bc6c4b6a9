"""deploy/: the compose file, env examples, Mosquitto and Grafana config and systemd units agree
with each other and with the settings the code reads (``ioc.settings.VARIABLES``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from ioc.bootstrap import plan
from ioc.devices import SERVICE_USERS
from ioc.settings import VARIABLES, load_settings, read_env_file
from tests.conftest import SHARED
from tests.deploy.conftest import DEPLOY

SETTINGS = {v.name for v in VARIABLES}
IOC_NAME = re.compile(r"\bIOC_[A-Z0-9_]+\b")
COMPOSE_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")
IOC_SERVICES = ("ioc-ingest-1", "ioc-ingest-2", "ioc-engine", "ioc-alerts", "ioc-api", "ioc-probe")
SYSTEMD = DEPLOY / "systemd"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(DEPLOY / "ioc.env.example")


def environment(service: dict[str, Any], env_example: dict[str, str]) -> dict[str, str]:
    """What a service's process sees: the env files, then ``environment`` (which wins)."""
    merged: dict[str, str] = {}
    for name in service.get("env_file", []):
        assert name == "ioc.env", "ioc services read deploy/ioc.env (from ioc.env.example)"
        merged.update(env_example)
    merged.update({k: str(v) for k, v in (service.get("environment") or {}).items()})
    return merged


def resolved(value: str) -> str:
    """A compose value with ``${VAR:-default}`` replaced by its default; secrets (no default)
    by a placeholder, as deploy/.env would set them."""

    def default_of(match: re.Match[str]) -> str:
        text = match.group(0)
        default = text.split(":-", 1)[1][:-1] if ":-" in text else ""
        return default or f"placeholder-{match.group(1).lower()}"

    return COMPOSE_VARIABLE.sub(default_of, value)


def test_compose_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {
        "mosquitto",
        "influxdb",
        "grafana",
        "alertmanager",
        "ioc-bootstrap",
        *IOC_SERVICES,
    }


@pytest.mark.parametrize(
    "name",
    ["mosquitto", "influxdb", "grafana", "alertmanager", "ioc-bootstrap", *IOC_SERVICES],
)
def test_every_service_has_an_image_a_restart_policy_and_a_health_check(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    assert service.get("image") or service.get("build")
    if name == "ioc-bootstrap":  # a one-shot task, run by hand
        assert service["restart"] == "no"
        assert service["profiles"] == ["bootstrap"]
        assert service["healthcheck"] == {"disable": True}
        return
    assert service["restart"] == "unless-stopped"
    test = service["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    images = {name: s["image"] for name, s in compose["services"].items()}
    assert images["influxdb"].startswith("influxdb:2.")
    assert images["mosquitto"].startswith("eclipse-mosquitto:2.0")
    assert images["grafana"].startswith("grafana/grafana:11.")
    for name in (*IOC_SERVICES, "ioc-bootstrap"):
        assert compose["services"][name]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_published_ports_bind_loopback_unless_configured(compose: dict[str, Any]) -> None:
    published = {}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_ip, host_port, container_port = resolved(port).rsplit(":", 2)
            assert host_ip == "127.0.0.1", f"{name}: {port} must default to loopback"
            assert re.fullmatch(r"\$\{[A-Z_]+_BIND:-127\.0\.0\.1\}:\d+:\d+", port), port
            published[name] = (int(host_port), int(container_port))
    assert set(published) == {"mosquitto", "influxdb", "grafana", "alertmanager", "ioc-api"}


def test_every_ioc_name_is_a_real_setting(compose: dict[str, Any]) -> None:
    texts = [
        (DEPLOY / "compose.yaml").read_text(),
        (DEPLOY / "ioc.env.example").read_text(),
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "influxdb.yaml").read_text(),
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "alertmanager.yaml").read_text(),
        (DEPLOY / "alertmanager" / "alertmanager.yml").read_text(),
        (DEPLOY / "healthcheck.py").read_text(),
        *(unit.read_text() for unit in SYSTEMD.iterdir()),
    ]
    used = {name for text in texts for name in IOC_NAME.findall(text)}
    assert used - SETTINGS == set()
    assert "IOC_INGEST_ID" in used


def test_the_env_example_loads_and_holds_no_secrets(env_example: dict[str, str]) -> None:
    settings = load_settings({}, env_file=DEPLOY / "ioc.env.example")
    assert settings.influx_api == "v2"
    assert settings.var_dir == Path("/var/lib/ioc")
    assert "IOC_MQTT_PASSWORD" not in env_example
    assert "IOC_MQTT_USERNAME" not in env_example
    assert env_example["IOC_INFLUX_TOKEN"] == "replaced-per-service"
    # set per collector (compose service or systemd instance); the file would override the unit
    assert "IOC_INGEST_ID" not in env_example


@pytest.mark.parametrize("name", IOC_SERVICES)
def test_each_ioc_service_loads_valid_settings(
    compose: dict[str, Any], env_example: dict[str, str], name: str
) -> None:
    env = {k: resolved(v) for k, v in environment(compose["services"][name], env_example).items()}
    if env.get("IOC_SMTP_PASSWORD"):  # a relay login: the user in ioc.env, the password in .env
        env["IOC_SMTP_USERNAME"] = "relay-user"
    settings = load_settings(env)
    services = compose["services"]
    mosquitto_port = int(services["mosquitto"]["ports"][0].rsplit(":", 1)[1])
    assert (settings.mqtt_host, settings.mqtt_port) == ("mosquitto", mosquitto_port)
    assert settings.influx_host == "influxdb"
    assert settings.influx_port == int(services["influxdb"]["ports"][0].rsplit(":", 1)[1])
    mounts = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}
    assert mounts[str(settings.registry_file.parent)] == "./registry"


def test_collectors_have_their_own_ids_a_shared_group_and_a_spool_volume(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    ids = set()
    for name in ("ioc-ingest-1", "ioc-ingest-2"):
        service = compose["services"][name]
        settings = load_settings(
            {k: resolved(v) for k, v in environment(service, env_example).items()}
        )
        ids.add(settings.ingest_id)
        assert service["command"] == ["ingest"]
        assert settings.mqtt_username == "ioc-ingest"
        assert settings.ingest_group
        spool = settings.var_dir / "spool"
        assert f"ioc-spool:{spool}" in service["volumes"]
        assert service["environment"]["IOC_INFLUX_TOKEN"] == "${INGEST_INFLUX_TOKEN:-}"
    assert len(ids) == 2


def test_each_service_gets_its_own_token(compose: dict[str, Any]) -> None:
    services = compose["services"]
    tokens = {
        name: services[name]["environment"].get("IOC_INFLUX_TOKEN")
        for name in ("ioc-ingest-1", "ioc-engine", "ioc-alerts", "ioc-api", "ioc-bootstrap")
    }
    assert tokens == {
        "ioc-ingest-1": "${INGEST_INFLUX_TOKEN:-}",
        "ioc-engine": "${ENGINE_INFLUX_TOKEN:-}",
        "ioc-alerts": "${ALERTS_INFLUX_TOKEN:-}",
        "ioc-api": "${API_INFLUX_TOKEN:-}",
        "ioc-bootstrap": "${INFLUXDB_ADMIN_TOKEN:-}",
    }
    assert services["grafana"]["environment"]["GRAFANA_INFLUX_TOKEN"] == (
        "${GRAFANA_INFLUX_TOKEN:-}"
    )


def test_the_api_port_matches_its_settings(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    service = compose["services"]["ioc-api"]
    settings = load_settings({k: resolved(v) for k, v in environment(service, env_example).items()})
    container_port = int(service["ports"][0].rsplit(":", 1)[1])
    assert settings.api_port == container_port
    assert settings.api_host == "0.0.0.0"  # noqa: S104 - inside its container; published on loopback
    assert f"ioc-api:{settings.api_state_dir}" in service["volumes"]
    assert service["healthcheck"]["test"] == ["CMD", "ioc-healthcheck", "api"]


def test_the_alert_evaluator_has_its_own_user_state_and_alertmanager(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    services = compose["services"]
    service = services["ioc-alerts"]
    env = {k: resolved(v) for k, v in environment(service, env_example).items()}
    settings = load_settings(env | {"IOC_SMTP_USERNAME": "relay-user"})
    assert service["command"] == ["alerts", "run"]
    assert settings.mqtt_username == "ioc-alerts"
    assert service["environment"]["IOC_MQTT_PASSWORD"] == "${ALERTS_MQTT_PASSWORD:-}"
    assert service["environment"]["IOC_SMTP_PASSWORD"] == "${ALERTS_SMTP_PASSWORD:-}"
    # The instances' state (SQLite) and the reminders' marker outlive the container.
    assert f"ioc-alerts:{settings.alerts_state_dir}" in service["volumes"]
    # IOC_ALERTMANAGER_URL (ioc.env) names the compose service, healthy before the evaluator starts.
    url = urlsplit(settings.alertmanager_url)
    alertmanager = services[str(url.hostname)]
    assert alertmanager["ports"][0].endswith(f":{url.port}")
    assert set(alertmanager["networks"]) & set(service["networks"])
    healthy = {"condition": "service_healthy"}
    assert service["depends_on"] == dict.fromkeys(("mosquitto", "influxdb", url.hostname), healthy)
    # It keeps its broker connection open (the publisher reconnects by itself), as collectors do.
    assert service["healthcheck"]["test"] == ["CMD", "ioc-healthcheck", "mqtt"]


def test_service_credentials_are_bootstrap_tokens_and_broker_users(
    compose: dict[str, Any],
) -> None:
    """Every token variable is one `ioc bootstrap influxdb2` prints, and each is used; every MQTT
    user a compose service or a systemd unit logs in as is a service user of `ioc devices`."""
    bootstrap_env = {"IOC_INFLUX_API": "v2", "IOC_INFLUX_ORG": "ioc", "IOC_INFLUX_TOKEN": "op"}
    printed = {token.variable for token in plan(load_settings(bootstrap_env)).tokens}
    services = compose["services"]
    tokens = {services["grafana"]["environment"]["GRAFANA_INFLUX_TOKEN"]}
    compose_users = set()
    for name in IOC_SERVICES:
        env = services[name]["environment"]
        tokens.add(env.get("IOC_INFLUX_TOKEN", ""))
        compose_users.add(env.get("IOC_MQTT_USERNAME", ""))
    assert {t for t in tokens if t} == {f"${{{variable}:-}}" for variable in printed}
    unit_users = {
        line.removeprefix("Environment=IOC_MQTT_USERNAME=")
        for unit in SYSTEMD.glob("*.service")
        for line in unit.read_text().splitlines()
        if line.startswith("Environment=IOC_MQTT_USERNAME=")
    }
    assert compose_users - {""} == unit_users == {"ioc-ingest", "ioc-alerts", "ioc-probe"}
    assert unit_users <= set(SERVICE_USERS)


def test_named_volumes_are_declared_and_used(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used = set()
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith("."):
                used.add(source)
            else:
                assert (DEPLOY / source).exists(), f"bind mount {source} is missing in deploy/"
    assert used == declared


def test_compose_variables_are_documented_in_the_env_example(compose: dict[str, Any]) -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    variables = set(COMPOSE_VARIABLE.findall(text))
    documented = set(read_env_file(DEPLOY / "env.example"))
    assert variables - documented == set()
    assert documented - variables == set()


def test_mosquitto_config_paths_match_the_volumes(compose: dict[str, Any]) -> None:
    config = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    options = dict(
        line.split(None, 1) for line in config.splitlines() if line and not line.startswith("#")
    )
    assert options["allow_anonymous"] == "false"
    assert "pattern" not in options
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["mosquitto"]["volumes"]}
    assert mounts["/mosquitto/config/mosquitto.conf"] == "./mosquitto/mosquitto.conf"
    for option, volume in (
        ("password_file", "mosquitto-auth"),
        ("acl_file", "mosquitto-auth"),
        ("persistence_location", "mosquitto-data"),
    ):
        path = Path(options[option])
        assert any(mounts.get(str(p)) == volume for p in (path, *path.parents)), option
    assert int(options["max_queued_messages"]) >= 1_000_000
    assert options["listener"] == "1883"
    bootstrap = compose["services"]["ioc-bootstrap"]
    assert "mosquitto-auth:/mosquitto/auth" in bootstrap["volumes"]  # where `ioc devices` writes
    assert bootstrap["user"] == "1883:1883"
    health = " ".join(compose["services"]["mosquitto"]["healthcheck"]["test"])
    assert "-u ioc-health" in health and "$$SYS/broker/uptime" in health


def test_grafana_datasource_is_influxql_with_a_token(compose: dict[str, Any]) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning" / "datasources" / "influxdb.yaml"
    (source,) = yaml.safe_load(provisioning.read_text())["datasources"]
    assert source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "InfluxQL"
    assert source["jsonData"]["dbName"] == "${IOC_INFLUX_DB}"
    assert source["url"] == "${IOC_INFLUX_URL}"
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    assert source["secureJsonData"]["httpHeaderValue1"] == "Token ${GRAFANA_INFLUX_TOKEN}"
    grafana = compose["services"]["grafana"]
    assert grafana["env_file"] == ["ioc.env"]  # IOC_INFLUX_URL / IOC_INFLUX_DB
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    dashboards = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/ioc.yaml").read_text())
    served = set()
    for provider in dashboards["providers"]:  # one per board family, each its own folder
        path = provider["options"]["path"]
        mount = max((m for m in mounts if path.startswith(f"{m}/")), key=len, default=None)
        assert mount is not None, f"provider path {path} is not inside a volume of grafana"
        folder = DEPLOY / mounts[mount] / path.removeprefix(f"{mount}/")
        assert sorted(folder.glob("*.json")), f"{path} ({folder}) holds no dashboard"
        served.add(folder.resolve())
    boards = DEPLOY / "grafana" / "dashboards"
    assert served == {json_file.parent.resolve() for json_file in boards.glob("*/*.json")}


def test_grafana_has_anonymous_access_off() -> None:
    ini: dict[str, dict[str, str]] = {}
    section = ""
    for raw in (DEPLOY / "grafana" / "grafana.ini").read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith(";"):
            key, _, value = line.partition("=")
            ini.setdefault(section, {})[key.strip()] = value.strip()
    assert ini["auth.anonymous"]["enabled"] == "false"
    assert ini["users"]["allow_sign_up"] == "false"
    assert ini["users"]["auto_assign_org_role"] == "Viewer"


@pytest.mark.parametrize(
    ("body", "definition"),
    [("wall-user.json", "AdminCreateUserForm"), ("playlist.json", "CreatePlaylistCommand")],
)
def test_kiosk_requests_match_grafanas_api(body: str, definition: str) -> None:
    spec = json.loads((SHARED / "data/grafana/grafana-http-api-11.4.swagger2.json").read_text())
    definitions = spec["definitions"]

    def check(value: Any, schema: dict[str, Any], where: str) -> None:
        if "$ref" in schema:
            schema = definitions[schema["$ref"].rsplit("/", 1)[1]]
        if schema.get("type") == "object" or "properties" in schema:
            assert isinstance(value, dict), where
            unknown = set(value) - set(schema["properties"])
            assert not unknown, f"{where}: not in {definition}: {unknown}"
            for key, item in value.items():
                check(item, schema["properties"][key], f"{where}.{key}")
        elif schema.get("type") == "array":
            for i, item in enumerate(value):
                check(item, schema["items"], f"{where}[{i}]")
        elif schema.get("type") == "string":
            assert isinstance(value, str), where
        elif schema.get("type") == "integer":
            assert isinstance(value, int), where

    check(
        json.loads((DEPLOY / "grafana" / "kiosk" / body).read_text()),
        {"$ref": f"#/definitions/{definition}"},
        body,
    )


def test_systemd_units_run_the_ioc_commands_hardened() -> None:
    commands = {}
    for unit in SYSTEMD.glob("*.service"):
        text = unit.read_text()
        options = [line.split("=", 1) for line in text.splitlines() if "=" in line]
        values: dict[str, list[str]] = {}
        for key, value in options:
            values.setdefault(key, []).append(value)
        commands[unit.name] = values["ExecStart"][0].removeprefix("/opt/ioc/venv/bin/ioc ")
        assert values["User"] == ["ioc"]
        assert values["EnvironmentFile"][0] == "/etc/ioc/ioc.env"
        assert values["NoNewPrivileges"] == ["yes"]
        assert values["ProtectSystem"] == ["strict"]
        assert values["ReadWritePaths"] == ["/var/lib/ioc"]
        assert values["Restart"] == ["on-failure"]
    # Alertmanager's unit runs Debian's binary (tests/deploy/test_alertmanager.py checks it).
    assert commands.pop("ioc-alertmanager.service").startswith("/usr/bin/prometheus-alertmanager ")
    assert commands == {
        "ioc-ingest@.service": "ingest",
        "ioc-engine.service": "engine run",
        "ioc-alerts.service": "alerts run",
        "ioc-api.service": "api",
        "ioc-probe.service": "probe",
    }
    ingest = (SYSTEMD / "ioc-ingest@.service").read_text()
    assert "Environment=IOC_INGEST_ID=%i" in ingest


@pytest.mark.parametrize("unit", sorted(p.name for p in SYSTEMD.glob("*.service")))
def test_each_unit_reads_its_own_secrets_file_and_belongs_to_the_target(unit: str) -> None:
    role = unit.removeprefix("ioc-").removesuffix(".service").removesuffix("@")
    lines = (SYSTEMD / unit).read_text().splitlines()
    files = [line.split("=", 1)[1] for line in lines if line.startswith("EnvironmentFile=")]
    assert files == ["/etc/ioc/ioc.env", f"/etc/ioc/secrets/{role}.env"]
    assert "PartOf=ioc.target" in lines
    wanted = {
        name
        for line in (SYSTEMD / "ioc.target").read_text().splitlines()
        if line.startswith("Wants=")
        for name in line.removeprefix("Wants=").split()
    }
    instance = re.compile(re.escape(unit).replace("@", "@[^.]+"))  # ioc-ingest@ingest-1.service
    assert any(instance.fullmatch(name) for name in wanted), unit


def test_the_alerts_unit_keeps_its_state_where_the_settings_say() -> None:
    lines = (SYSTEMD / "ioc-alerts.service").read_text().splitlines()
    settings = load_settings({}, env_file=DEPLOY / "ioc.env.example")  # /etc/ioc/ioc.env
    (states,) = (
        line.removeprefix("StateDirectory=") for line in lines if "StateDirectory=" in line
    )
    state_dirs = {Path("/var/lib") / name for name in states.split()}
    assert {settings.var_dir, settings.alerts_state_dir} <= state_dirs
    assert "Environment=IOC_MQTT_USERNAME=ioc-alerts" in lines
    (after,) = (line.removeprefix("After=").split() for line in lines if line.startswith("After="))
    assert {"mosquitto.service", "influxdb.service", "ioc-alertmanager.service"} <= set(after)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_units_verify(tmp_path: Path) -> None:
    ioc = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "ioc"
    if not ioc.exists():
        pytest.skip("no .venv/bin/ioc to stand in for /opt/ioc/venv/bin/ioc")
    names = []
    for unit in SYSTEMD.iterdir():
        text = unit.read_text().replace("/opt/ioc/venv/bin/ioc", str(ioc))
        text = text.replace("EnvironmentFile=/", "EnvironmentFile=-/")  # not installed here
        name = unit.name.replace("@.service", "@ingest-1.service")
        (tmp_path / name).write_text(text)
        names.append(str(tmp_path / name))
    analyze = shutil.which("systemd-analyze") or "systemd-analyze"
    out = subprocess.run(
        [analyze, "verify", "--man=no", *names],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    problems = [line for line in out.stderr.splitlines() if str(tmp_path) in line]
    assert problems == []
