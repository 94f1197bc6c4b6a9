"""Quoting for InfluxQL text; values go in bound parameters (``$name``) wherever InfluxQL allows.

InfluxQL binds parameters only where a literal is expected (tag and field comparisons, time
bounds, LIMIT). Identifiers (database, retention policy, measurement, tag and field keys) cannot
be bound, so they are quoted here. Names that line protocol refuses (control characters,
backslashes) are refused here too, so that a name can always be written and queried back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

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


COUNT_TRUE = "count_true"
"""A period aggregate InfluxQL has no function for: how many readings of a bool field are true
(``sum`` and ``mean`` refuse booleans), read by :func:`period_true_counts`."""


def period_true_counts(
    db: str,
    measurement: str,
    field: str,
    *,
    period_s: int,
    offset_s: int = 0,
    rp: str = "raw",
) -> str:
    """Per source and period, how many readings of the bool ``field`` are true, over
    [$start, $end), as column ``count_true_<field>`` (a period without one has no row)."""
    column = quote_ident(column_name(COUNT_TRUE, field))
    return (
        f"SELECT count({quote_ident(field)}) AS {column} FROM {qualified(db, rp, measurement)} "
        f"WHERE time >= $start AND time < $end AND {quote_ident(field)} = true "
        f'GROUP BY time({period_s}s, {offset_s}s), "source" fill(none)'
    )


def last_received(db: str, measurement: str, *, rp: str = "raw") -> str:
    """Per source, the time of its last record in ($start, $end] (and its receive time)."""
    return (
        f"SELECT last({quote_ident(RECEIVED_FIELD)}) FROM {qualified(db, rp, measurement)} "
        f'WHERE time > $start AND time <= $end GROUP BY "source"'
    )


def received_times(db: str, measurement: str, *, rp: str = "raw") -> str:
    """Per source, the time of every record in ($start, $end] that has a receive time.

    The engine's live-ness reads these once per window and finds each period end's last record
    itself: the same times :func:`last_received` returns per end, in one query (issue 16)."""
    return (
        f"SELECT {quote_ident(RECEIVED_FIELD)} FROM {qualified(db, rp, measurement)} "
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
COVERAGE_FIELDS = (
    "sources_expected",
    "wards_reporting",
    "wards_expected",
    "departments_reporting",
    "departments_expected",
    "provinces_reporting",
    "provinces_expected",
)
"""Coverage split by kind of unit (ioc/engine/rollup.py), read beside :data:`VALUE_FIELDS` by
the API's values (the walls show ``coverage``/``expected`` only, so their queries do not)."""


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


