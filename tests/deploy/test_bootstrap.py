"""``ioc bootstrap influxdb2``: the plan of buckets, DBRP mappings and token permissions."""

from __future__ import annotations

import argparse

import pytest

from ioc.bootstrap import BootstrapError, describe, plan, retention_seconds, run
from ioc.settings import Settings, load_settings


def settings(**extra: str) -> Settings:
    env = {"IOC_INFLUX_API": "v2", "IOC_INFLUX_ORG": "prov", "IOC_INFLUX_TOKEN": "operator"}
    return load_settings(env | extra)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("INF", 0),
        ("400d", 400 * 86400),
        ("12w", 12 * 7 * 86400),
        ("1d12h", 36 * 3600),
        ("90m", 5400),
    ],
)
def test_retention_durations(text: str, seconds: int) -> None:
    assert retention_seconds(text) == seconds


def test_buckets_and_dbrps_follow_the_retention_settings() -> None:
    the_plan = plan(settings(IOC_INFLUX_DB="hue", IOC_RETENTION_OPS="14d"))
    assert the_plan.org == "prov"
    rows = [
        (b.name, b.database, b.retention_policy, b.every_seconds, b.default)
        for b in the_plan.buckets
    ]
    assert rows == [
        ("hue/raw", "hue", "raw", 400 * 86400, True),
        ("hue/derived", "hue", "derived", 0, False),
        ("hue/ops", "hue", "ops", 14 * 86400, False),
    ]


def test_tokens_are_least_privilege() -> None:
    tokens = {t.role: t for t in plan(settings()).tokens}
    assert {role: t.permissions() for role, t in tokens.items()} == {
        "ingest": (("write", "ioc/raw"), ("write", "ioc/ops")),
        "engine": (("read", "ioc/raw"), ("write", "ioc/derived"), ("write", "ioc/ops")),
        "alerts": (
            ("read", "ioc/raw"),
            ("read", "ioc/derived"),
            ("write", "ioc/derived"),
            ("write", "ioc/ops"),
        ),
        "api": (("read", "ioc/raw"), ("read", "ioc/derived"), ("read", "ioc/ops")),
        "grafana": (("read", "ioc/raw"), ("read", "ioc/derived"), ("read", "ioc/ops")),
    }
    assert tokens["api"].write == () and tokens["grafana"].write == ()
    assert {t.description for t in tokens.values()} == {
        "ioc:ingest",
        "ioc:engine",
        "ioc:alerts",
        "ioc:api",
        "ioc:grafana",
    }
    assert {t.variable for t in tokens.values()} == {
        "INGEST_INFLUX_TOKEN",
        "ENGINE_INFLUX_TOKEN",
        "ALERTS_INFLUX_TOKEN",
        "API_INFLUX_TOKEN",
        "GRAFANA_INFLUX_TOKEN",
    }


def test_every_token_names_only_planned_buckets() -> None:
    the_plan = plan(settings())
    names = {b.name for b in the_plan.buckets}
    assert all({name for _, name in t.permissions()} <= names for t in the_plan.tokens)


def test_refuses_what_influxdb_2_cannot_do() -> None:
    with pytest.raises(BootstrapError, match="IOC_INFLUX_ORG"):
        plan(load_settings({}))
    with pytest.raises(BootstrapError, match="at least 1h"):
        plan(settings(IOC_RETENTION_OPS="30m"))


def test_plan_option_prints_without_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    unreachable = settings(IOC_INFLUX_URL="http://127.0.0.1:9")
    args = argparse.Namespace(store="influxdb2", plan=True, rotate=False, output="-")
    assert run(unreachable, args) == 0
    out = capsys.readouterr().out
    assert out.strip() == describe(plan(unreachable))
    assert "token 'ioc:api' (API_INFLUX_TOKEN): read ioc/raw, ioc/derived, ioc/ops" in out
    assert (
        "token 'ioc:alerts' (ALERTS_INFLUX_TOKEN): read ioc/raw, ioc/derived; "
        "write ioc/derived, ioc/ops"
    ) in out
