"""The API application factory: settings, catalog, store, keys, rate limiter, blueprints.

Request path: a key is required everywhere under ``/api/v1`` except the live and ready checks
and the API's documentation; the key's rate limit is checked (429 + Retry-After, shared by every
worker); an identical GET answered in the last ``IOC_API_CACHE_SECONDS`` comes from the
worker's cache; every successful GET leaves with an ETag and Cache-Control (304 on a matching
If-None-Match).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, cast

import orjson
from flask import Flask, Response, g, request, send_from_directory
from flask.json.provider import DefaultJSONProvider
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import NotFound
from werkzeug.routing import BaseConverter
from werkzeug.sansio.response import Response as BaseResponse

from ioc import __version__
from ioc.api import problems
from ioc.api.context import DATA_KEY
from ioc.api.data import IndicatorData
from ioc.api.http import ResponseCache, cache_key, finish, negotiate, offered_formats
from ioc.api.keys import KeyStore, presented_key
from ioc.api.ratelimit import RateLimiter
from ioc.api.routes import alerts, calendar, feeds, health, indicators, places, reminders, tasks
from ioc.catalog import get_catalog
from ioc.places import get_places
from ioc.settings import Settings, load_settings
from ioc.store import Store

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
"""Largest request body (pushed readings); larger is 413."""
OPEN_PATHS = (
    "/api/v1/health/live",
    "/api/v1/health/ready",
    "/api/v1/openapi.json",
    "/api/v1/docs",
)
"""Paths that need no key: the load balancer's health checks and the API's own documentation
(and its assets). ``/health/feeds`` names devices and needs an operator key."""
SWAGGER_UI_URL = "/api/v1/docs/static/"
"""Where the docs page loads Swagger UI from: this app, out of the pinned swagger-ui-bundle."""
SWAGGER_UI_FILES = frozenset(
    name + suffix
    for name in ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")
    for suffix in ("", ".map")
)
"""The files of swagger-ui-bundle the docs page loads (and their source maps)."""
CACHE_KEY, LIMITER_KEY, KEYS_KEY = "ioc.cache", "ioc.limiter", "ioc.keys"

API_DESCRIPTION = """\
Live indicators of Vietnam's provincial Intelligent Operations Centres: air quality (VN_AQI),
flood alarm levels, traffic, public-service performance (Decision 766), Resolution 57 task
progress, data-sharing and whether each department's feed is live. Values exist per ward,
province and for the nation (`VN`), with band, coverage and origin.

Send your key in the `X-API-Key` header (or `Authorization: Bearer <key>`). Errors are
`application/problem+json` (RFC 9457) naming the parameter and the value; a 400 lists every
invalid parameter in `errors`. Series, rankings, values, scorecards, feeds and dead letters are
also served as CSV (`?format=csv` or `Accept: text/csv`); a format a resource does not have is
400 (`format`) or 406 (`Accept`), never answered as JSON instead.
"""


def create_app(config: dict[str, Any] | None = None, *, settings: Settings | None = None) -> Flask:
    """Build the API. ``settings`` default to the environment's; ``config`` overrides Flask's."""
    settings = settings or load_settings()
    app = Flask("ioc.api", static_folder=None)
    app.json = OrjsonProvider(app)
    app.config.update(
        API_TITLE="IOC indicator API",
        API_VERSION=__version__,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_UI_URL,
        # no "validate this document" badge: it would send the browser to validator.swagger.io
        OPENAPI_SWAGGER_UI_CONFIG={"validatorUrl": None},
        API_SPEC_OPTIONS={
            "info": {"description": API_DESCRIPTION},
            "servers": [{"url": "/"}],
            "security": [{"ApiKey": []}],
            "components": {
                "securitySchemes": {
                    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
                }
            },
        },
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        JSON_SORT_KEYS=False,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
    )
    app.config.update(config or {})
    app.debug = False  # never the Werkzeug debugger, whatever the environment says

    catalog = get_catalog(settings.registry_file)
    store = Store(settings)
    app.extensions[DATA_KEY] = IndicatorData(settings, catalog, store, get_places())
    app.extensions[feeds.INTAKE_KEY] = feeds.Intake(settings, catalog, store)
    app.extensions[KEYS_KEY] = KeyStore(settings.api_keys_path)
    app.extensions[LIMITER_KEY] = RateLimiter.from_settings(settings)
    app.extensions[CACHE_KEY] = ResponseCache(settings.api_cache_seconds)

    # Path parameter {key} of the indicator routes: documented as the catalog's keys (an unknown
    # key still reaches the view, which answers 404 naming the known ones).
    app.url_map.converters["indicator"] = IndicatorKey
    api = problems.ProblemApi(app)
    api.register_converter(
        IndicatorKey, lambda _converter: {"type": "string", "enum": sorted(catalog.indicators)}
    )
    problems.init_app(app)
    for module in (indicators, calendar, places, feeds, reminders, tasks, alerts, health):
        api.register_blueprint(module.blp)
    api.register_blueprint(alerts.silences_blp)
    app.add_url_rule(f"{SWAGGER_UI_URL}<path:filename>", "swagger_ui", _swagger_ui_file)
    _hooks(app, settings)
    return app


class OrjsonProvider(DefaultJSONProvider):
    """Flask's JSON, written by orjson: the same documents, several times faster for big ones.

    Same as Flask's default: keys sorted, compact separators, a final newline, and what JSON
    lacks (dates, decimals, UUIDs, dataclasses) handed to Flask's own ``default``. Not the
    same bytes in two respects a JSON reader never sees: text is UTF-8 rather than ``\\u``
    escapes, and floats are written in their shortest round-trip form by orjson's writer.
    Anything orjson refuses (an integer beyond 64 bits) falls back to Flask's writer.
    """

    OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
    OPTIONS |= orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS

    def _orjson(self, obj: Any) -> bytes:
        options = self.OPTIONS | (orjson.OPT_SORT_KEYS if self.sort_keys else 0)
        return orjson.dumps(obj, default=self.default, option=options)

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs.keys() <= {"separators"} and kwargs.get("separators", (",", ":")) == (",", ":"):
            try:
                return self._orjson(obj).decode()
            except TypeError:
                pass
        return super().dumps(obj, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> BaseResponse:
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)  # indented, for people
        obj = self._prepare_response_obj(args, kwargs)
        try:
            body = self._orjson(obj) + b"\n"
        except TypeError:
            return super().response(*args, **kwargs)
        return Response(body, mimetype=self.mimetype)


def _swagger_ui_file(filename: str) -> Response:
    """A Swagger UI file for the docs page, so that the docs work without the Internet."""
    if filename not in SWAGGER_UI_FILES:
        raise NotFound()
    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)


def _negotiate() -> None:
    """Choose the answer's format (400 for a ``format`` it lacks, 406 for Accept) once."""
    offered = offered_formats()
    if offered is not None and request.method != "OPTIONS":
        g.format = negotiate(offered)


