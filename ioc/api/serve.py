"""``ioc api``: the indicator API under gunicorn, configured from the settings.

The gunicorn options live in :func:`gunicorn_options` (one place): ``ioc api`` uses them
directly, and ``deploy/gunicorn.conf.py`` loads them for anyone who runs ``gunicorn`` by hand
(``gunicorn -c deploy/gunicorn.conf.py 'ioc.api:create_app()'``).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ioc.settings import Settings

HELP = "serve the indicator API with gunicorn (IOC_API_HOST, IOC_API_PORT, IOC_API_WORKERS)"

log = logging.getLogger(__name__)

ACCESS_LOG_FORMAT = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms key=%({x-api-key}i).16s'
"""One access-log line per request: client, request line, status, bytes, milliseconds, and the
first 16 characters of the key (``ioc_<key id>``: who called, never the secret)."""


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """gunicorn's settings for the API (bind, workers, timeouts, logs, limits)."""
    return {
        "bind": f"{settings.api_host}:{settings.api_port}",
        "workers": settings.api_workers,
        "worker_class": "sync",
        "timeout": max(
            30, int(settings.influx_timeout * 3)
        ),  # a slow InfluxDB is a 503, not a kill
        "graceful_timeout": 20,
        "keepalive": 5,
        "max_requests": 10_000,  # recycle workers now and then; jitter avoids a herd
        "max_requests_jitter": 1_000,
        "limit_request_line": 8190,
        "limit_request_fields": 50,
        "accesslog": "-",
        "errorlog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "loglevel": settings.log_level.lower(),
        "proc_name": "ioc-api",
        "forwarded_allow_ips": "127.0.0.1",
        # gunicorn's own refusals (a request line above limit_request_line: 414; headers: 431)
        # as problem+json, like every other error of the API
        "post_worker_init": _problem_errors,
    }


def _problem_errors(worker: object) -> None:
    """gunicorn's post_worker_init hook (imports Flask only in the worker)."""
    from ioc.api.problems import install_gunicorn_problems  # noqa: PLC0415

    install_gunicorn_problems(worker)


def configure(parser: argparse.ArgumentParser) -> None:
    """``ioc api`` takes no arguments: everything comes from IOC_* settings."""
    parser.add_argument(
        "--check", action="store_true", help="build the app once and print the routes, then exit"
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT (gunicorn stops its workers gracefully)."""
    from gunicorn.app.base import BaseApplication  # noqa: PLC0415 - only this command needs it

    from ioc.api.app import create_app  # noqa: PLC0415

    if args.check:
        app = create_app(settings=settings)
        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            print(
                f"{','.join(sorted((rule.methods or set()) - {'HEAD', 'OPTIONS'})):<6} {rule.rule}"
            )
        return 0

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in gunicorn_options(settings).items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return create_app(settings=settings)

    log.info(
        "API on http://%s:%d/api/v1 (docs /api/v1/docs), %d workers",
        settings.api_host,
        settings.api_port,
        settings.api_workers,
    )
    Application().run()
    return 0
