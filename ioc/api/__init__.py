"""The indicator API (Flask + flask-smorest), served by gunicorn as ``ioc.api:create_app()``.

This package is imported by the ``ioc`` command for ``ioc keys``; keep it free of Flask imports
at module level (``create_app`` imports the app lazily).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from ioc.settings import Settings


def create_app(config: dict[str, Any] | None = None, *, settings: Settings | None = None) -> Flask:
    """Build the API application (see :func:`ioc.api.app.create_app`)."""
    from ioc.api.app import create_app as build  # noqa: PLC0415 - keep imports light

    return build(config, settings=settings)