def last_received_in(db: str, measurements: Sequence[str], *, rp: str = "raw") -> str:
    """:func:`last_received` of several measurements in one statement: per measurement and
    source, the time of the last record in ($start, $end] and its receive time (one series
    each, named after its measurement). The API's feed listing reads every kind at once."""
    if not measurements:
        raise ValueError("last_received_in needs at least one measurement")
    sources = ", ".join(qualified(db, rp, m) for m in dict.fromkeys(measurements))
    return (
        f"SELECT last({quote_ident(RECEIVED_FIELD)}) FROM {sources} "
        f'WHERE time > $start AND time <= $end GROUP BY "source"'
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


# --- more read-side query text: stage and detail series, raw readings, self-metrics -----------


def field_series(
    db: str,
    *,
    function: str,
    field: str,
    interval_s: int,
    filters: Sequence[str],
    group_by: Sequence[str] = (),
    rp: str = "derived",
) -> str:
    """``function(field)`` of indicator points per bucket over [$start, $end), split by tags.

    :func:`value_series` for another field than ``value`` (the flood ``stage``, a feed's
    ``state``) and several places at once (``group_by=("source",)``).
    """
    if function not in AGGREGATES:
        raise ValueError(f"unknown aggregate {function!r} (one of {sorted(AGGREGATES)})")
    if interval_s < 1:
        raise ValueError(f"interval must be at least 1 s, got {interval_s}")
    where = _where(filters)
    for tag in group_by:
        if tag not in INDICATOR_TAGS:
            raise ValueError(f"cannot group by {tag!r}: not an indicator tag")
    groups = "".join(f", {quote_ident(tag)}" for tag in group_by)
    return (
        f"SELECT {function}({quote_ident(field)}) AS {quote_ident(field)} "
        f"FROM {qualified(db, rp, INDICATOR_MEASUREMENT)} "
        f"WHERE {where + ' AND ' if where else ''}time >= $start AND time < $end "
        f"GROUP BY time({interval_s}s){groups} fill(none)"
    )


def latest_detail_values(
    db: str,
    *,
    fields: Sequence[str],
    filters: Sequence[str],
    group_by: Sequence[str],
    rp: str = "derived",
) -> str:
    """:func:`latest_values` with other fields beside ``value`` (formula details, location)."""
    columns = ", ".join(['last("value") AS "value"'] + [quote_ident(field) for field in fields])
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


def latest_state_counts(db: str, *, indicator_filters: Sequence[str], rp: str = "derived") -> str:
    """Per province, the sources whose latest live-ness ``state`` is ``$state``, in ($start, $end].

    The inner query takes each source's newest point; the outer one counts those in the state.
    """
    inner = latest_detail_values(
        db, fields=("state",), filters=indicator_filters, group_by=("province", "source"), rp=rp
    )
    return (
        f'SELECT count("value") AS "count" FROM ({inner}) '
        f'WHERE "state" = $state GROUP BY "province"'
    )


RAW_TAGS = ("province", "ward", "source")
"""The tag keys of a raw reading (ingest/validate.py); the metrics are fields."""


def latest_readings(
    db: str,
    measurement: str,
    *,
    fields: Sequence[str],
    filters: Sequence[str],
    group_by: Sequence[str],
    rp: str = "raw",
) -> str:
    """Per group, the last reading of each field in ($start, $end] (a task register's counts)."""
    for tag in (*filters, *group_by):
        if tag not in RAW_TAGS:
            raise ValueError(f"{tag!r} is not a tag of raw readings ({', '.join(RAW_TAGS)})")
    columns = ", ".join(f"last({quote_ident(f)}) AS {quote_ident(f)}" for f in fields)
    where = "".join(f"{quote_ident(tag)} = ${tag} AND " for tag in filters)
    group = ", ".join(quote_ident(tag) for tag in group_by)
    text = (
        f"SELECT {columns} FROM {qualified(db, rp, measurement)} "
        f"WHERE {where}time > $start AND time <= $end"
    )
    return f"{text} GROUP BY {group}" if group else text


def self_metric_series(
    db: str,
    measurement: str,
    *,
    function: str,
    field: str,
    interval_s: int,
    group_by: str | None = None,
    rate: bool = False,
    rp: str = "ops",
) -> str:
    """A process's self-metric per bucket over [$start, $end) (``rate``: per second, of a counter).

    Counters (``received``, ``acked``...) restart at 0 with their process; a rate uses
    ``non_negative_derivative`` so a restart shows as a gap, not as a negative rate.
    """
    if function not in AGGREGATES:
        raise ValueError(f"unknown aggregate {function!r} (one of {sorted(AGGREGATES)})")
    if interval_s < 1:
        raise ValueError(f"interval must be at least 1 s, got {interval_s}")
    selection = f"{function}({quote_ident(field)})"
    if rate:
        selection = f"non_negative_derivative({selection}, 1s)"
    group = f", {quote_ident(group_by)}" if group_by else ""
    return (
        f"SELECT {selection} AS {quote_ident(field)} FROM {qualified(db, rp, measurement)} "
        f"WHERE time >= $start AND time < $end GROUP BY time({interval_s}s){group} fill(none)"
    )


def dead_letter_counts(db: str, *, interval_s: int, rp: str = "ops") -> str:
    """Dead letters per bucket and reason over [$start, $end)."""
    if interval_s < 1:
        raise ValueError(f"interval must be at least 1 s, got {interval_s}")
    return (
        f'SELECT count("message") AS "dead_letters" FROM {qualified(db, rp, "dead_letter")} '
        f'WHERE time >= $start AND time < $end GROUP BY time({interval_s}s), "reason" fill(none)'
    )


def tag_values(db: str, key: str, *, filters: Sequence[str], rp: str = "derived") -> str:
    """The values of indicator tag ``key`` among the points matching the filters."""
    if key not in INDICATOR_TAGS:
        raise ValueError(f"{key!r} is not an indicator tag ({', '.join(INDICATOR_TAGS)})")
    where = _where(filters)
    text = (
        f"SHOW TAG VALUES ON {quote_ident(db)} FROM {qualified(db, rp, INDICATOR_MEASUREMENT)} "
        f"WITH KEY = {quote_ident(key)}"
    )
    return f"{text} WHERE {where}" if where else text


# --- Grafana: the same query text with Grafana's macros (dashboards/) -------------------------

_TIME_BOUNDS = re.compile(r"time >=? \$start AND time <=? \$end")
_INTERVAL = re.compile(r"GROUP BY time\([0-9]+s\)")
_PARAMETER = re.compile(r'(?:("[a-z_]+") = )?\$([A-Za-z_][A-Za-z0-9_]*)')
_GRAFANA_MACROS = frozenset({"timeFilter", "__interval"})


def grafana_query(
    text: str,
    *,
    literals: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
    window_s: int | None = None,
    interval: bool = False,
    timed: bool = True,
) -> str:
    """``text`` (built above, with bound ``$parameters``) as a Grafana InfluxQL raw query.

    * The time bounds become ``$timeFilter`` (the dashboard's range) or, with ``window_s``,
      ``time > now() - <window_s>s``: a stat then shows only a value young enough to be current.
      ``timed=False`` for text without time bounds (``SHOW TAG VALUES``).
    * ``literals``: parameters fixed by the board (``indicator``, ``level``) become quoted
      literals; ``variables``: parameters taken from a template variable. A tag compared with a
      variable becomes ``"tag" =~ /^$var$/`` (so an "All" or multi-value selection works too);
      anywhere else the variable is a quoted literal ``'$var'``.
    * ``interval``: ``GROUP BY time(<n>s)`` becomes ``GROUP BY time($__interval)``.

    Every parameter must be given one way or the other, so no ``$name`` reaches Grafana unbound.
    """
    fixed = dict(literals or {})
    chosen = dict(variables or {})
    if timed:
        if not _TIME_BOUNDS.search(text):
            raise ValueError(f"no time bounds to replace in {text!r}")
        bounds = "$timeFilter" if window_s is None else f"time > now() - {int(window_s)}s"
        text = _TIME_BOUNDS.sub(lambda _: bounds, text)
    if interval:
        text = _INTERVAL.sub("GROUP BY time($__interval)", text)

    def parameter(match: re.Match[str]) -> str:
        tag, name = match.group(1), match.group(2)
        compared = f"{tag} = " if tag else ""
        if name in _GRAFANA_MACROS:
            return match.group(0)
        if name in fixed:
            return compared + quote_literal(fixed[name])
        if name in chosen:
            if tag:
                return f"{tag} =~ /^${chosen[name]}$/"
            return f"'${chosen[name]}'"
        raise ValueError(f"parameter ${name} of {text!r} is neither a literal nor a variable")

    return _PARAMETER.sub(parameter, text)


# --- alerts: raw means against limits, and the alert history ---------------------------------


def metric_means(db: str, measurement: str, *, field: str, rp: str = "raw") -> str:
    """Per source (with its ward and province), the mean of one raw field in ($start, $end]."""
    return (
        f'SELECT mean({quote_ident(field)}) AS "value", count({quote_ident(field)}) AS "n" '
        f"FROM {qualified(db, rp, measurement)} WHERE time > $start AND time <= $end "
        'GROUP BY "province", "ward", "source"'
    )


ALERT_MEASUREMENT = "alert"
"""Measurement (policy ``derived``) of alert state changes, written by ``ioc alerts``."""
ALERT_FIELDS = (
    "alertname",
    "rule",
    "severity",
    "state",
    "previous",
    "value",
    "threshold",
    "summary_vi",
    "summary_en",
    "fingerprint",
)
"""The fields of an alert state change; its tags are the indicator tags that apply."""


def alert_history(db: str, *, province: bool, limit: int, rp: str = "derived") -> str:
    """Alert state changes in ($start, $end], newest first, optionally of one ``$province``."""
    if not 1 <= limit <= 10_000:
        raise ValueError(f"limit must be between 1 and 10000, got {limit}")
    where = '"province" = $province AND ' if province else ""
    columns = ", ".join(quote_ident(name) for name in (*ALERT_FIELDS, "province", "ward", "source"))
    return (
        f"SELECT {columns} FROM {qualified(db, rp, ALERT_MEASUREMENT)} "
        f"WHERE {where}time > $start AND time <= $end ORDER BY time DESC LIMIT {limit}"
    )


def alert_annotations(db: str, rp: str = "derived") -> str:
    """Alert state changes of one ``$province`` in ($start, $end] as annotation events: the
    Vietnamese summary as ``text``, the new state and the severity as tags."""
    return (
        'SELECT "summary_vi" AS "text", "state", "severity", "alertname" '
        f"FROM {qualified(db, rp, ALERT_MEASUREMENT)} "
        'WHERE "province" = $province AND time > $start AND time <= $end'
    )


# --- Grafana-managed alerting: one numeric column per series (alerts/grafana.py) -------------


def metric_mean(db: str, measurements: Sequence[str], *, field: str, rp: str = "raw") -> str:
    """Per source (with ward and province), the mean of one raw field in ($start, $end] only.

    :func:`metric_means` without the reading count, over one or more measurements: Grafana's
    alerting needs exactly one numeric column per series (a second column would be a second
    series with the same labels, which its expressions refuse).
    """
    if not measurements:
        raise ValueError("metric_mean needs at least one measurement")
    sources = ", ".join(qualified(db, rp, measurement) for measurement in measurements)
    return (
        f'SELECT mean({quote_ident(field)}) AS "value" FROM {sources} '
        'WHERE time > $start AND time <= $end GROUP BY "province", "ward", "source"'
    )


def source_last_received(db: str, measurement: str, *, rp: str = "raw") -> str:
    """The time of one source's (``$source``) last record in ($start, $end]: no row when silent."""
    return (
        f"SELECT last({quote_ident(RECEIVED_FIELD)}) FROM {qualified(db, rp, measurement)} "
        'WHERE "source" = $source AND time > $start AND time <= $end'
    )


BROKER_REFUSAL_FIELDS = ("province", "source", "cause", "client_id", "username")
"""What a broker refusal (a dead letter of reason ``broker_refused``, ingest/brokerlog.py) holds
beside its time."""


def broker_refusals(db: str, *, province: bool, limit: int, rp: str = "ops") -> str:
    """The newest dead letters of reason ``$reason`` (the broker's refusals) in ($start, $end],
    optionally of one ``$province``, with their source, cause, client id and user name."""
    if not 1 <= limit <= 100_000:
        raise ValueError(f"limit must be between 1 and 100000, got {limit}")
    conditions = ['"reason" = $reason']
    if province:
        conditions.append('"province" = $province')
    conditions.append("time > $start AND time <= $end")
    columns = ", ".join(quote_ident(field) for field in BROKER_REFUSAL_FIELDS)
    return (
        f"SELECT {columns} FROM {qualified(db, rp, 'dead_letter')} "
        f"WHERE {' AND '.join(conditions)} ORDER BY time DESC LIMIT {limit}"
    )


# --- per-feed data quality (issue 17, item 5; ioc/api/quality.py) ------------------------------


def field_counts(db: str, measurement: str, fields: Sequence[str], *, rp: str = "raw") -> str:
    """Per source, the records (``count(received_ms)`` as ``records``) and ``count(field)`` of
    each field in [$start, $end)."""
    columns = [f"count({quote_ident(RECEIVED_FIELD)}) AS {quote_ident('records')}"]
    columns.extend(f"count({quote_ident(f)}) AS {quote_ident(f)}" for f in fields)
    return (
        f"SELECT {', '.join(columns)} FROM {qualified(db, rp, measurement)} "
        f'WHERE time >= $start AND time < $end GROUP BY "source"'
    )


def filled_slots(db: str, measurement: str, *, interval_s: int, rp: str = "raw") -> str:
    """Per source, the ``interval_s`` slots of [$start, $end) that hold a record (one row each)."""
    return (
        f"SELECT count({quote_ident(RECEIVED_FIELD)}) AS {quote_ident('records')} "
        f"FROM {qualified(db, rp, measurement)} WHERE time >= $start AND time < $end "
        f'GROUP BY time({interval_s}s), "source" fill(none)'
    )


def dead_letter_reasons(db: str, *, province: bool, rp: str = "ops") -> str:
    """Source and reason of every dead letter in [$start, $end) (of ``$province`` if asked)."""
    where = ' AND "province" = $province' if province else ""
    return (
        f'SELECT "source", "reason" FROM {qualified(db, rp, "dead_letter")} '
        f"WHERE time >= $start AND time < $end{where}"
    )
