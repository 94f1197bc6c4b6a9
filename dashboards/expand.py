"""A dashboard's InfluxQL as Grafana 11's InfluxDB datasource sends it, to run against InfluxDB.

Grafana cannot be installed here, so generated boards are proven by running every panel query
against the real InfluxDB. This module turns a raw-mode InfluxQL target (``rawQuery: true``) into
the exact text Grafana would send, resolving template variables the way a dashboard does.

Which Grafana code path
-----------------------
Grafana 11 runs InfluxQL in *backend mode* (feature ``influxdbBackendMigration``, on by default
since grafana/grafana#76641; the datasource is ``access: proxy``). A query then goes through two
steps, reproduced here in the same order:

1. Browser, ``InfluxDatasource.applyTemplateVariables`` → ``applyVariables``
   (``public/app/plugins/datasource/influxdb/datasource.ts``): the text goes through
   ``templateSrv.replace(query, scopedVars, (value, variable) => interpolateQueryExpr(value,
   variable, query))``. The scoped variables ``__interval`` and ``__interval_ms`` are set to the
   literal texts ``$__interval`` and ``$__interval_ms`` so the backend fills them in.
2. Server, ``Query.Build`` (``pkg/tsdb/influxdb/influxql/models/query.go``), on the result of
   step 1: ``strings.ReplaceAll`` of ``$timeFilter``, then ``$interval``, then ``$__interval_ms``,
   then ``$__interval``, each over the whole text.

Step 1: references and values
-----------------------------
References are found with Grafana's ``variableRegex`` (``public/app/features/variables/
utils.ts``): ``$name``, ``[[name]]`` (``[[name:fmt]]``) and ``${name}`` (``${name.path}``,
``${name:fmt}``). Formats and field paths are refused here (:class:`ValueError`): no generated
board needs them. A reference resolves, in this order, to

* ``__interval`` / ``__interval_ms``: the literal ``$__interval`` / ``$__interval_ms`` (step 2);
* a dashboard variable given in ``variables``, formatted by ``interpolateQueryExpr`` below;
* ``__from`` / ``__to``: the range's start / end in Unix milliseconds (``from.valueOf()``);
* ``timeFilter`` and ``interval`` in the bare ``$name`` form only: left for step 2 (the backend
  does not recognise ``${timeFilter}`` or ``[[timeFilter]]``, so those forms are errors);
* anything else: :class:`ValueError` naming it. Grafana leaves an unknown reference in the text;
  InfluxDB then fails on it (``$x`` is an unbound parameter) or, inside a quoted literal, silently
  matches nothing. Grafana's templating ignores InfluxQL quoting, so ``'$provnce'`` is a
  reference too and is refused like any other typo. ``[[...]]`` whose content is not a name
  (``[[:alpha:]]`` in a regex) is left alone, as Grafana leaves it.

``interpolateQueryExpr(value, variable, query)`` (datasource.ts), with ``query`` the *whole*
original query text:

* a string that JavaScript's ``parseFloat`` reads as a number (after blanks: an optional sign,
  then a digit, ``.digit`` or ``Infinity``: ``"01"``, ``"79"``, ``"1m"``, ``"1.5.3"``) is
  inserted as it is, in any context;
* a multi-value selection (here: a ``list``/``tuple`` value, Grafana's ``variable.multi``
  branch; "All" of a multi variable is the list of every option) becomes
  ``(v1|v2|...)`` with each value passed through ``escapeRegex``, whatever the context;
* a single string is passed through ``escapeRegex`` if the query has a regex literal after
  ``=~``/``!~`` that contains ``$name`` (Grafana's two regexes, ported below; note that only the
  ``$name`` form counts, that ``$prov`` also "occurs" in ``$province``, and that the escaping
  then applies to every use of the variable in the query, quoted ones too), and inserted raw
  otherwise, e.g. ``"province" = '$province'`` → ``"province" = 'Hà Nội'`` without escaping.
* a :class:`RawValue` (a variable's custom "All" value, e.g. ``.*``) is inserted verbatim: Grafana
  does not format a custom all value (``templateSrv`` returns ``this.replace(allValue)``).

``escapeRegex`` (``packages/grafana-data/src/text/string.ts``) backslash-escapes
``\\ ^ $ * + ? . ( ) | [ ] { } /``. Values are inserted once and not scanned again by step 1.

Simplification: a list is always treated as Grafana's ``multi`` branch. Grafana gives ``a,b``
(JavaScript's array-to-string) for "All" of an ``includeAll`` but *not* ``multi`` variable used
outside a regex; that text is a broken query either way.

Step 2: time range and interval
-------------------------------
``$timeFilter`` → ``time >= <from>ms and time <= <to>ms`` (``renderTimeFilter`` and
``epochMStoInfluxTime``: Unix milliseconds, truncated). ``$interval`` and ``$__interval`` → the
interval as ``gtime.FormatInterval`` writes it (the largest whole unit of y=365d, d, h, m, s, ms:
90 s → ``1m``), ``$__interval_ms`` → its milliseconds (at least 1, as ``QueryParse`` clamps it).
:func:`interval_for` computes the interval Grafana picks for a panel.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ioc.store import Store

__all__ = [
    "ALL_VALUE",
    "Interval",
    "PanelQuery",
    "RawValue",
    "VariableQuery",
    "escape_regex",
    "expand",
    "format_interval",
    "interval_for",
    "interval_to_ms",
    "panel_queries",
    "resolve_variables",
    "round_interval",
    "run_variable_query",
    "variable_queries",
]

ALL_VALUE = "$__all"
"""The value Grafana stores for an "All" selection (``ALL_VARIABLE_VALUE``)."""

DEFAULT_MAX_DATA_POINTS = 500
"""Scenes' ``SceneQueryRunner.getMaxDataPoints`` fallback when no panel width is known."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# public/app/features/variables/utils.ts, variableRegex (JavaScript \w is ASCII).
_REFERENCE = re.compile(
    r"\$(\w+)|\[\[([\s\S]+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}",
    re.ASCII,
)
_NAME = re.compile(r"\w+", re.ASCII)
# datasource.ts interpolateQueryExpr: regex literals after =~ or !~ in the query text.
_REGEX_LITERAL = re.compile(
    r"(\s*(=|!)~\s*)/((?![*+?])(?:[^\r\n\[/\\]|\\.|\[(?:[^\r\n\]\\]|\\.)*\])+)/"
    r"((?:g(?:im?|mi?)?|i(?:gm?|mg?)?|m(?:gi?|ig?)?)?)"
)
# packages/grafana-data/src/text/string.ts, escapeRegex.
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
# JavaScript parseFloat(value) is not NaN: a numeric prefix after leading blanks.
_JS_NUMBER_PREFIX = re.compile(r"[+-]?(?:Infinity|\d|\.\d)")
# packages/grafana-data/src/datetime/rangeutil.ts, interval_regex and intervals_in_seconds.
_INTERVAL_TEXT = re.compile(r"(\d+)(ms|[Mwdhmsy])")
_INTERVAL_UNIT_MS = {
    "y": 31_536_000_000,
    "M": 2_592_000_000,
    "w": 604_800_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}
