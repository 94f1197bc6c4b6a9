"""Quoting for InfluxQL text; values go in bound parameters (``$name``) wherever InfluxQL allows.

InfluxQL binds parameters only where a literal is expected (tag and field comparisons, time
bounds, LIMIT). Identifiers (database, retention policy, measurement, tag and field keys) cannot
be bound, so they are quoted here. Names that line protocol refuses (control characters,
backslashes) are refused here too, so that a name can always be written and queried back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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


# --- query text used by the engine, the API, dashboards and alerts (one place, DESIGN.md) -------

AGGREGATES = frozenset({"mean", "max", "min", "sum", "last", "count"})
RECEIVED_FIELD = "received_ms"
"""Field every raw point carries: the server's receive time (ms), kept for skew and live-ness."""


def column_name(function: str, field: str) -> str:
    """The column a period aggregate is returned under: ``<function>_<field>``."""
    return f"{function}_{field}"


def period_aggregates(
    db: str,
    measurement: str,
    selections: Sequence[tuple[str, str]],
    *,
    period_s: int,
    offset_s: int = 0,
    rp: str = "raw",
) -> str:
    """Per source and period, ``function(field)`` for each selection, over [$start, $end).

    Periods are aligned to the Unix epoch plus ``offset_s`` (InfluxQL ``GROUP BY time(p, o)``);
    rows are labelled with the period's start.
    """
    if not selections:
        raise ValueError("period_aggregates needs at least one (function, field)")
    columns = []
    for function, field in selections:
        if function not in AGGREGATES:
            raise ValueError(f"unknown aggregate {function!r} (one of {sorted(AGGREGATES)})")
        columns.append(
            f"{function}({quote_ident(field)}) AS {quote_ident(column_name(function, field))}"
        )
    return (
        f"SELECT {', '.join(columns)} FROM {qualified(db, rp, measurement)} "
        f"WHERE time >= $start AND time < $end "
        f'GROUP BY time({period_s}s, {offset_s}s), "source" fill(none)'
    )


def last_received(db: str, measurement: str, *, rp: str = "raw") -> str:
    """Per source, the time of its last record in ($start, $end] (and its receive time)."""
    return (
        f"SELECT last({quote_ident(RECEIVED_FIELD)}) FROM {qualified(db, rp, measurement)} "
        f'WHERE time > $start AND time <= $end GROUP BY "source"'
    )
