"""Quoting for InfluxQL text; values go in bound parameters (``$name``) wherever InfluxQL allows.

InfluxQL binds parameters only where a literal is expected (tag and field comparisons, time
bounds, LIMIT). Identifiers (database, retention policy, measurement, tag and field keys) cannot
be bound, so they are quoted here. Names that line protocol refuses (control characters,
backslashes) are refused here too, so that a name can always be written and queried back.
"""

from __future__ import annotations

import re

from ioc.errors import LineProtocolError

_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")


def quote_ident(name: str) -> str:
    """A double-quoted InfluxQL identifier."""
    if not name or _FORBIDDEN.search(name):
        raise LineProtocolError(f"identifier {name!r} cannot be quoted in InfluxQL")
    return '"' + name.replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """A single-quoted InfluxQL string literal (prefer bound parameters for values)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return "'" + escaped + "'"


def qualified(db: str, rp: str, measurement: str) -> str:
    """``"db"."rp"."measurement"``: a measurement in a given retention policy."""
    return ".".join(quote_ident(part) for part in (db, rp, measurement))
