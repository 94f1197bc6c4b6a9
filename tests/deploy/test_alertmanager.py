"""deploy/: Alertmanager in compose and systemd, its config and render script, Grafana's datasource.

The production config is rendered by the real awk (as the container and the unit do) and checked
by the real ``amtool``; it must say what the local stack's config says for the same settings, and
the compose command line must start a real Alertmanager.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from ioc.settings import VARIABLES, load_settings, read_env_file
from ioc.stack import free_ports, render_alertmanager_config
from tests.deploy.conftest import DEPLOY
from tests.deploy.test_compose import environment, resolved

CONFIG_DIR = DEPLOY / "alertmanager"
CONFIG = CONFIG_DIR / "alertmanager.yml"
RENDER = CONFIG_DIR / "render.awk"
UNIT = DEPLOY / "systemd" / "ioc-alertmanager.service"
PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")
AWK = shutil.which("awk") or "/usr/bin/awk"
AMTOOL = shutil.which("amtool") or "/usr/bin/amtool"
BINARY = shutil.which("prometheus-alertmanager") or "/usr/bin/prometheus-alertmanager"


def config_lines() -> list[str]:
    """The lines of the production config that are not comments."""
    return [line for line in CONFIG.read_text().splitlines() if not line.lstrip().startswith("#")]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def service(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"]["alertmanager"]
    return found


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(DEPLOY / "ioc.env.example")


def render(env: dict[str, str], out: Path) -> dict[str, Any]:
    """Render deploy/alertmanager/alertmanager.yml with awk as the deployments do; parse it."""
    with out.open("w") as target:
        subprocess.run(
            [AWK, "-f", str(RENDER), str(CONFIG)],
            env={"PATH": os.environ["PATH"], **env},
            stdout=target,
            check=True,
            timeout=30,
        )
    loaded: dict[str, Any] = yaml.safe_load(out.read_text())
    return loaded


def amtool_accepts(path: Path, templates: Path = CONFIG_DIR / "ioc.tmpl") -> None:
    """The real amtool checks the config (templates path pointed at the repository's file)."""
    text = path.read_text().replace("/etc/ioc/alertmanager/ioc.tmpl", str(templates))
    path.write_text(text)
    checked = subprocess.run(
        [AMTOOL, "check-config", str(path)], capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert " - 1 templates" in checked.stdout


def test_the_service_runs_the_pinned_image_on_loopback_with_clustering_off(
    service: dict[str, Any], env_example: dict[str, str]
) -> None:
    assert service["image"] == "prom/alertmanager:v0.25.0"  # Debian bookworm's version
    assert service["ports"] == ["${ALERTMANAGER_BIND:-127.0.0.1}:9093:9093"]
    command = " ".join(service["entrypoint"][2:])
    assert "--cluster.listen-address= " in command
    assert "--web.listen-address=:9093" in command
    assert service["healthcheck"]["test"][-1] == "http://127.0.0.1:9093/-/ready"
    # The ioc services post to this service: IOC_ALERTMANAGER_URL names it and its port.
    url = load_settings(env_example).alertmanager_url
    assert url == "http://alertmanager:9093"
    assert service["networks"] == ["backend"]


def test_the_config_is_rendered_from_the_mounted_directory_into_a_tmpfs(
    service: dict[str, Any],
) -> None:
    assert service["entrypoint"][:2] == ["/bin/sh", "-c"]
    words = shlex.split(service["entrypoint"][2])
    mounts = {v.split(":")[1]: v.split(":")[0] for v in service["volumes"]}
    assert mounts["/etc/ioc/alertmanager"] == "./alertmanager"
    assert mounts["/alertmanager"] == "alertmanager-data"
    script, template = words[words.index("-f") + 1], words[words.index("-f") + 2]
    for path in (script, template):
        assert (DEPLOY / "alertmanager" / Path(path).relative_to("/etc/ioc/alertmanager")).is_file()
    rendered = words[words.index(">") + 1]
    assert Path(rendered).parent == Path(service["tmpfs"][0])
    assert f"--config.file={rendered}" in words
    assert "--storage.path=/alertmanager" in words
    assert "umask" in words and "077" in words
    config = yaml.safe_load(CONFIG.read_text())
    assert config["templates"] == ["/etc/ioc/alertmanager/ioc.tmpl"]


def test_secrets_come_from_the_environment_not_from_files(
    service: dict[str, Any], env_example: dict[str, str]
) -> None:
    assert service["environment"]["IOC_SMTP_PASSWORD"] == "${ALERTMANAGER_SMTP_PASSWORD:-}"
    assert "IOC_SMTP_PASSWORD" not in env_example
    assert service["env_file"] == ["ioc.env"]
    config = yaml.safe_load(CONFIG.read_text())
    (email,) = next(r for r in config["receivers"] if r["name"] == "ioc")["email_configs"]
    assert email["auth_password"] == "${IOC_SMTP_PASSWORD}"
    # Every placeholder stands inside double quotes, where render.awk escapes its value.
    for line in config_lines():
        for match in PLACEHOLDER.finditer(line):
            before, after = line[: match.start()], line[match.end() :]
            assert before.count('"') % 2 == 1 and '"' in after, line


def test_placeholder_defaults_are_the_settings_defaults() -> None:
    defaults = {v.name: v.default for v in VARIABLES}
    found = dict(PLACEHOLDER.findall("\n".join(config_lines())))
    assert set(found) <= set(defaults)
    for name, default in found.items():
        if default:
            assert default == defaults[name], name


CASES = {
    "no receiver": {},
    "webhook": {"IOC_ALERTS_WEBHOOK_URL": "https://hooks.example/ioc?key=a\"b\\c'd"},
    "e-mail with login": {
        "IOC_ALERTS_EMAIL_TO": "ops@ioc.example, duty@ioc.example",
        "IOC_SMTP_HOST": "smtp.example.gov.vn",
        "IOC_SMTP_USERNAME": "ioc",
        "IOC_SMTP_PASSWORD": 'p@ss: "w\\ord" # not a comment {{ .x }}',
    },
    "both": {
        "IOC_ALERTS_WEBHOOK_URL": "http://wall-siren.local/alerts",
        "IOC_ALERTS_EMAIL_TO": "ops@ioc.example",
        "IOC_SMTP_HOST": "relay.example",
        "IOC_SMTP_PORT": "587",
        "IOC_SMTP_FROM": "canh-bao@ioc.example",
    },
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_production_config_renders_passes_amtool_and_agrees_with_the_local_one(
    tmp_path: Path, case: str
) -> None:
    env = CASES[case]
    settings = load_settings(env)
    production = render(env, tmp_path / "production.yml")
    local = yaml.safe_load(render_alertmanager_config(settings, tmp_path))

    assert production["route"]["group_by"] == local["route"]["group_by"]
    assert production["inhibit_rules"] == local["inhibit_rules"]
    assert production["global"] == local["global"]
    receivers = {r["name"]: r for r in production["receivers"]}
    local_receivers = {r["name"]: r for r in local["receivers"]}
    if case == "no receiver":
        assert receivers["ioc"] == {"name": "ioc"}  # notifies nobody, like local "null"
        assert set(local_receivers) == {"null"}
    else:
        assert receivers["ioc"].get("webhook_configs") == local_receivers["ioc"].get(
            "webhook_configs"
        )
        mails, local_mails = (
            r["ioc"].get("email_configs", []) for r in (receivers, local_receivers)
        )
        assert len(mails) == len(local_mails) == (1 if settings.alerts_email_to else 0)
        for mail, local_mail in zip(mails, local_mails, strict=True):
            assert mail["require_tls"] is True  # production: a relay across the network
            # The settings normalise the address list; Alertmanager reads both alike.
            addresses = [a.strip() for a in mail["to"].split(",")]
            assert addresses == local_mail["to"].split(",")
            ignored = {"require_tls": None, "to": None}
            assert {**mail, **ignored} == {**local_mail, **ignored}
            assert mail.get("auth_password") == settings.smtp_password
    amtool_accepts(tmp_path / "production.yml")


def test_the_compose_command_line_starts_a_real_alertmanager(
    tmp_path: Path, service: dict[str, Any], env_example: dict[str, str]
) -> None:
    """The entrypoint as compose runs it, with the container's paths mapped to temp dirs."""
    (port,) = free_ports(1)
    etc, run, data = tmp_path / "etc", tmp_path / "run", tmp_path / "data"
    shutil.copytree(CONFIG_DIR, etc)
    run.mkdir()
    (etc / "alertmanager.yml").write_text(
        CONFIG.read_text().replace("/etc/ioc/alertmanager/", f"{etc}/")
    )
    command = (
        resolved(service["entrypoint"][2])
        .replace("$$", "$")
        .replace("/etc/ioc/alertmanager/", f"{etc}/")
        .replace("/run/ioc/", f"{run}/")
        .replace("--storage.path=/alertmanager", f"--storage.path={data}")
        .replace("/bin/alertmanager", BINARY)
        .replace("--web.listen-address=:9093", f"--web.listen-address=127.0.0.1:{port}")
    )
    env = {k: resolved(v) for k, v in environment(service, env_example).items()}
    env.update(PATH=os.environ["PATH"], IOC_ALERTS_WEBHOOK_URL="http://127.0.0.1:9/hook")
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [*service["entrypoint"][:2], command], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
            try:
                url = f"http://127.0.0.1:{port}/api/v2/status"
                with urllib.request.urlopen(url, timeout=1) as answer:
                    status = yaml.safe_load(answer.read())
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "alertmanager.log").read_text()
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
    assert status["cluster"]["status"] == "disabled"
    loaded = yaml.safe_load(status["config"]["original"])
    (hook,) = next(r for r in loaded["receivers"] if r["name"] == "ioc")["webhook_configs"]
    assert hook["url"] == "http://127.0.0.1:9/hook"
    assert (run / "alertmanager.yml").stat().st_mode & 0o777 == 0o600


def test_the_systemd_unit_runs_the_same_config_as_compose(service: dict[str, Any]) -> None:
    values: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    (start,) = values["ExecStart"]
    argv = start.split()
    assert argv[0] == "/usr/bin/prometheus-alertmanager"
    flags = dict(arg.split("=", 1) for arg in argv[1:])
    assert flags["--cluster.listen-address"] == ""
    assert flags["--web.listen-address"] == "127.0.0.1:9093"  # loopback; the proxy publishes it
    assert flags["--storage.path"] == "/var/lib/ioc/alertmanager"
    (pre,) = values["ExecStartPre"]
    rendered = f"/run/{values['RuntimeDirectory'][0]}/alertmanager.yml"
    assert flags["--config.file"] == rendered
    assert pre.endswith(f"> {rendered}'")
    assert "awk -f /etc/ioc/alertmanager/render.awk /etc/ioc/alertmanager/alertmanager.yml" in pre
    assert values["RuntimeDirectoryMode"] == ["0700"]
    assert values["EnvironmentFile"] == [
        "/etc/ioc/ioc.env",
        "/etc/ioc/secrets/alertmanager.env",
    ]
    assert "prometheus-alertmanager.service" in values["Conflicts"]
    assert "ioc-alertmanager.service" in (DEPLOY / "systemd" / "ioc.target").read_text()
    # The same container command line, apart from the paths and the listen address.
    compose_flags = {
        w.split("=", 1)[0] for w in shlex.split(service["entrypoint"][2]) if w.startswith("--")
    }
    assert set(flags) == compose_flags


def test_grafana_lists_the_alerts_from_alertmanager(
    compose: dict[str, Any], env_example: dict[str, str]
) -> None:
    provisioning = DEPLOY / "grafana" / "provisioning" / "datasources" / "alertmanager.yaml"
    (source,) = yaml.safe_load(provisioning.read_text())["datasources"]
    assert source["type"] == "alertmanager"
    assert source["uid"] == "ioc-alertmanager"
    assert source["jsonData"]["implementation"] == "prometheus"
    assert source["url"] == "${IOC_ALERTMANAGER_URL}"
    grafana = compose["services"]["grafana"]
    assert grafana["env_file"] == ["ioc.env"]
    url = env_example["IOC_ALERTMANAGER_URL"]
    host, port = url.removeprefix("http://").split(":")
    assert host in compose["services"]
    assert compose["services"][host]["ports"][0].endswith(f":{port}")
    assert set(compose["services"][host]["networks"]) & set(grafana["networks"])