# rangeutil.ts roundInterval: (upper bound exclusive, rounded interval), both in ms.
_ROUND_INTERVAL = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_800_000, 2_592_000_000),
)
_ONE_YEAR_MS = 31_536_000_000
# grafana-plugin-sdk-go backend/gtime FormatInterval: the largest whole unit.
_FORMAT_UNITS = (
    ("y", 31_536_000_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
)
_SCOPED = {"__interval": "$__interval", "__interval_ms": "$__interval_ms"}
_BACKEND = frozenset({"timeFilter", "interval"})


class RawValue(str):
    """A value inserted verbatim, never escaped (a variable's custom "All" value)."""

    __slots__ = ()


VariableValue = str | Sequence[str]


# --- time range and interval ------------------------------------------------------------------


def _unix_ms(moment: datetime) -> int:
    """Unix milliseconds, truncated toward zero (Go's ``UnixNano() / int64(time.Millisecond)``)."""
    if moment.tzinfo is None:
        raise ValueError(f"time {moment.isoformat()!r} has no timezone")
    delta = moment - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return micros // 1000 if micros >= 0 else -(-micros // 1000)


def interval_to_ms(text: str) -> int:
    """Milliseconds of a Grafana interval text (``rangeutil.intervalToMs``): ``30s``, ``1m``,
    ``1h``, ``500ms``, ``1M`` (30 d), ``1y`` (365 d); a bare number is seconds.

    Stricter than Grafana, which reads ``1.5m`` as ``1m`` and ignores trailing text: anything but
    a whole number and one unit raises :class:`ValueError`.
    """
    if text.isdigit() and int(text):
        return int(text) * 1000
    match = _INTERVAL_TEXT.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid interval {text!r} (e.g. 500ms, 30s, 1m, 1h, 1d)")
    return int(match.group(1)) * _INTERVAL_UNIT_MS[match.group(2)]


def format_interval(ms: int) -> str:
    """The interval text the backend puts in ``$__interval`` (``gtime.FormatInterval``)."""
    for unit, size in _FORMAT_UNITS:
        if ms >= size:
            return f"{ms // size}{unit}"
    return "1ms"


def round_interval(ms: float) -> int:
    """Grafana's ``rangeutil.roundInterval``: the "nice" interval at or below ``ms``."""
    for bound, rounded in _ROUND_INTERVAL:
        if ms < bound:
            return rounded
    return _ONE_YEAR_MS


@dataclass(frozen=True, slots=True)
class Interval:
    """A panel's ``$__interval``: milliseconds and the text the backend writes for it."""

    ms: int

    def __post_init__(self) -> None:
        if self.ms < 1:
            object.__setattr__(self, "ms", 1)  # QueryParse: "at least 1 millisecond"

    @property
    def text(self) -> str:
        return format_interval(self.ms)

    def __str__(self) -> str:
        return self.text

    @classmethod
    def of(cls, value: str | Interval) -> Interval:
        """An interval from its Grafana text (``1m``) or as it is."""
        return value if isinstance(value, Interval) else cls(interval_to_ms(value))


def interval_for(
    start: datetime,
    end: datetime,
    *,
    max_data_points: int = DEFAULT_MAX_DATA_POINTS,
    min_interval: str | None = None,
) -> Interval:
    """The ``$__interval`` Grafana picks for a panel (``rangeutil.calculateInterval``).

    ``roundInterval((end - start) / max_data_points)`` in milliseconds, raised to
    ``min_interval`` when that is larger. A dashboard panel's ``max_data_points`` is its
    ``maxDataPoints`` or else its width in pixels (500 when unknown, as in Scenes); its
    ``min_interval`` is the panel's ``interval`` or else the datasource's ``timeInterval``
    (``1m`` for this project's datasource). Example: 6 h over 500 points is 43.2 s → ``30s``;
    with ``min_interval="1m"`` → ``1m``.
    """
    if max_data_points < 1:
        raise ValueError(f"max_data_points must be positive, got {max_data_points}")
    span = _unix_ms(end) - _unix_ms(start)
    ms = round_interval(span / max_data_points)
    low = interval_to_ms(min_interval) if min_interval else 1
    return Interval(max(ms, low))


# --- interpolation ----------------------------------------------------------------------------


def escape_regex(value: str) -> str:
    """Grafana's ``escapeRegex``: backslash before ``\\ ^ $ * + ? . ( ) | [ ] { } /``."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def _in_regex_literal(name: str, query: str) -> bool:
    """Grafana's test: does some ``=~ /.../`` or ``!~ /.../`` of ``query`` contain ``$name``?"""
    inside = re.compile(r"/(?:\^)?(.*)(\$" + re.escape(name) + r")(.*)(?:\$)?/")
    return any(inside.search(m.group(0)) for m in _REGEX_LITERAL.finditer(query))


def _format(name: str, value: VariableValue, query: str) -> str:
    """``InfluxDatasource.interpolateQueryExpr`` for one dashboard variable."""
    if isinstance(value, RawValue):
        return str(value)
    if isinstance(value, str):
        if _JS_NUMBER_PREFIX.match(value.lstrip()):
            return value
        return escape_regex(value) if _in_regex_literal(name, query) else value
    values = list(value)
    if not all(isinstance(v, str) for v in values):
        raise ValueError(f"variable {name!r}: values must be strings, got {values!r}")
    return "(" + "|".join(escape_regex(v) for v in values) + ")"


def expand(
    query: str,
    *,
    start: datetime,
    end: datetime,
    interval: str | Interval,
    variables: Mapping[str, VariableValue],
) -> str:
    """``query`` exactly as Grafana 11 sends it to InfluxDB (rules: module docstring).

    ``interval`` is the panel's ``$__interval`` (:func:`interval_for`, or a text like ``1m``);
    ``variables`` maps each dashboard variable to its value: a string for a single value, a
    list for a multi-value or "All" selection, a :class:`RawValue` for a custom all value.
    Raises :class:`ValueError` for a reference that is not a variable or a Grafana built-in.
    """
    step = Interval.of(interval)
    from_ms, to_ms = _unix_ms(start), _unix_ms(end)

    def reference(match: re.Match[str]) -> str:
        bare, bracketed, bracket_format, braced, path, brace_format = match.groups()
        name = bare or bracketed or braced
        if bracketed is not None and not _NAME.fullmatch(bracketed):
            return match.group(0)  # "[[:alpha:]]": no variable can have that name
        if bracket_format or brace_format or path:
            raise ValueError(
                f"{match.group(0)}: variable formats and field paths are not supported here"
            )
        if name in _SCOPED:
            return _SCOPED[name]
        if name in variables:
            return _format(name, variables[name], query)
        if name == "__from":
            return str(from_ms)
        if name == "__to":
            return str(to_ms)
        if name in _BACKEND:
            if bare is None:
                raise ValueError(
                    f"{match.group(0)}: Grafana's backend replaces only the bare ${name} form"
                )
            return match.group(0)
        raise ValueError(
            f"unknown template variable ${name} in {query!r}: neither a dashboard variable "
            f"({', '.join(sorted(variables)) or 'none'}) nor a Grafana built-in"
        )

    text = _REFERENCE.sub(reference, query)
    # pkg/tsdb/influxdb/influxql/models/query.go, Build: in this order, over the whole text.
    text = text.replace("$timeFilter", f"time >= {from_ms}ms and time <= {to_ms}ms")
    text = text.replace("$interval", step.text)
    text = text.replace("$__interval_ms", str(step.ms))
    return text.replace("$__interval", step.text)


# --- the dashboard model ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PanelQuery:
    """One visible raw InfluxQL target of a panel."""

    panel_id: int | None
    panel_title: str
    panel_type: str
    ref_id: str
    query: str
    result_format: str
    min_interval: str | None = None  # the panel's "interval" (query options → min interval)
    max_data_points: int | None = None  # the panel's "maxDataPoints"


@dataclass(frozen=True, slots=True)
class VariableQuery:
    """A ``query`` template variable: its InfluxQL and when Grafana refreshes it."""

    name: str
    query: str
    refresh: int  # 0 never, 1 on dashboard load, 2 on time range change


def _panels(panels: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])  # rows, collapsed ones included


