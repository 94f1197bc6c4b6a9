"""The API's resources: one flask-smorest Blueprint per concept, all built on :class:`Blueprint`."""

from __future__ import annotations

import flask_smorest
from webargs.flaskparser import FlaskParser


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint, but an unknown query parameter is an error, not ignored.

    webargs excludes unknown query parameters by default; with ``unknown=None`` each schema's
    own ``Meta.unknown`` (RAISE, see ioc/api/schemas.py) decides, so ``?levl=ward`` is a 400.
    An invalid parameter is a 400 (webargs says 422), and the document says so.
    """

    ARGUMENTS_PARSER = FlaskParser(unknown=None)
    ARGUMENTS_PARSER.DEFAULT_VALIDATION_STATUS = 400
