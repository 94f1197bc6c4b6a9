"""Every API error as ``application/problem+json`` (RFC 9457), documented as such in OpenAPI.

One envelope for every error path: the API's own refusals (:class:`ioc.errors.ApiProblem`),
flask-smorest's argument validation (400, listing every invalid parameter with the value sent),
Werkzeug's HTTP errors (404 route, 405, 413 body too large...), InfluxDB trouble (503 with
Retry-After) and anything unexpected (500 with no stack trace, logged with a reference the caller
can quote).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from flask import Flask, Response, request
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from ioc.api.schemas import RejectionSchema
from ioc.errors import ApiProblem, StoreError

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
LOCATIONS = ("query", "path", "header", "cookie", "body")
_WEBARGS_LOCATIONS = {
    "querystring": "query",
    "view_args": "path",
    "headers": "header",
    "cookies": "cookie",
    "json": "body",
    "form": "body",
    "json_or_form": "body",
    "files": "body",
}
_LABELS = {
    "query": "query parameter",
    "path": "path parameter",
    "header": "header",
    "cookie": "cookie",
    "body": "body field",
}


class InvalidParameterSchema(ma.Schema):
    """One invalid parameter of a 400 problem."""

    location = ma.fields.String(required=True, validate=ma.validate.OneOf(LOCATIONS))
    parameter = ma.fields.String(
        required=True,
        metadata={
            "description": "Its name; a body field as a dotted path (matchers.province), "
            "the whole body as body"
        },
    )
    value = ma.fields.Raw(
        required=True, allow_none=True, metadata={"description": "As sent; null if absent"}
    )
    message = ma.fields.String(required=True, metadata={"description": "What is wrong with it"})


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document with the members this API adds."""

    type = ma.fields.String(metadata={"description": "A URI naming the problem type"})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(metadata={"description": "What went wrong, naming the value"})
    instance = ma.fields.String(metadata={"description": "The request path"})
    parameter = ma.fields.String(metadata={"description": "The parameter at fault"})
    value = ma.fields.Raw(metadata={"description": "The value at fault"})
    errors = ma.fields.List(
        ma.fields.Nested(InvalidParameterSchema),
        metadata={"description": "Every invalid parameter (400), in the order found"},
    )
    formats = ma.fields.List(
        ma.fields.String(),
        metadata={"description": "The formats this resource is served in (400 for ?format=, 406)"},
    )
    rejected = ma.fields.List(
        ma.fields.Nested(RejectionSchema),
        metadata={"description": "Pushed readings refused, with their reasons (400, 422)"},
    )
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


SHOWN_CHARS = 200
"""How much of an invalid string value a problem echoes: a 10 kB parameter is not sent back
three times over (in ``detail``, ``value`` and ``errors``)."""


def shown(value: Any) -> Any:
    """``value`` as a problem echoes it: a string over SHOWN_CHARS is cut, saying its length."""
    if isinstance(value, str) and len(value) > SHOWN_CHARS:
        return f"{value[:SHOWN_CHARS]}... ({len(value)} characters)"
    if isinstance(value, list):
        return [shown(item) for item in value]
    return value


@dataclass(frozen=True, slots=True)
class InvalidParameter:
    """A parameter a request got wrong: where it was, its name, the value sent and why."""

    location: str
    parameter: str
    value: Any
    message: str

    def describe(self) -> str:
        """One line such as ``query parameter 'level' = 'district': must be one of ...``."""
        message = self.message.rstrip(".")
        if self.location == "body" and self.parameter == "body":
            return f"request body: {message}"
        echoed = "" if self.value is None else f" = {shown(self.value)!r}"
        return f"{_LABELS.get(self.location, self.location)} {self.parameter!r}{echoed}: {message}"

    def to_dict(self) -> dict[str, Any]:
        """The member of a problem's ``errors``."""
        return {
            "location": self.location,
            "parameter": self.parameter,
            "value": shown(self.value),
            "message": self.message,
        }