def _is_influx(datasource: Any) -> bool | None:
    if isinstance(datasource, Mapping) and datasource.get("type"):
        return bool(datasource["type"] == "influxdb")
    return None


def panel_queries(model: Mapping[str, Any]) -> list[PanelQuery]:
    """Every visible InfluxQL target of the board, in panel order (rows' panels included).

    Targets with ``hide: true`` are skipped, as Grafana skips them; so are targets whose
    datasource (the target's, else the panel's) has a type other than ``influxdb``. A visible
    InfluxDB target that is not a raw query raises :class:`ValueError`: the query builder's
    rendering is not reproduced here.
    """
    out: list[PanelQuery] = []
    for panel in _panels(model.get("panels") or []):
        for target in panel.get("targets") or []:
            if target.get("hide") is True:
                continue
            influx = _is_influx(target.get("datasource"))
            if influx is None:
                influx = _is_influx(panel.get("datasource"))
            if influx is False:
                continue
            title = panel.get("title", "")
            if target.get("rawQuery") is not True or not isinstance(target.get("query"), str):
                raise ValueError(
                    f"panel {panel.get('id')} {title!r} target {target.get('refId')}: "
                    "not a raw InfluxQL query (rawQuery: true with a query text)"
                )
            max_points = panel.get("maxDataPoints")
            out.append(
                PanelQuery(
                    panel_id=panel.get("id"),
                    panel_title=title,
                    panel_type=panel.get("type", ""),
                    ref_id=target.get("refId", ""),
                    query=target["query"],
                    result_format=target.get("resultFormat") or "time_series",
                    min_interval=panel.get("interval") or None,
                    max_data_points=int(max_points) if max_points else None,
                )
            )
    return out


