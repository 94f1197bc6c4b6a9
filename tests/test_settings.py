"""Settings: defaults, validation messages that name variable and value, env file, immutability."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ioc.errors import SettingsError
from ioc.settings import PROJECT_ROOT, VARIABLES, Settings, is_loopback, load_settings


def test_defaults_describe_the_local_stack_on_non_standard_loopback_ports() -> None:
    s = load_settings({})
    assert (s.mqtt_host, s.mqtt_port) == ("127.0.0.1", 11883)
    assert (s.influx_host, s.influx_port) == ("127.0.0.1", 18086)
    assert s.influx_rpc_port == 18088
    assert s.var_dir == PROJECT_ROOT / "var"
    assert s.influx_api == "v1"
    assert s.retention_policies() == {"raw": "400d", "derived": "INF", "ops": "30d"}


def test_every_settings_field_has_exactly_one_variable() -> None:
    assert sorted(v.field for v in VARIABLES) == sorted(
        f.name for f in dataclasses.fields(Settings)
    )
    assert all(v.name.startswith("IOC_") for v in VARIABLES)


def test_settings_are_immutable() -> None:
    s = load_settings({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.mqtt_port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("variable", "value", "why"),
    [
        ("IOC_MQTT_PORT", "abc", "must be an integer between 1 and 65535"),
        ("IOC_MQTT_PORT", "70000", "must be an integer between 1 and 65535"),
        ("IOC_MQTT_HOST", "mqtt://x", "must be a host name or an IP address"),
        ("IOC_MQTT_PROTOCOL", "4", "must be one of 5, 3.1.1"),
        ("IOC_INFLUX_URL", "127.0.0.1:8086", "must be an http:// or https:// URL"),
        ("IOC_INFLUX_URL", "http://h:8086/api", "without path"),
        ("IOC_INFLUX_URL", "http://h:99999", "invalid port"),
        ("IOC_INFLUX_API", "v3", "must be one of v1, v2"),
        ("IOC_INFLUX_DB", "my db", "must be 1-64 characters"),
        ("IOC_INFLUX_TIMEOUT", "0", "greater than 0"),
        ("IOC_INFLUX_TIMEOUT", "nan", "greater than 0"),
        ("IOC_RETENTION_RAW", "90 days", "InfluxQL duration"),
        ("IOC_LOG_LEVEL", "LOUD", "must be one of DEBUG"),
    ],
)
def test_invalid_values_are_reported_with_variable_value_and_reason(
    variable: str, value: str, why: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({variable: value})
    assert f"{variable}={value!r}: " in str(caught.value)
    assert why in str(caught.value)


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"IOC_MQTT_PORT": "x", "IOC_INFLUX_API": "v9", "IOC_MQTT_PROT": "5"})
    message = str(caught.value)
    assert "IOC_MQTT_PORT='x'" in message
    assert "IOC_INFLUX_API='v9'" in message
    assert "IOC_MQTT_PROT is not a known setting; did you mean IOC_MQTT_PORT?" in message


def test_secrets_never_appear_in_messages_or_redacted_output() -> None:
    s = load_settings({"IOC_INFLUX_USERNAME": "ops", "IOC_INFLUX_PASSWORD": "hunter2"})
    assert s.redacted()["IOC_INFLUX_PASSWORD"] == "***"
    assert "hunter2" not in repr(s.redacted())


def test_cross_checks_name_the_missing_companion_variable() -> None:
    with pytest.raises(
        SettingsError, match=r"IOC_INFLUX_TOKEN='': required when IOC_INFLUX_API='v2'"
    ):
        load_settings({"IOC_INFLUX_API": "v2", "IOC_INFLUX_ORG": "org"})
    with pytest.raises(SettingsError, match="IOC_INFLUX_USERNAME and IOC_INFLUX_PASSWORD"):
        load_settings({"IOC_INFLUX_USERNAME": "ops"})
    v2 = load_settings({"IOC_INFLUX_API": "v2", "IOC_INFLUX_ORG": "o", "IOC_INFLUX_TOKEN": "t"})
    assert (v2.influx_org, v2.influx_token) == ("o", "t")


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / "ioc.env"
    env_file.write_text(
        "# comment\n\nexport IOC_MQTT_PORT=12000\nIOC_INFLUX_DB='city'\nIOC_LOG_LEVEL=\"debug\"\n"
    )
    s = load_settings({"IOC_ENV_FILE": str(env_file), "IOC_LOG_LEVEL": "ERROR"})
    assert (s.mqtt_port, s.influx_db, s.log_level) == (12000, "city", "ERROR")
    assert load_settings({}, env_file=env_file).log_level == "DEBUG"


def test_env_file_errors_name_the_file_and_line(tmp_path: Path) -> None:
    env_file = tmp_path / "bad.env"
    env_file.write_text("IOC_MQTT_PORT=1\nthis is not a setting\n")
    with pytest.raises(SettingsError, match=r"bad.env:2: expected KEY=VALUE"):
        load_settings({}, env_file=env_file)
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings({}, env_file=tmp_path / "missing.env")
    env_file.write_text("IOC_INFLUX_TIMEOUT=-1\n")
    with pytest.raises(SettingsError, match="IOC_INFLUX_TIMEOUT='-1'"):
        load_settings({}, env_file=env_file)


def test_relative_var_dir_is_resolved_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings({"IOC_VAR_DIR": "data"}).var_dir == tmp_path / "data"


ALL_INTERFACES = ".".join("0" * 4)  # spelled out so linters do not mistake it for a bind


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("localhost", True),
        ("10.0.0.1", False),
        (ALL_INTERFACES, False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_readme_documents_every_variable() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert [v.name for v in VARIABLES if f"`{v.name}`" not in readme] == []
