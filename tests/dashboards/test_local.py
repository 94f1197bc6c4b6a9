"""The local Grafana of ``ioc run``: its provisioning, and that ``ioc run`` starts it from PATH."""

from __future__ import annotations

import importlib.metadata
import io
import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest
import yaml

from dashboards.build import DASHBOARDS_DIR
from dashboards.local import LocalGrafana, find_grafana, render_datasource
from dashboards.model import DATASOURCE_UID
from ioc.run import GRAFANA_HINT, Composition
from ioc.settings import load_settings


def test_provisioning_points_at_the_generated_boards_and_the_local_influxdb(
    tmp_path: Path,
) -> None:
    settings = load_settings({"IOC_VAR_DIR": str(tmp_path), "IOC_GRAFANA_PORT": "13999"})
    grafana = LocalGrafana.prepare(settings, ["/bin/true"], tmp_path)
    datasource = yaml.safe_load(
        (tmp_path / "grafana/provisioning/datasources/ioc.yaml").read_text()
    )
    [source] = datasource["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["url"] == settings.influx_url
    assert source["jsonData"] == {
        "version": "InfluxQL",
        "dbName": "ioc",
        "httpMode": "POST",
        "timeInterval": "1m",
    }
    providers = yaml.safe_load((tmp_path / "grafana/provisioning/dashboards/ioc.yaml").read_text())[
        "providers"
    ]
    paths = [Path(p["options"]["path"]) for p in providers]
    assert all(path.parent == DASHBOARDS_DIR and any(path.glob("*.json")) for path in paths)
    assert len({p["folderUid"] for p in providers}) == len(providers) == 4
    environment = grafana.environment()
    assert environment["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    assert environment["GF_SERVER_HTTP_PORT"] == "13999"
    assert environment["GF_SECURITY_ADMIN_PASSWORD"] == grafana.admin_password
    assert len(grafana.admin_password) >= 20
    assert grafana.url == "http://127.0.0.1:13999"


def test_datasource_secrets_come_from_the_environment_never_the_file() -> None:
    v1 = render_datasource(
        load_settings({"IOC_INFLUX_USERNAME": "reader", "IOC_INFLUX_PASSWORD": "s3cret-pw"})
    )
    assert "s3cret-pw" not in v1
    assert "password: ${IOC_INFLUX_PASSWORD}" in v1 and "user: reader" in v1
    v2 = render_datasource(load_settings({}), version="2")
    assert "httpHeaderValue1: Token ${GRAFANA_INFLUX_TOKEN}" in v2


def _fake_grafana(directory: Path) -> Path:
    """A program named grafana-server that records how it was started, then waits."""
    script = directory / "grafana-server"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys, time\n"
        "json.dump({'argv': sys.argv, 'env': {k: v for k, v in os.environ.items()"
        " if k.startswith('GF_')}}, open(os.environ['RECORD'], 'w'))\n"
        "time.sleep(60)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_ioc_run_starts_a_grafana_server_on_path_and_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_grafana(bin_dir)
    record = tmp_path / "record.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("RECORD", str(record))
    assert find_grafana() == [str(bin_dir / "grafana-server")]
    settings = load_settings({"IOC_VAR_DIR": str(tmp_path / "var")})
    out = io.StringIO()
    composition = Composition(settings, out=out)
    try:
        composition._start_grafana()
        deadline = time.monotonic() + 20
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        started = json.loads(record.read_text())
    finally:
        composition.children["grafana"].stop()
    assert started["argv"][0].endswith("grafana-server")
    assert started["env"]["GF_SERVER_HTTP_ADDR"] == "127.0.0.1"
    assert started["env"]["GF_PATHS_PROVISIONING"] == str(tmp_path / "var/grafana/provisioning")
    assert "http://127.0.0.1:13000" in out.getvalue()


def test_without_grafana_ioc_run_says_how_to_get_the_walls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_grafana() is None
    out = io.StringIO()
    composition = Composition(load_settings({"IOC_VAR_DIR": str(tmp_path)}), out=out)
    composition._start_grafana()
    assert "grafana" not in composition.children
    assert GRAFANA_HINT in out.getvalue()


def test_grafana_client_leaves_the_real_urllib3_in_place() -> None:
    """grafana-client 4+ brings niquests, whose urllib3-future takes the ``urllib3`` import name
    from under influxdb-client; the pinned 3.x must not (docs/decisions.md)."""
    import grafana_client
    import urllib3

    assert grafana_client.__name__ == "grafana_client"
    assert Path(urllib3.__file__).parent.name == "urllib3"
    assert importlib.metadata.version("grafana-client").startswith("3.")
    distributions = importlib.metadata.packages_distributions().get("urllib3", [])
    assert distributions == ["urllib3"], distributions
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("urllib3-future")
