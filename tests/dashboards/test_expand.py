"""The expander: panel queries as Grafana 11's InfluxDB datasource sends them, run for real."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from dashboards.expand import (
    Interval,
    PanelQuery,
    RawValue,
    VariableQuery,
    escape_regex,
    expand,
    format_interval,
    interval_for,
    interval_to_ms,
    panel_queries,
    resolve_variables,
    round_interval,
    run_variable_query,
    variable_queries,
)
from ioc.settings import Settings
from ioc.store import Point, Store, qualified, time_ns

START = datetime(2025, 11, 1, 0, 0, tzinfo=UTC)
END = datetime(2025, 11, 1, 6, 0, tzinfo=UTC)
START_MS, END_MS = 1_761_955_200_000, 1_761_976_800_000
FILTER = f"time >= {START_MS}ms and time <= {END_MS}ms"
INFLUX = {"type": "influxdb", "uid": "ioc-influxdb"}


def run(query: str, **variables: str | Sequence[str]) -> str:
    return expand(query, start=START, end=END, interval="1m", variables=variables)


# --- expand -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        # the time range, as the backend renders it (Unix ms, both ends included)
        ("SELECT * FROM m WHERE $timeFilter", {}, f"SELECT * FROM m WHERE {FILTER}"),
        ("WHERE $timeFilter AND $timeFilter", {}, f"WHERE {FILTER} AND {FILTER}"),
        ("time >= $__from and time <= ${__to}", {}, f"time >= {START_MS} and time <= {END_MS}"),
        ("[[__from]]", {}, str(START_MS)),
        # the interval and its milliseconds, in every reference form
        ("GROUP BY time($__interval)", {}, "GROUP BY time(1m)"),
        ("GROUP BY time(${__interval})", {}, "GROUP BY time(1m)"),
        ("GROUP BY time([[__interval]])", {}, "GROUP BY time(1m)"),
        ("GROUP BY time($interval)", {}, "GROUP BY time(1m)"),
        ("SELECT $__interval_ms", {}, "SELECT 60000"),
        # a single value in a quoted literal: inserted raw, never escaped
        ("\"p\" = '$p'", {"p": "Hà Nội (thủ đô)"}, "\"p\" = 'Hà Nội (thủ đô)'"),
        ("\"p\" = '${p}'", {"p": "a.b"}, "\"p\" = 'a.b'"),
        ("\"p\" = '[[p]]'", {"p": "a.b"}, "\"p\" = 'a.b'"),
        ("\"p\" = '$p' AND \"q\" = '$q'", {"p": "01", "q": "x"}, "\"p\" = '01' AND \"q\" = 'x'"),
        # a single value inside =~ /.../: escapeRegex, unless parseFloat reads a number
        ('"p" =~ /^$p$/', {"p": "a.b/c"}, r'"p" =~ /^a\.b\/c$/'),
        ('"p" !~ /$p/', {"p": "a+b"}, r'"p" !~ /a\+b/'),
        ('"p" =~ /^$p$/', {"p": "01"}, '"p" =~ /^01$/'),
        ('"p" =~ /^$p$/', {"p": "1.5.3"}, '"p" =~ /^1.5.3$/'),
        # Grafana decides "regex context" for the whole query, by the $name form only
        ('"p" =~ /^$p$/ AND "q" = \'$p\'', {"p": "a.b"}, r'"p" =~ /^a\.b$/ AND "q" = ' + "'a\\.b'"),
        ('"p" =~ /^${p}$/', {"p": "a.b"}, '"p" =~ /^a.b$/'),
        # multi-value and All: (a|b) with every value regex-escaped, in any context
        ('"p" =~ /^$p$/', {"p": ["01", "79"]}, '"p" =~ /^(01|79)$/'),
        ('"p" =~ /^$p$/', {"p": ["a.b", "(c)", "d/e"]}, r'"p" =~ /^(a\.b|\(c\)|d\/e)$/'),
        ('"p" =~ /^$p$/', {"p": ["only"]}, '"p" =~ /^(only)$/'),
        ("\"p\" = '$p'", {"p": ["a", "b"]}, "\"p\" = '(a|b)'"),
        ('"p" =~ /^${p}$/', {"p": ["a", "b"]}, '"p" =~ /^(a|b)$/'),
        # a custom all value goes in verbatim
        ('"p" =~ /^$p$/', {"p": RawValue(".*")}, '"p" =~ /^.*$/'),
        # values are not scanned again by the browser step
        ("\"p\" = '$p'", {"p": "$$x"}, "\"p\" = '$$x'"),
        # "[[...]]" that is no name is left as Grafana leaves it
        ('"p" =~ /[[:alpha:]]+/', {}, '"p" =~ /[[:alpha:]]+/'),
        ("SELECT 1", {}, "SELECT 1"),
    ],
)
def test_expand_reproduces_grafana(
    query: str, variables: Mapping[str, str | Sequence[str]], expected: str
) -> None:
    assert run(query, **variables) == expected


def test_a_whole_panel_query() -> None:
    query = (
        'SELECT mean("value") FROM "ioc"."derived"."indicator" WHERE "province" =~ /^$province$/ '
        'AND "indicator" = \'vn_aqi\' AND $timeFilter GROUP BY time($__interval), "province" '
        "fill(null)"
    )
    got = expand(
        query,
        start=START,
        end=END,
        interval=interval_for(START, END, min_interval="1m"),
        variables={"province": ["01", "40"]},
    )
    assert got == (
        'SELECT mean("value") FROM "ioc"."derived"."indicator" WHERE "province" =~ /^(01|40)$/ '
        f'AND "indicator" = \'vn_aqi\' AND {FILTER} GROUP BY time(1m), "province" fill(null)'
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("\"p\" = '$provnce'", r"\$provnce"),
        ("WHERE $timefilter", r"\$timefilter"),
        ("WHERE $__timeFilter", r"\$__timeFilter"),
        ("GROUP BY time($__intervals)", r"\$__intervals"),
        ("GROUP BY time($__rate_interval)", r"\$__rate_interval"),
        ("SELECT ${nope}", r"\$nope"),
        ("SELECT [[nope]]", r"\$nope"),
        ("WHERE ${timeFilter}", "bare"),
        ("WHERE [[timeFilter]]", "bare"),
        ("GROUP BY time(${interval})", "bare"),
        ("\"p\" = '${province:csv}'", "formats"),
        ("\"p\" = '${province.value}'", "field paths"),
        ("\"p\" = '[[province:raw]]'", "formats"),
    ],
)
def test_unknown_or_unsupported_references_raise(query: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        run(query, province="01")


def test_the_error_names_the_known_variables() -> None:
    with pytest.raises(ValueError, match=r"\$provnce .*\(level, province\)"):
        run("'$provnce'", province="01", level="province")


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        expand(
            "$timeFilter", start=START.replace(tzinfo=None), end=END, interval="1m", variables={}
        )


def test_time_filter_truncates_to_milliseconds_in_any_timezone() -> None:
    hanoi = START.astimezone(timezone(timedelta(hours=7))) + timedelta(microseconds=999)
    got = expand("$timeFilter", start=hanoi, end=END, interval="1s", variables={})
    assert got == FILTER


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a.b", r"a\.b"), ("x/y", r"x\/y"), (r"\^$*+?.()|[]{}/", r"\\\^\$\*\+\?\.\(\)\|\[\]\{\}\/")],
)
def test_escape_regex(value: str, expected: str) -> None:
    assert escape_regex(value) == expected


# --- the interval -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("span", "points", "minimum", "ms", "text"),
    [
        (timedelta(hours=6), 500, None, 30_000, "30s"),  # 43.2 s → 30 s
        (timedelta(hours=6), 500, "1m", 60_000, "1m"),
        (timedelta(hours=6), 1000, None, 20_000, "20s"),  # 21.6 s → 20 s
        (timedelta(hours=1), 1500, None, 2_000, "2s"),  # 2.4 s
        (timedelta(hours=24), 500, None, 120_000, "2m"),  # 172.8 s
        (timedelta(days=7), 500, None, 1_200_000, "20m"),  # 1209.6 s
        (timedelta(days=30), 500, None, 3_600_000, "1h"),  # 5184 s
        (timedelta(days=400), 500, None, 43_200_000, "12h"),  # 19.2 h
        (timedelta(days=1000), 500, None, 86_400_000, "1d"),  # 48 h
        (timedelta(seconds=1), 500, None, 1, "1ms"),
        (timedelta(hours=6), 500, "90s", 90_000, "1m"),  # Grafana writes 90 s as "1m"
    ],
)
def test_interval_for_follows_grafanas_rounding(
    span: timedelta, points: int, minimum: str | None, ms: int, text: str
) -> None:
    got = interval_for(START, START + span, max_data_points=points, min_interval=minimum)
    assert (got.ms, got.text, str(got)) == (ms, text, text)


@pytest.mark.parametrize(
    ("ms", "rounded"),
    [
        (9.9, 1),
        (10, 10),
        (14.9, 10),
        (1_499, 1_000),
        (1_500, 2_000),
        (44_999, 30_000),
        (45_000, 60_000),
        (89_999, 60_000),
        (90_000, 120_000),
        (3_628_800_000, 31_536_000_000),
    ],
)
def test_round_interval_table_edges(ms: float, rounded: int) -> None:
    assert round_interval(ms) == rounded


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1ms"),
        (1, "1ms"),
        (999, "999ms"),
        (1_000, "1s"),
        (90_000, "1m"),
        (3_600_000, "1h"),
        (86_400_000 * 2, "2d"),
        (31_536_000_000, "1y"),
    ],
)
def test_format_interval(ms: int, text: str) -> None:
    assert format_interval(ms) == text


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("500ms", 500),
        ("30s", 30_000),
        ("1m", 60_000),
        ("2h", 7_200_000),
        ("10", 10_000),
        ("1w", 604_800_000),
        ("1M", 2_592_000_000),
        ("1y", 31_536_000_000),
    ],
)
def test_interval_to_ms(text: str, ms: int) -> None:
    assert interval_to_ms(text) == ms


@pytest.mark.parametrize("text", ["", "0", "1.5m", "1 m", "m", "5x", "-1m", "$__interval"])
def test_bad_interval_texts_raise(text: str) -> None:
    with pytest.raises(ValueError, match="invalid interval"):
        interval_to_ms(text)


def test_interval_text_or_value_in_expand() -> None:
    assert run("time($__interval) $__interval_ms") == "time(1m) 60000"
    got = expand(
        "$__interval $__interval_ms", start=START, end=END, interval=Interval(90_000), variables={}
    )
    assert got == "1m 90000"
    assert Interval(0).ms == 1


# --- the dashboard model ----------------------------------------------------------------------


def target(ref: str, query: str, **extra: Any) -> dict[str, Any]:
    return {"refId": ref, "datasource": INFLUX, "query": query, "rawQuery": True, **extra}


BOARD: dict[str, Any] = {
    "panels": [
        {"id": 1, "type": "text", "title": "Note"},
        {
            "id": 2,
            "type": "stat",
            "title": "Top",
            "datasource": INFLUX,
            "interval": "5m",
            "maxDataPoints": 300,
            "targets": [
                target("A", "SELECT 1 WHERE $timeFilter", resultFormat="time_series"),
                target("B", "SELECT hidden", hide=True),
            ],
        },
        {"id": 3, "type": "row", "title": "Open row", "collapsed": False, "panels": []},
        {
            "id": 4,
            "type": "table",
            "title": "After the open row",
            "targets": [target("A", "SELECT 4", resultFormat="table")],
        },
        {
            "id": 5,
            "type": "row",
            "title": "Closed row",
            "collapsed": True,
            "panels": [
                {
                    "id": 6,
                    "type": "timeseries",
                    "title": "Inside",
                    "targets": [
                        target("A", "SELECT 6"),
                        target("B", "SELECT 6b", hide=False),
                        {"refId": "C", "datasource": {"type": "prometheus"}, "expr": "up"},
                    ],
                }
            ],
        },
    ],
    "templating": {
        "list": [
            {
                "name": "province",
                "type": "query",
                "datasource": INFLUX,
                "query": 'SHOW TAG VALUES WITH KEY = "province"',
                "refresh": 1,
            },
            {"name": "size", "type": "custom", "query": "small,large"},
            {
                "name": "ward",
                "type": "query",
                "query": {"query": "SHOW TAG VALUES WITH KEY = \"ward\" WHERE p = '$province'"},
                "refresh": 2,
            },
        ]
    },
}


def test_panel_queries_walk_rows_collapsed_ones_included_and_skip_hidden_targets() -> None:
    assert panel_queries(BOARD) == [
        PanelQuery(2, "Top", "stat", "A", "SELECT 1 WHERE $timeFilter", "time_series", "5m", 300),
        PanelQuery(4, "After the open row", "table", "A", "SELECT 4", "table"),
        PanelQuery(6, "Inside", "timeseries", "A", "SELECT 6", "time_series"),
        PanelQuery(6, "Inside", "timeseries", "B", "SELECT 6b", "time_series"),
    ]


def test_a_builder_mode_influx_target_is_refused() -> None:
    board = {"panels": [{"id": 9, "title": "Builder", "targets": [{"refId": "A", "tags": []}]}]}
    with pytest.raises(ValueError, match="panel 9 'Builder' target A: not a raw InfluxQL"):
        panel_queries(board)


def test_variable_queries_in_order_with_refresh() -> None:
    assert variable_queries(BOARD) == [
        VariableQuery("province", 'SHOW TAG VALUES WITH KEY = "province"', 1),
        VariableQuery("ward", "SHOW TAG VALUES WITH KEY = \"ward\" WHERE p = '$province'", 2),
    ]


# --- resolving variables ----------------------------------------------------------------------


class FakeInflux:
    """Answers variable queries from a table and records what it was asked."""

    def __init__(self, answers: Mapping[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, text: str) -> list[str]:
        self.asked.append(text)
        return list(self.answers[text])


def variable(name: str, query: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": "query", "datasource": INFLUX, "query": query, **extra}


def board_of(*variables: dict[str, Any]) -> dict[str, Any]:
    return {"panels": [], "templating": {"list": list(variables)}}


def test_variables_chain_in_order_and_take_the_first_value() -> None:
    influx = FakeInflux(
        {
            'SHOW TAG VALUES WITH KEY = "province"': ["40", "01"],
            "SHOW TAG VALUES WITH KEY = \"ward\" WHERE p = '40'": ["w2", "w1"],
        }
    )
    got = resolve_variables(BOARD, influx, start=START, end=END)
    assert got == {"province": "40", "size": "small", "ward": "w2"}
    assert influx.asked == [
        'SHOW TAG VALUES WITH KEY = "province"',
        "SHOW TAG VALUES WITH KEY = \"ward\" WHERE p = '40'",
    ]


def test_chosen_values_win_and_must_be_offered() -> None:
    influx = FakeInflux(
        {
            'SHOW TAG VALUES WITH KEY = "province"': ["40", "01"],
            "SHOW TAG VALUES WITH KEY = \"ward\" WHERE p = '01'": ["w9"],
        }
    )
    got = resolve_variables(
        BOARD, influx, start=START, end=END, chosen={"province": "01", "size": "large"}
    )
    assert got == {"province": "01", "size": "large", "ward": "w9"}
    with pytest.raises(ValueError, match=r"'province': chosen '79' is not offered"):
        resolve_variables(BOARD, influx, start=START, end=END, chosen={"province": "79"})
    with pytest.raises(ValueError, match="does not have"):
        resolve_variables(BOARD, influx, start=START, end=END, chosen={"nope": "x"})


def test_current_is_kept_when_offered_else_the_first_value() -> None:
    answers = {"Q": ["a", "b", "c"]}
    kept = board_of(variable("v", "Q", current={"text": "b", "value": "b"}))
    gone = board_of(variable("v", "Q", current={"text": "z", "value": "z"}))
    assert resolve_variables(kept, FakeInflux(answers), start=START, end=END) == {"v": "b"}
    assert resolve_variables(gone, FakeInflux(answers), start=START, end=END) == {"v": "a"}


def test_multi_and_all() -> None:
    answers = {"Q": ["a", "b", "c"]}
    influx = FakeInflux(answers)
    multi = variable("v", "Q", multi=True, includeAll=True, current={"value": ["c", "a", "x"]})
    every = variable("w", "Q", multi=True, includeAll=True, current={"value": ["$__all"]})
    fresh = variable("x", "Q", includeAll=True)
    custom_all = variable("y", "Q", includeAll=True, allValue=".*", current={"value": "$__all"})
    got = resolve_variables(board_of(multi, every, fresh, custom_all), influx, start=START, end=END)
    assert got == {"v": ["c", "a"], "w": ["a", "b", "c"], "x": ["a", "b", "c"], "y": ".*"}
    assert isinstance(got["y"], RawValue)
    assert run('"p" =~ /^$y$/ AND "q" =~ /^$w$/', **got) == '"p" =~ /^.*$/ AND "q" =~ /^(a|b|c)$/'
    chosen = resolve_variables(
        board_of(multi), influx, start=START, end=END, chosen={"v": ["b", "c"]}
    )
    assert chosen == {"v": ["b", "c"]}


def test_regex_filters_and_extracts_and_sort_orders() -> None:
    answers = {"Q": ["ioc_b", "x", "ioc_a", "ioc_a", "ioc_10", "ioc_9"]}
    filtered = variable("f", "Q", regex="ioc_.*")
    captured = variable("c", "Q", regex="/ioc_(.*)/", sort=1)
    named = variable("n", "Q", regex="/ioc_(?<value>\\d+)/", sort=3)
    desc = variable("d", "Q", regex="/ioc_(.*)/", sort=4)
    influx = FakeInflux(answers)
    board = board_of(filtered, captured, named, desc)
    got = resolve_variables(board, influx, start=START, end=END, chosen={"c": "b"})
    assert got == {"f": "ioc_b", "c": "b", "n": "9", "d": "10"}
    options = resolve_variables(
        board_of(variable("c", "Q", regex="/ioc_(.*)/", sort=1, multi=True, includeAll=True)),
        influx,
        start=START,
        end=END,
    )
    assert options == {"c": ["10", "9", "a", "b"]}


def test_custom_constant_textbox_and_interval_variables() -> None:
    board = board_of(
        {
            "name": "province",
            "type": "custom",
            "query": "Hà Nội : 01, Nghệ An : 40",
            "current": {"text": "Nghệ An", "value": "40"},
        },
        {"name": "fixed", "type": "constant", "query": "79"},
        {"name": "free", "type": "textbox", "query": "default"},
        {"name": "step", "type": "interval", "query": "1m,10m,1h", "auto": True},
        {"name": "q", "type": "query", "query": "SHOW X WHERE p = '$province' AND f = '$fixed'"},
    )
    influx = FakeInflux({"SHOW X WHERE p = '40' AND f = '79'": ["ok"]})
    got = resolve_variables(board, influx, start=START, end=END)
    assert got == {"province": "40", "fixed": "79", "free": "default", "step": "10m", "q": "ok"}
    chosen = resolve_variables(
        board, influx, start=START, end=END, chosen={"free": "typed", "step": "1h"}
    )
    assert (chosen["free"], chosen["step"]) == ("typed", "1h")
    with pytest.raises(ValueError, match="not offered"):
        resolve_variables(board, influx, start=START, end=END, chosen={"fixed": "01"})


def test_a_variable_query_with_a_typo_raises() -> None:
    board = board_of(variable("v", "SHOW TAG VALUES WITH KEY = \"w\" WHERE p = '$provnce'"))
    with pytest.raises(ValueError, match=r"\$provnce"):
        resolve_variables(board, FakeInflux({}), start=START, end=END)


# --- against the real InfluxDB ----------------------------------------------------------------


@pytest.mark.services
def test_a_tiny_board_runs_against_real_influxdb(own_database: Settings) -> None:
    t0 = datetime(2025, 11, 1, 0, 0, tzinfo=UTC)
    db = own_database.influx_db
    indicator = qualified(db, "derived", "indicator")

    def point(province: str, source: str, minute: int, value: float, level: str = "province"):
        tags = {"province": province, "source": source, "level": level}
        return Point("indicator", {"value": value}, time_ns(t0 + timedelta(minutes=minute)), tags)

    points = [
        point("01", "s1", 10, 1.0),
        point("01", "s1", 20, 2.0),
        point("01", "s2", 15, 5.0),
        point("40", "s3", 5, 7.0),
        point("79", "w1", 5, 9.0, level="ward"),  # not offered: the variable asks for provinces
    ]
    board = {
        "panels": [
            {
                "id": 1,
                "type": "row",
                "title": "Collapsed",
                "collapsed": True,
                "panels": [
                    {
                        "id": 2,
                        "type": "table",
                        "title": "Latest by source",
                        "targets": [
                            target(
                                "A",
                                f'SELECT last("value") FROM {indicator} WHERE '
                                '"province" = \'$province\' AND $timeFilter GROUP BY "source"',
                                resultFormat="table",
                            ),
                            target(
                                "B",
                                f'SELECT last("value") FROM {indicator} WHERE '
                                '"province" =~ /^$provinces$/ AND $timeFilter GROUP BY "province"',
                            ),
                        ],
                    }
                ],
            }
        ],
        "templating": {
            "list": [
                variable(
                    "province",
                    f'SHOW TAG VALUES FROM {indicator} WITH KEY = "province" '
                    "WHERE \"level\" = 'province'",
                ),
                variable(
                    "provinces",
                    f'SHOW TAG VALUES FROM {indicator} WITH KEY = "province" '
                    "WHERE \"level\" = 'province'",
                    multi=True,
                    includeAll=True,
                    current={"text": "All", "value": ["$__all"]},
                ),
                variable(
                    "source",
                    f'SHOW TAG VALUES FROM {indicator} WITH KEY = "source" '
                    "WHERE \"province\" = '$province'",
                ),
            ]
        },
    }
    with Store(own_database) as store:
        store.write(points, rp="derived")

        def latest(panel: PanelQuery, values: Mapping[str, Any], start: datetime, end: datetime):
            text = expand(
                panel.query,
                start=start,
                end=end,
                interval=interval_for(start, end, min_interval="1m"),
                variables=values,
            )
            assert "$" not in text.replace("$/", "")
            return {
                next(iter(s.tags.values())): [row["last"] for row in s.rows()]
                for s in store.query(text, epoch="ms")
            }

        def values_for(chosen: Mapping[str, str]) -> dict[str, str | list[str]]:
            return resolve_variables(
                board,
                lambda text: run_variable_query(store, text),
                start=t0,
                end=t0 + timedelta(hours=1),
                chosen=chosen,
            )

        by_source, by_province = panel_queries(board)
        values = values_for({})
        assert values == {"province": "01", "provinces": ["01", "40"], "source": "s1"}
        hour = (t0, t0 + timedelta(hours=1))
        assert latest(by_source, values, *hour) == {"s1": [2.0], "s2": [5.0]}
        assert latest(by_province, values, *hour) == {"01": [2.0], "40": [7.0]}
        # the time filter really filters: the first 12 minutes, and an hour before the points
        early = (t0, t0 + timedelta(minutes=12))
        assert latest(by_source, values, *early) == {"s1": [1.0]}
        assert latest(by_source, values, t0 - timedelta(hours=2), t0 - timedelta(hours=1)) == {}
        assert latest(by_province, values, t0 - timedelta(hours=2), t0 - timedelta(hours=1)) == {}

        other = values_for({"province": "40"})
        assert other == {"province": "40", "provinces": ["01", "40"], "source": "s3"}
        assert latest(by_source, other, *hour) == {"s3": [7.0]}
        with pytest.raises(ValueError, match="not offered"):
            values_for({"province": "79"})