def _variables(model: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((model.get("templating") or {}).get("list") or [])


def _query_text(variable: Mapping[str, Any]) -> str:
    query = variable.get("query", "")
    if isinstance(query, Mapping):  # InfluxVariableQuery {"query": ..., "refId": ...}
        query = query.get("query", "")
    if not isinstance(query, str):
        raise ValueError(f"variable {variable.get('name')!r}: query {query!r} is not text")
    return query


def variable_queries(model: Mapping[str, Any]) -> list[VariableQuery]:
    """The board's ``query`` variables in dashboard order."""
    return [
        VariableQuery(v["name"], _query_text(v), int(v.get("refresh", 1)))
        for v in _variables(model)
        if v.get("type") == "query"
    ]


# --- resolving variables ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Option:
    text: str
    value: str


def _js_regex(pattern: str) -> tuple[re.Pattern[str], bool]:
    """Grafana's ``stringToJsRegex``: ``/body/flags`` or a bare pattern anchored ``^...$``."""
    body, flags = f"^{pattern}$", ""
    if pattern.startswith("/"):
        match = re.fullmatch(r"/(.*?)/([gimys]*)", pattern, re.S)
        if match is None:
            raise ValueError(f"{pattern!r} is not a valid regular expression")
        body, flags = match.groups()
    body = body.replace("(?<", "(?P<").replace("(?P<=", "(?<=").replace("(?P<!", "(?<!")
    py_flags = re.NOFLAG
    if "i" in flags:
        py_flags |= re.IGNORECASE
    if "m" in flags:
        py_flags |= re.MULTILINE
    if "s" in flags:
        py_flags |= re.DOTALL
    return re.compile(body, py_flags), "g" in flags


def _regex_format(value: VariableValue) -> str:
    """Grafana's ``regex`` variable format (used for variables inside a variable's regex)."""
    if isinstance(value, str):
        return escape_regex(value)
    escaped = [escape_regex(v) for v in value]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def _apply_regex(
    options: list[_Option], regex: str, resolved: Mapping[str, VariableValue]
) -> list[_Option]:
    """``metricNamesToVariableValues``: keep matching values; a group extracts the value."""

    def reference(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        return _regex_format(resolved[name]) if name in resolved else match.group(0)

    pattern, is_global = _js_regex(_REFERENCE.sub(reference, regex))
    out: list[_Option] = []
    for option in options:
        found = list(pattern.finditer(option.value)) if is_global else []
        if not is_global:
            first = pattern.search(option.value)
            found = [first] if first else []
        if not found:
            continue
        value = next((m["value"] for m in found if m.groupdict().get("value")), None)
        text = next((m["text"] for m in found if m.groupdict().get("text")), None)
        first_group = next((m for m in found if m.re.groups > 0), None)
        if value or text:
            out.append(_Option(text or value or "", value or text or ""))
        elif len(found) > 1 and first_group:
            out += [_Option(m.group(1) or "", m.group(1) or "") for m in found]
        elif first_group:
            group = first_group.group(1) or ""
            out.append(_Option(group, group))
        else:
            out.append(option)
    return out


def _natural_key(text: str) -> list[tuple[int, int | str]]:
    return [
        (0, int(part)) if part.isdigit() else (1, part.lower())
        for part in re.split(r"(\d+)", text)
        if part
    ]


def _sort(options: list[_Option], order: int) -> list[_Option]:
    """``sortVariableValues`` (on the option text): 0 none, 1/2 alphabetical, 3/4 numerical
    (first number in the text, -1 without one), 5/6 case-insensitive, 7/8 natural; even = desc."""
    if order == 0:
        return options

    def numeric(option: _Option) -> int:
        match = re.search(r"(\d+)", option.text)
        return int(match.group(1)) if match else -1

    keys: dict[int, Callable[[_Option], Any]] = {
        1: lambda o: o.text,
        3: numeric,
        5: lambda o: o.text.lower(),
        7: lambda o: _natural_key(o.text),
    }
    key = keys.get(order if order % 2 else order - 1)
    if key is None:
        raise ValueError(f"unknown variable sort {order}")
    ordered = sorted(options, key=key)
    return ordered if order % 2 else ordered[::-1]


def _custom_options(query: str) -> list[_Option]:
    """A custom variable's options: ``a,b,c`` or ``text : value`` pairs (``\\,`` is a comma)."""
    options = []
    for part in re.findall(r"(?:\\,|[^,])+", query):
        item = part.replace("\\,", ",")
        pair = re.fullmatch(r"\s*(.+)\s:\s(.+)", item)
        if pair:
            options.append(_Option(pair.group(1).strip(), pair.group(2).strip()))
        else:
            options.append(_Option(item.strip(), item.strip()))
    return options


def _dedupe(options: list[_Option]) -> list[_Option]:
    seen: set[str] = set()
    out = []
    for option in options:
        if option.value not in seen:
            seen.add(option.value)
            out.append(option)
    return out


class _Choice:
    """How a variable picks its value among ``options`` (Scenes' ``MultiValueVariable``)."""

    def __init__(self, variable: Mapping[str, Any], options: list[_Option]) -> None:
        self.name: str = variable["name"]
        self.multi = bool(variable.get("multi"))
        self.include_all = bool(variable.get("includeAll"))
        self.all_value: str | None = variable.get("allValue") or None
        self.options = options
        self.values = [o.value for o in options]

    def all(self) -> VariableValue:
        """The "All" selection: the custom all value, or every option."""
        return RawValue(self.all_value) if self.all_value else list(self.values)

    def is_all(self, value: VariableValue) -> bool:
        items = [value] if isinstance(value, str) else list(value)
        return self.include_all and bool(items) and items[0] in (ALL_VALUE, "All")

    def chosen(self, chosen: VariableValue) -> VariableValue:
        """``chosen``, which must be offered (``$__all`` for "All")."""
        if self.is_all(chosen):
            return self.all()
        picked = [chosen] if isinstance(chosen, str) else list(chosen)
        if not picked or any(v not in self.values for v in picked):
            raise ValueError(
                f"variable {self.name!r}: chosen {chosen!r} is not offered (options: {self.values})"
            )
        if len(picked) > 1 and not self.multi:
            raise ValueError(f"variable {self.name!r} takes one value, chosen {chosen!r}")
        return picked if self.multi else picked[0]

    def current(self, current: Any) -> VariableValue | None:
        """The saved ``current`` value where it is still offered (by value, else by text)."""
        if current in (None, "", []):
            return None
        if self.is_all(current):
            return self.all()
        texts = {o.text: o.value for o in self.options}
        wanted = [current] if isinstance(current, str) else list(current)
        kept = [
            v if v in self.values else texts[v] for v in wanted if v in self.values or v in texts
        ]
        if not kept:
            return None
        return kept if self.multi else kept[0]

    def default(self) -> VariableValue:
        """ "All" for an ``includeAll`` variable (its first option), else the first option."""
        if self.include_all:
            return self.all()
        if not self.values:
            return [] if self.multi else ""  # Grafana shows "None": an empty value
        return [self.values[0]] if self.multi else self.values[0]


def _select(
    variable: Mapping[str, Any], options: list[_Option], chosen: VariableValue | None
) -> VariableValue:
    """The value among ``options``: ``chosen``, else ``current`` if offered, else the default."""
    choice = _Choice(variable, options)
    if chosen is not None:
        return choice.chosen(chosen)
    saved = choice.current((variable.get("current") or {}).get("value"))
    return saved if saved is not None else choice.default()


def _options(
    variable: Mapping[str, Any],
    run_query: Callable[[str], list[str]],
    resolved: Mapping[str, VariableValue],
    start: datetime,
    end: datetime,
) -> list[_Option]:
    """The options of a ``query``, ``custom``, ``constant`` or ``interval`` variable."""
    kind = variable.get("type")
    if kind == "constant":
        value = str(variable.get("query", ""))
        return [_Option(value, value)]
    if kind in ("custom", "interval"):
        options = _custom_options(_query_text(variable))
        if kind == "interval" and variable.get("auto"):
            options.insert(0, _Option("auto", f"$__auto_interval_{variable['name']}"))
        return options
    if kind != "query":
        raise ValueError(f"variable {variable['name']!r}: type {kind!r} is not supported")
    text = expand(
        _query_text(variable),
        start=start,
        end=end,
        interval=interval_for(start, end),
        variables=resolved,
    )
    options = [_Option(v, v) for v in run_query(text)]
    if variable.get("regex"):
        options = _apply_regex(options, variable["regex"], resolved)
    return _sort(_dedupe(options), int(variable.get("sort") or 0))


def resolve_variables(
    model: Mapping[str, Any],
    run_query: Callable[[str], list[str]],
    *,
    start: datetime,
    end: datetime,
    chosen: Mapping[str, VariableValue] | None = None,
) -> dict[str, str | list[str]]:
    """The value of every template variable, in dashboard order, as a dashboard shows them.

    * ``query``: its InfluxQL, expanded with the variables before it (:func:`expand`, range
      ``start``..``end``), runs through ``run_query`` (e.g. :func:`run_variable_query` bound to
      a store); the variable's ``regex`` filters and extracts values
      (``metricNamesToVariableValues``), duplicates go, ``sort`` orders them;
    * ``custom``: options from its ``query`` (``a,b`` or ``text : value``); ``interval``: from
      its comma-separated ``query`` (an ``auto`` selection is :func:`interval_for` with
      ``auto_count`` points and ``auto_min``); ``constant``: its ``query``; ``textbox``:
      ``chosen``, else ``current``, else its ``query``; ``datasource``: its ``current``;
      ``adhoc``: skipped (not a value).

    The value is ``chosen[name]`` when given (it must be among the options, else
    :class:`ValueError`; ``$__all`` picks "All"), else ``current`` when it is among the options
    (by value, else by text), else "All" for an ``includeAll`` variable, else the first option.
    Multi-value variables give a list; "All" gives every option, or the custom all value as a
    :class:`RawValue`. A query variable is always run, whatever its ``refresh``.
    """
    picks = dict(chosen or {})
    unknown = set(picks) - {v["name"] for v in _variables(model) if v.get("type") != "adhoc"}
    if unknown:
        raise ValueError(f"chosen values for variables the board does not have: {sorted(unknown)}")
    resolved: dict[str, str | list[str]] = {}
    for variable in _variables(model):
        name, kind = variable["name"], variable.get("type")
        current = (variable.get("current") or {}).get("value")
        if kind == "adhoc":
            continue
        if kind == "textbox":
            saved = current if current not in (None, "") else variable.get("query")
            value: VariableValue = picks.get(name, str(saved or ""))
        elif kind == "datasource":
            value = str(current or "")
        else:
            options = _options(variable, run_query, resolved, start, end)
            value = _select(variable, options, picks.get(name))
        if kind == "interval" and value in (f"$__auto_interval_{name}", "$__auto"):
            value = interval_for(
                start,
                end,
                max_data_points=int(variable.get("auto_count") or 30),
                min_interval=variable.get("auto_min") or "10s",
            ).text
        resolved[name] = value if isinstance(value, str) else list(value)
    return resolved


def run_variable_query(store: Store, text: str) -> list[str]:
    """Run a variable's InfluxQL on ``store``; return its values as Grafana lists them.

    ``SHOW TAG VALUES`` answers columns ``key`` and ``value``: the ``value`` column. Other
    statements (``SHOW MEASUREMENTS``, ``SHOW TAG KEYS``, a ``SELECT``): the first column that is
    not ``time``. Values of every series, in order, each once.
    """
    values: list[str] = []
    for series in store.query(text, epoch="ms"):
        columns = [c for c in series.columns if c != "time"]
        if not columns:
            continue
        column = series.columns.index("value" if "value" in columns else columns[0])
        values += [str(row[column]) for row in series.values if row[column] is not None]
    return list(dict.fromkeys(values))