class IndicatorKey(BaseConverter):
    """An indicator key in a path (``/indicators/vn_aqi/...``)."""

    regex = "[^/]{1,64}"


def _hooks(app: Flask, settings: Settings) -> None:
    keys: KeyStore = app.extensions[KEYS_KEY]
    limiter: RateLimiter = app.extensions[LIMITER_KEY]
    cache: ResponseCache = app.extensions[CACHE_KEY]

    @app.before_request
    def _authenticate() -> Response | None:
        g.now_ns = time.time_ns()
        g.principal = None
        if request.path.startswith(OPEN_PATHS) or not request.path.startswith("/api/v1"):
            _negotiate()
            return None
        # Headers is case-insensitive, as the lookup needs; it is a Mapping in all but name.
        verification = keys.check(presented_key(cast(Mapping[str, str], request.headers)))
        if verification.principal is None:
            log.info(
                "refused %s %s: %s (key id %s)",
                request.method,
                request.path,
                verification.reason,
                verification.key_id,
            )
            return problems.problem_response(
                401,
                "Unauthorized",
                "a valid API key is required in the X-API-Key header "
                "(or Authorization: Bearer <key>)",
                headers={"WWW-Authenticate": 'ApiKey header="X-API-Key"'},
            )
        g.principal = verification.principal
        if not verification.principal.reads and request.endpoint != "feeds.FeedReadings":
            return problems.problem_response(
                403, "Forbidden", "a feed key may only push readings for its sources"
            )
        decision = limiter.check(verification.principal.key_id)
        g.rate = decision
        if not decision.allowed:
            return problems.problem_response(
                429,
                "Too Many Requests",
                f"this key may make {decision.limit} requests per minute; retry in "
                f"{decision.retry_after_s} s",
                extra={"retry_after": decision.retry_after_s},
                headers=decision.headers(),
            )
        _negotiate()  # before the cache: a cached answer must suit this request's Accept too
        if request.method == "GET" and cache.enabled:
            principal = verification.principal
            provinces = ",".join(sorted(principal.provinces or ())) or "*"
            g.cache_key = cache_key(f"{principal.scope}:{provinces}")
            cached = cache.get(g.cache_key)
            if cached is not None:
                return cached
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        key = g.get("cache_key")
        if key is not None and response.headers.get("X-Cache") != "hit":
            response.headers["X-Cache"] = "miss"
            finish(response, max_age=settings.api_cache_seconds)
            if response.status_code == 200:
                cache.put(key, response)
        else:
            finish(response, max_age=settings.api_cache_seconds)
        rate = g.get("rate")
        if rate is not None:
            response.headers.update(rate.headers())
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