def invalid_parameter(location: str, parameter: str, value: Any, message: str) -> ApiProblem:
    """A 400 for one parameter a view refuses after validation (a range, a limit)."""
    return bad_request([InvalidParameter(location, parameter, value, message)])


def bad_request(invalid: list[InvalidParameter], **extra: Any) -> ApiProblem:
    """A 400 listing every invalid parameter; ``detail`` names each on one line."""
    first = invalid[0]
    parts = [p.describe() for p in invalid]
    if len(parts) == 1:
        detail = parts[0]
    else:
        detail = f"{len(parts)} invalid parameters: " + "; ".join(parts)
    return ApiProblem(
        400,
        "Bad Request",
        detail,
        extra={
            "parameter": first.parameter,
            "value": shown(first.value),
            "errors": [p.to_dict() for p in invalid],
            **extra,
        },
    )


def invalid_parameters(messages: Mapping[str, Any]) -> list[InvalidParameter]:
    """Every invalid parameter of a webargs error dictionary, with the value the request sent."""
    found = []
    for webargs_location, fields in messages.items():
        location = _WEBARGS_LOCATIONS.get(webargs_location, webargs_location)
        for path, texts in _flatten(fields, ()):
            name = ".".join(path) or location
            found.append(InvalidParameter(location, name, _sent(location, path), "; ".join(texts)))
    return found


def _flatten(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], list[str]]]:
    """(path, messages) of marshmallow's nested messages: ``{"matchers": {"ward": [...]}}``."""
    if isinstance(node, Mapping):
        for key, inner in node.items():
            # "_schema" holds the errors of the object itself (not an object; a schema validator)
            yield from _flatten(inner, path if key == "_schema" else (*path, str(key)))
    elif isinstance(node, list | tuple):
        texts = [str(item) for item in node if not isinstance(item, Mapping)]
        if texts:
            yield path, texts
        for item in node:
            if isinstance(item, Mapping):
                yield from _flatten(item, path)
    else:
        yield path, [str(node)]


def _sent(location: str, path: tuple[str, ...]) -> Any:
    """The value the request sent for a parameter (None if absent, or for the whole body)."""
    if not path:
        return None
    if location == "query":
        values = request.args.getlist(path[0])
        return values[0] if len(values) == 1 else (values or None)
    if location == "path":
        return (request.view_args or {}).get(path[0])
    if location == "header":
        return request.headers.get(path[0])
    node: Any = request.get_json(silent=True) if request.is_json else request.form
    for key in path:
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


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
            invalid = invalid_parameters(messages)
            if invalid:
                problem = bad_request(invalid)
                return problem_response(
                    problem.status,
                    problem.title,
                    problem.detail,
                    extra=dict(problem.extra),
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


def gunicorn_problem(sock: Any, status: int, reason: str, message: str) -> None:
    """gunicorn's own refusals as problem+json: a request line above ``limit_request_line`` (414,
    e.g. a 10 kB query parameter), too many or too large headers (431), a malformed request (400).

    gunicorn answers these before the application sees the request, with an HTML page of its
    own; a client of this API expects a problem document for every error, whoever refused.
    """
    from gunicorn.util import write_nonblock  # noqa: PLC0415 - only under gunicorn

    detail = message
    if status == 414:
        detail = f"the request line is too long ({message}): a parameter is far too long"
    body = json.dumps(
        {"type": "about:blank", "title": reason, "status": status, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: {PROBLEM_TYPE}\r\n"
        f"Cache-Control: no-store\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    write_nonblock(sock, head.encode("latin-1") + body)


def install_gunicorn_problems(_worker: object = None) -> None:
    """gunicorn's ``post_worker_init`` hook: its own error pages become :func:`gunicorn_problem`.

    gunicorn looks ``gunicorn.util.write_error`` up each time it refuses a request, in the worker
    process; replacing it there (each worker is its own process) changes nothing else.
    """
    import gunicorn.util  # noqa: PLC0415 - only under gunicorn

    gunicorn.util.write_error = gunicorn_problem
