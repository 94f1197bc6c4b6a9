"""The API's resources: one flask-smorest Blueprint per concept, all built on :class:`Blueprint`."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
import marshmallow as ma
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import MultiDict


class QueryParser(FlaskParser):
    """webargs' parser, leaving ``format`` out of a query schema that does not declare it.

    ``format`` is checked for every resource before its view (``ioc.api.http.negotiate``), so
    ``format=json`` is accepted by a JSON-only resource rather than refused as an unknown field.
    """

    def load_querystring(self, req: flask.Request, schema: ma.Schema) -> Any:
        if "format" in schema.fields or "format" not in req.args:
            return super().load_querystring(req, schema)
        kept = MultiDict([(k, v) for k, v in req.args.items(multi=True) if k != "format"])
        return self._makeproxy(kept, schema)


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint, but an unknown query parameter is an error, not ignored.

    webargs excludes unknown query parameters by default; with ``unknown=None`` each schema's
    own ``Meta.unknown`` (RAISE, see ioc/api/schemas.py) decides, so ``?levl=ward`` is a 400.
    An invalid parameter is a 400 (webargs says 422), and the document says so.
    """

    ARGUMENTS_PARSER = QueryParser(unknown=None)
    ARGUMENTS_PARSER.DEFAULT_VALIDATION_STATUS = 400

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        """flask-smorest's ``arguments``, with a schema class made an instance once, here.

        webargs instantiates a schema class on every request (its fields deep-copied each
        time: ~0.1 ms of a request's CPU); an instance is reused. Loading keeps no state on
        the schema, and openapi.json is the same byte for byte either way."""
        if isinstance(schema, type) and issubclass(schema, ma.Schema):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)
