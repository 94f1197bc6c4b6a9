"""Every API error as ``application/problem+json`` (RFC 9457), documented as such in OpenAPI.

One envelope for every error path: the API's own refusals (:class:`ioc.errors.ApiProblem`),
flask-smorest's argument validation (400, naming each parameter and the value sent), Werkzeug's
HTTP errors (404 route, 405, 413 body too large...), InfluxDB trouble (503 with Retry-After) and
anything unexpected (500 with no stack trace, logged with a reference the caller can quote).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import marshmallow as ma
from flask import Flask, Response, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from ioc.errors import ApiProblem, StoreError

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document with the members this API adds."""

    type = ma.fields.String(metadata={"description": "A URI naming the problem type"})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(metadata={"description": "What went wrong, naming the value"})
    instance = ma.fields.String(metadata={"description": "The request path"})
    parameter = ma.fields.String(metadata={"description": "The parameter at fault"})
    value = ma.fields.Raw(metadata={"description": "The value at fault"})
    errors = ma.fields.Dict(metadata={"description": "Every invalid parameter with its messages"})
    retry_after = ma.fields.Integer(metadata={"description": "Seconds to wait (429, 503)"})
    reference = ma.fields.String(metadata={"description": "Quote this when reporting a 500"})


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    body.update(extra or {})
    response = Response(
        ProblemSchema().dumps(body), status=status, mimetype=PROBLEM_TYPE, headers=headers
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _first_invalid(messages: dict[str, Any]) -> tuple[str, str, list[str]]:
    """The first (location, parameter, messages) of a webargs error dictionary."""
    for location, fields in messages.items():
        if isinstance(fields, dict):
            for name, problems in fields.items():
                texts = problems if isinstance(problems, list) else [str(problems)]
                if isinstance(problems, dict):  # nested (e.g. a list item): flatten
                    texts = [f"{k}: {v}" for k, v in problems.items()]
                return location, str(name), [str(t) for t in texts]
    return "request", "", []


class ProblemApi(Api):  # type: ignore[misc]
    """flask-smorest's Api with problem+json errors, documented with that media type."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        # flask-smorest documents its error responses as application/json; ours are
        # problem+json, and schemathesis checks that the documented media type is served.
        import http  # noqa: PLC0415

        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An error (RFC 9457 problem)", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def handle_http_exception(self, error: HTTPException) -> Response:
        """Werkzeug and webargs errors as problems."""
        status = error.code or 500
        data = getattr(error, "data", None) or {}
        messages = data.get("messages") or data.get("errors")
        # Werkzeug's own headers (Allow on a 405, WWW-Authenticate, Retry-After), not its HTML type
        headers = {
            name: value for name, value in error.get_headers() if name.lower() != "content-type"
        }
        headers.update(data.get("headers") or {})
        if messages and status in (400, 422):
            location, name, texts = _first_invalid(messages)
            args = request.args if location == "query" else request.view_args or {}
            value = args.get(name)
            shown = "" if value is None else f" = {value!r}"
            return problem_response(
                400,
                "Bad Request",
                f"{location} parameter {name!r}{shown}: {'; '.join(texts)}",
                extra={"parameter": name, "value": value, "errors": messages},
                headers=headers,
            )
        detail = data.get("message") or error.description or error.name
        return problem_response(status, error.name, str(detail), headers=headers)


def init_app(app: Flask) -> None:
    """Register the problem handlers for the project's own errors and for the unexpected."""

    @app.errorhandler(ApiProblem)
    def _api_problem(problem: ApiProblem) -> Response:
        return problem_response(
            problem.status,
            problem.title,
            problem.detail,
            extra=dict(problem.extra),
            headers=problem.headers,
        )

    @app.errorhandler(StoreError)
    def _store_error(error: StoreError) -> Response:
        log.warning("InfluxDB trouble answering %s: %s", request.path, error)
        return problem_response(
            503,
            "Service Unavailable",
            "the time-series database did not answer; try again shortly",
            extra={"retry_after": 5},
            headers={"Retry-After": "5"},
        )

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):  # pragma: no cover - routed to the Api handler
            raise error
        reference = uuid.uuid4().hex[:12]
        log.error(
            "unexpected error %s answering %s %s",
            reference,
            request.method,
            request.path,
            exc_info=error,
        )
        return problem_response(
            500,
            "Internal Server Error",
            "the server failed to answer this request; quote the reference when reporting it",
            extra={"reference": reference},
        )
