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


# --- derived indicator values, read by the API (and later dashboards and alerts) --------------

INDICATOR_MEASUREMENT = "indicator"
"""Measurement (policy ``derived``) of the engine's indicator values (ioc/engine/values.py)."""
INDICATOR_TAGS = ("indicator", "level", "unit", "province", "ward", "source")
"""The tag keys of an indicator value; everything else is a field."""
VALUE_FIELDS = (
    "band",
    "coverage",
    "expected",
    "sources",
    "numerator",
    "denominator",
    "origin",
    "origin_ward",
    "origin_province",
)
"""Fields read beside ``value`` when the latest value of a place is asked for."""


def _where(filters: Sequence[str]) -> str:
    """``"tag" = $tag AND ...`` for each tag key; each value is bound as a parameter."""
    parts = []
    for tag in filters:
        if tag not in INDICATOR_TAGS:
            raise ValueError(f"{tag!r} is not an indicator tag ({', '.join(INDICATOR_TAGS)})")
        parts.append(f"{quote_ident(tag)} = ${tag}")
    return " AND ".join(parts)


def latest_values(
    db: str, *, filters: Sequence[str], group_by: Sequence[str], rp: str = "derived"
) -> str:
    """The latest indicator value (and its band, coverage, origin...) per group, in ($start, $end].

    ``filters`` are tag keys compared with bound parameters of the same name (``$indicator``...);
    ``group_by`` tag keys split the answer (e.g. one series per province).
    """
    columns = ", ".join(
        ['last("value") AS "value"'] + [quote_ident(field) for field in VALUE_FIELDS]
    )
    where = _where(filters)
    for tag in group_by:
        if tag not in INDICATOR_TAGS:
            raise ValueError(f"cannot group by {tag!r}: not an indicator tag")
    group = ", ".join(quote_ident(tag) for tag in group_by)
    text = (
        f"SELECT {columns} FROM {qualified(db, rp, INDICATOR_MEASUREMENT)} "
        f"WHERE {where + ' AND ' if where else ''}time > $start AND time <= $end"
    )
    return f"{text} GROUP BY {group}" if group else text


def value_series(
    db: str, *, function: str, interval_s: int, filters: Sequence[str], rp: str = "derived"
) -> str:
    """``function(value)`` per ``interval_s`` bucket over [$start, $end) for the filtered place."""
    if function not in AGGREGATES:
        raise ValueError(f"unknown aggregate {function!r} (one of {sorted(AGGREGATES)})")
    if interval_s < 1:
        raise ValueError(f"interval must be at least 1 s, got {interval_s}")
    where = _where(filters)
    return (
        f'SELECT {function}("value") AS "value" FROM {qualified(db, rp, INDICATOR_MEASUREMENT)} '
        f"WHERE {where + ' AND ' if where else ''}time >= $start AND time < $end "
        f"GROUP BY time({interval_s}s) fill(none)"
    )


# --- ops: dead letters and self-metrics -------------------------------------------------------

DEAD_LETTER_FIELDS = ("reason", "province", "topic", "source", "message", "excerpt")


def recent_dead_letters(
    db: str, *, reason: bool, province: bool, limit: int, rp: str = "ops"
) -> str:
    """The newest dead letters in ($start, $end], optionally of one ``$reason`` / ``$province``."""
    if not 1 <= limit <= 100_000:
        raise ValueError(f"limit must be between 1 and 100000, got {limit}")
    conditions = [
        f"{quote_ident(tag)} = ${tag}"
        for tag, on in (("reason", reason), ("province", province))
        if on
    ]
    conditions.append("time > $start AND time <= $end")
    columns = ", ".join(quote_ident(field) for field in DEAD_LETTER_FIELDS)
    return (
        f"SELECT {columns} FROM {qualified(db, rp, 'dead_letter')} "
        f"WHERE {' AND '.join(conditions)} ORDER BY time DESC LIMIT {limit}"
    )


def latest_self_metrics(db: str, measurement: str, *, group_by: str | None, rp: str = "ops") -> str:
    """Each process's newest self-metrics point (all its fields) in ($start, $end]."""
    group = f" GROUP BY {quote_ident(group_by)}" if group_by else ""
    return (
        f"SELECT * FROM {qualified(db, rp, measurement)} "
        f"WHERE time > $start AND time <= $end{group} ORDER BY time DESC LIMIT 1"
    )
