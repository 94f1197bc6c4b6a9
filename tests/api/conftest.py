"""Fixtures of the API tests: the app on a database of its own, keys of every scope."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ioc.api import create_app
from ioc.api.keys import KeyStore
from ioc.settings import Settings


@dataclass(frozen=True)
class Keys:
    """Cleartext keys of each scope, created in the test's key file."""

    read: str
    operator: str
    hanoi: str  # read:provinces 01
    hue_camau: str  # read:provinces 46, 96


@pytest.fixture
def api_settings(own_database: Settings, tmp_path: Path) -> Settings:
    """Settings of an API on the test's own database: no response cache, a generous limit."""
    return dataclasses.replace(
        own_database,
        var_dir=tmp_path / "var",
        api_keys_file=tmp_path / "api" / "keys.json",
        api_cache_seconds=0.0,
        api_rate_limit=100_000,
    )


@pytest.fixture
def keys(api_settings: Settings) -> Keys:
    store = KeyStore(api_settings.api_keys_path)
    return Keys(
        read=store.create("reader", "read")[1],
        operator=store.create("ops", "operator")[1],
        hanoi=store.create("hanoi", "read:provinces", ["01"])[1],
        hue_camau=store.create("south", "read:provinces", ["46", "96"])[1],
    )


@pytest.fixture
def app(api_settings: Settings, keys: Keys) -> Iterator[Flask]:
    application = create_app({"TESTING": True}, settings=api_settings)
    yield application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
