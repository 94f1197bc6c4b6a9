"""Check HTTP requests (and answers) against a Swagger 2.0 API description, such as Grafana's.

``Swagger.grafana()`` loads ``shared/data/grafana/grafana-http-api-11.4.swagger2.json``;
``check_request(method, path, body)`` returns the problems of one request, empty when it conforms:

- the path (after the ``basePath``, ``/api``) matches one of the spec's path templates, literal
  segments before ``{parameters}`` (``/folders/id/{id}`` before ``/folders/{folder_uid}``), and
  integer path parameters are integers;
- the method is defined for that template;
- query parameters are ones the operation defines;
- the JSON body is there when the operation requires one and absent when it takes none, and
  matches the body parameter's schema (``$ref``s resolved into ``definitions``): every
  ``required`` property present, no property the schema does not define where the schema lists
  ``properties`` (unless ``additionalProperties`` allows it), types and enums respected, nested
  objects and arrays checked the same way.

``check_response`` applies the same schema checks to an answer whose status the operation
documents (a fake server can so prove that it answers in Grafana's shapes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.conftest import SHARED

__all__ = ["GRAFANA_SPEC", "Operation", "Swagger", "check_requests"]

GRAFANA_SPEC = SHARED / "data" / "grafana" / "grafana-http-api-11.4.swagger2.json"

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@dataclass(frozen=True)
class Operation:
    """One method of one path template, with the parameters of the path item and the operation."""

    method: str
    template: str
    spec: Mapping[str, Any]
    parameters: tuple[Mapping[str, Any], ...]

    def parameter(self, where: str) -> list[Mapping[str, Any]]:
        return [p for p in self.parameters if p.get("in") == where]


@dataclass(frozen=True)
class _Template:
    text: str
    pattern: re.Pattern[str]
    names: tuple[str, ...]
    literals: int  # literal segments: more is more specific

    @classmethod
    def compile(cls, text: str) -> _Template:
        names: list[str] = []
        regex = ""
        literals = 0
        for segment in text.strip("/").split("/"):
            if match := re.fullmatch(r"\{([^}]+)\}", segment):
                names.append(match.group(1))
                regex += r"/([^/]+)"
            else:
                literals += 1
                regex += "/" + re.escape(segment)
        return cls(text, re.compile(regex or "/"), tuple(names), literals)


class Swagger:
    """A loaded Swagger 2.0 document."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        if document.get("swagger") != "2.0":
            raise ValueError("not a Swagger 2.0 document")
        self.document = document
        self.base = str(document.get("basePath", "")).rstrip("/")
        self.definitions: Mapping[str, Any] = document.get("definitions", {})
        self.responses: Mapping[str, Any] = document.get("responses", {})
        self.paths: Mapping[str, Any] = document["paths"]
        self._templates = sorted(
            (_Template.compile(t) for t in self.paths), key=lambda t: -t.literals
        )

    @classmethod
    def load(cls, path: Path) -> Swagger:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    @staticmethod
    @cache
    def grafana() -> Swagger:
        """Grafana 11.4's published HTTP API description (loaded once)."""
        return Swagger.load(GRAFANA_SPEC)

    # --- matching --------------------------------------------------------------------------------

    def operation(self, method: str, path: str) -> tuple[Operation | None, list[str]]:
        """The operation for ``method path`` (path with the base path), or why there is none."""
        raw = urlsplit(path).path
        shown = f"{method.upper()} {raw}"
        if self.base and not (raw == self.base or raw.startswith(self.base + "/")):
            return None, [f"{shown}: outside the API's base path {self.base!r}"]
        relative = raw[len(self.base) :].rstrip("/") or "/"
        matching = [t for t in self._templates if t.pattern.fullmatch(relative)]
        if not matching:
            return None, [f"{shown}: no path of the API description matches {relative!r}"]
        for template in matching:  # most specific first
            item = self.paths[template.text]
            spec = item.get(method.lower())
            if spec is None:
                continue
            match = template.pattern.fullmatch(relative)
            assert match is not None
            parameters = tuple(item.get("parameters", ())) + tuple(spec.get("parameters", ()))
            operation = Operation(method.upper(), template.text, spec, parameters)
            problems = self._check_path_parameters(
                operation, dict(zip(template.names, match.groups(), strict=True)), shown
            )
            return operation, problems
        defined = sorted(
            {m.upper() for t in matching for m in self.paths[t.text] if m != "parameters"}
        )
        return None, [
            f"{shown}: method not defined for {', '.join(t.text for t in matching)} "
            f"(defined: {', '.join(defined)})"
        ]

    def _check_path_parameters(
        self, operation: Operation, values: Mapping[str, str], shown: str
    ) -> list[str]:
        problems = []
        for parameter in operation.parameter("path"):
            value = unquote(values.get(parameter["name"], ""))
            if parameter.get("type") == "integer" and not re.fullmatch(r"-?\d+", value):
                problems.append(
                    f"{shown}: path parameter {parameter['name']!r} must be an integer, "
                    f"not {value!r}"
                )
        return problems

    # --- requests and answers --------------------------------------------------------------------

    def check_request(self, method: str, path: str, body: Any = None, query: str = "") -> list[str]:
        """Every way this request departs from the API description; empty when it conforms."""
        operation, problems = self.operation(method, path)
        if operation is None:
            return problems
        shown = f"{method.upper()} {urlsplit(path).path}"
        query = query or urlsplit(path).query
        allowed = {p["name"] for p in operation.parameter("query")}
        for name, _ in parse_qsl(query, keep_blank_values=True):
            if name not in allowed:
                problems.append(f"{shown}: query parameter {name!r} is not defined")
        bodies = operation.parameter("body")
        if body is None:
            if bodies and bodies[0].get("required"):
                problems.append(f"{shown}: a JSON body is required")
        elif not bodies:
            problems.append(f"{shown}: this operation takes no body")
        else:
            problems += self.check_value(body, bodies[0].get("schema", {}), f"{shown} body")
        return problems

    def check_response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Schema problems of an answer, if its status is documented for the operation."""
        operation, problems = self.operation(method, path)
        if operation is None:
            return problems
        documented = operation.spec.get("responses", {})
        response = documented.get(str(status)) or documented.get("default")
        if response is None:
            return []
        if "$ref" in response:
            response = self.responses[response["$ref"].rsplit("/", 1)[1]]
        schema = response.get("schema")
        if schema is None:
            return []
        shown = f"{method.upper()} {urlsplit(path).path} -> {status}"
        return self.check_value(body, schema, shown)

    # --- schemas -------------------------------------------------------------------------------

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        """Follow ``$ref`` (``#/definitions/Name``) until a schema without one."""
        seen = set()
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/definitions/") or ref in seen:
                raise ValueError(f"cannot resolve {ref!r}")
            seen.add(ref)
            schema = self.definitions[ref.removeprefix("#/definitions/")]
        return schema

    def _merged(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        schema = self.resolve(schema)
        if "allOf" not in schema:
            return schema
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        properties = dict(merged.get("properties", {}))
        required = list(merged.get("required", []))
        for part in schema["allOf"]:
            sub = self._merged(part)
            properties.update(sub.get("properties", {}))
            required += sub.get("required", [])
            merged.setdefault("type", sub.get("type"))
        if properties:
            merged["properties"] = properties
        if required:
            merged["required"] = required
        return merged

    def check_value(self, value: Any, schema: Mapping[str, Any], where: str) -> list[str]:
        """Problems of ``value`` against ``schema``: required, unknown, type, enum (recursive)."""
        schema = self._merged(schema)
        kind = schema.get("type")
        if kind is None and "properties" in schema:
            kind = "object"
        if kind in _JSON_TYPES:
            expected = _JSON_TYPES[kind]
            if not isinstance(value, expected) or (isinstance(value, bool) and kind != "boolean"):
                return [f"{where}: expected {kind}, got {type(value).__name__} {value!r:.60}"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{where}: {value!r} is not one of {schema['enum']}"]
        if kind == "object":
            return self._check_object(value, schema, where)
        problems: list[str] = []
        if kind == "array" and "items" in schema:
            for index, item in enumerate(value):
                problems += self.check_value(item, schema["items"], f"{where}[{index}]")
        return problems

    def _check_object(
        self, value: Mapping[str, Any], schema: Mapping[str, Any], where: str
    ) -> list[str]:
        problems = []
        properties: Mapping[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{where}: required property {name!r} is missing")
        extra = schema.get("additionalProperties")
        if properties and extra in (None, False):
            unknown = sorted(set(value) - set(properties))
            if unknown:
                problems.append(
                    f"{where}: properties not in the schema: {', '.join(unknown)} "
                    f"(defined: {', '.join(sorted(properties))})"
                )
        for name, item in value.items():
            if name in properties:
                problems += self.check_value(item, properties[name], f"{where}.{name}")
            elif isinstance(extra, Mapping):
                problems += self.check_value(item, extra, f"{where}.{name}")
        return problems


def check_requests(
    requests: Iterable[Any], spec: Swagger | None = None, *, responses: bool = True
) -> list[str]:
    """Problems of recorded requests (objects with method, path, query, body, status, response)."""
    spec = spec or Swagger.grafana()
    problems: list[str] = []
    for r in requests:
        problems += spec.check_request(r.method, r.path, r.body, r.query)
        if responses and r.status:
            problems += spec.check_response(r.method, r.path, r.status, r.response)
    return problems
