"""Fixtures of the deployment tests: a small sample registry and the deploy/ files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ioc.catalog import Catalog, get_catalog

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"

SAMPLE_REGISTRY = """
[[source]]
id = "01-air-a"
kind = "air"
province = "01"
ward = "00070"
name = "Air station A"
expected_interval = "5m"

[[source]]
id = "46-dvc"
kind = "service"
province = "46"
name = "Public-service portal"
department = "Office"
expected_interval = "15m"

[[source]]
id = "01-air-senml"
kind = "air"
province = "01"
ward = "00070"
name = "SenML station"
expected_interval = "5m"
device_refs = ["urn:dev:ow:10e2073a01080063:"]

[[source]]
id = "01-air-lora"
kind = "air"
province = "01"
ward = "00070"
name = "LoRaWAN air node on The Things Stack"
expected_interval = "5m"
device_refs = ["tts-air-1"]

[[source]]
id = "46-water-lora"
kind = "water"
province = "46"
ward = "19768"
name = "LoRaWAN level gauge on ChirpStack"
expected_interval = "10m"
station = "huong-kim-long"
device_refs = ["0004A30B001C1234"]

[[source]]
id = "01-portal-probe"
kind = "probe"
province = "01"
name = "Portal probe"
expected_interval = "1m"
url = "https://dichvucong.example.gov.vn/"
"""


@pytest.fixture(scope="session")
def sample_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JSON device, a feed, a SenML device, TTS and ChirpStack devices, and a probe."""
    path = tmp_path_factory.mktemp("registry") / "sources.toml"
    path.write_text(SAMPLE_REGISTRY, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def sample_catalog(sample_registry: Path) -> Catalog:
    """The catalog with the sample registry."""
    return get_catalog(sample_registry)
