"""Per-app and per-request objects the routes use: the data reader and the caller's scope."""

from __future__ import annotations

from typing import Any

from flask import current_app, g

from ioc.api.data import IndicatorData, Scope
from ioc.errors import ApiProblem

DATA_KEY = "ioc.data"


def data() -> IndicatorData:
    """The app's :class:`IndicatorData` (created once per worker by ``create_app``)."""
    found: IndicatorData = current_app.extensions[DATA_KEY]
    return found


def scope() -> Scope:
    """The provinces the caller's key may read."""
    principal: Any = g.principal
    provinces = principal.provinces
    return Scope(None if provinces is None else frozenset(provinces))


def require_operator() -> None:
    """403 unless the caller's key has the operator scope."""
    if not g.principal.is_operator:
        raise ApiProblem(403, "Forbidden", "this resource needs a key with the operator scope")


def now_ns() -> int:
    """The request's clock (one value per request, so every part of an answer agrees)."""
    moment: int = g.now_ns
    return moment
