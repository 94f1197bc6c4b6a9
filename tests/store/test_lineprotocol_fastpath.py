"""``encode_point``'s fast paths (cached series key, cached field keys, plain float/int/bool
values) write exactly the bytes of the encoder without them, and refuse exactly what it refuses.

``_reference_encode`` is ``encode_point`` as it was before the fast paths: every name escaped
and checked through ``escape_measurement``/``escape_key``, every value through
``format_field_value``. Each point is encoded twice, so the second encoding meets warm caches.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import ioc.store.lineprotocol as lp
from ioc.errors import LineProtocolError
from ioc.store import Point, encode_point
from ioc.store.lineprotocol import escape_key, escape_measurement, format_field_value

T = 1_700_000_000_000_000_000


def _reference_encode(point: Point) -> str:
    if not point.fields:
        raise LineProtocolError(f"point of measurement {point.measurement!r} has no fields")
    ts = point.time_ns
    if isinstance(ts, bool) or not isinstance(ts, int) or not -(2**63) <= ts <= 2**63 - 1:
        raise LineProtocolError(f"timestamp {ts!r} is not an int64 of nanoseconds")
    parts = [escape_measurement(point.measurement)]
    for key in sorted(point.tags):
        parts.append(f"{escape_key('tag key', key)}={escape_key('tag value', point.tags[key])}")
    head = ",".join(parts)
    body = ",".join(
        f"{escape_key('field key', key)}={format_field_value(key, point.fields[key])}"
        for key in sorted(point.fields)
    )
    return f"{head} {body} {ts}"


def _outcome(encode: Callable[[Point], str], point: Point) -> tuple[str, str]:
    """The line, or the refusal's type and message (a TypeError, e.g. unsortable keys, too)."""
    try:
        return ("line", encode(point))
    except (LineProtocolError, TypeError) as error:
        return (type(error).__name__, str(error))


def _same(point: Point) -> None:
    expected = _outcome(_reference_encode, point)
    assert _outcome(encode_point, point) == expected  # caches possibly cold
    assert _outcome(encode_point, point) == expected  # caches warm


class _Loud(float):
    """A float subclass with its own repr: the fast path must leave it to format_field_value."""

    def __repr__(self) -> str:
        return "loud"


class _Level(enum.IntEnum):
    HIGH = 3


# --- generated points ---------------------------------------------------------------------------

NAMES = st.one_of(
    st.sampled_from(
        [
            "air",
            "province",
            "source",
            "ward",
            "pm25",
            "received_ms",
            "a b",
            "a,b",
            "a=b",
            'a"b',
            "a\\b",
            "trailing\\",
            "new\nline",
            "tab\there",
            "cr\r",
            "\x7f",
            "",
            " ",
            "#comment",
            "time",
            "_measurement",
            "_field",
            "phường",
            "Hà Nội",
            "lone\ud800surrogate",
            "x" * 300,
        ]
    ),
    st.text(max_size=8),
    st.text(st.characters(codec="utf-8"), max_size=8),
)

# Names that are not strings reach the encoder only through a bug; they must still be refused
# with the same error (or TypeError, e.g. unsortable or unhashable) as before.
ODD_NAMES = st.sampled_from([1, 1.0, True, None, b"air", ("a",), ["a"]])

FIELD_VALUES = st.one_of(
    st.floats(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [0.0, -0.0, 1e308, -1e308, 5e-324, float("inf"), float("-inf"), float("nan"), 1e16, 0.1]
    ),
    st.integers(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 0, -1]),
    st.booleans(),
    st.text(max_size=10),
    st.sampled_from(['say "hi"', "back\\slash", "two\nlines", "lone\udc80", ""]),
    st.sampled_from([None, [1.0], b"1", _Loud(1.5), _Level.HIGH, 1j]),
)

TIMES: st.SearchStrategy[Any] = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([T, 0, -1, 2**63 - 1, 2**63, -(2**63) - 1, True, 1.0, None]),
)


def _mappings(keys: st.SearchStrategy[Any], values: st.SearchStrategy[Any]) -> Any:
    return st.dictionaries(keys, values, max_size=4)


@st.composite
def points(draw: st.DrawFn) -> Point:
    odd = draw(st.integers(0, 9)) == 0
    names: st.SearchStrategy[Any] = st.one_of(NAMES, ODD_NAMES) if odd else NAMES
    measurement = draw(names)
    tags = draw(_mappings(names.filter(_hashable), names))
    fields = draw(_mappings(names.filter(_hashable), FIELD_VALUES))
    return Point(measurement, fields, draw(TIMES), tags)


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(points())
@example(Point("air", {"on": True, "n": 1, "f": 1.0}, T, {"source": "s"}))
@example(Point("air", {"z": -0.0, "big": 1e308, "inf": float("inf")}, T))
@example(Point("air", {"nan": float("nan")}, T))
@example(Point("air", {"i": 2**63}, T))
@example(Point("air", {"loud": _Loud(2.0), "level": _Level.HIGH}, T))
@example(Point("air", {"s": "lone\ud800"}, T))
@example(Point("air", {"v": 1.0}, T, {"t": ["unhashable"]}))  # type: ignore[dict-item]
@example(Point("air", {"v": 1.0}, T, {"b": "1", 2: "x"}))  # type: ignore[dict-item]
@example(Point(["m"], {"v": 1.0}, T))  # type: ignore[arg-type]
@example(Point("air", {"v": 1.0}, T, {"a\\": "x"}))
@example(Point("air", {"time": 1.0}, T))
def test_fast_path_writes_what_the_reference_writes(point: Point) -> None:
    _same(point)


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["province", "source", "ward"]), NAMES, min_size=1),
    st.dictionaries(st.sampled_from(["province", "source", "ward"]), NAMES, min_size=1),
)
def test_series_cache_keys_on_every_tag_value(
    first: dict[str, str], second: dict[str, str]
) -> None:
    # The same measurement with another tag set must never get the first one's cached text.
    for tags in (first, second, first, second):
        _same(Point("air", {"pm25": 1.5, "received_ms": 1}, T, tags))


def test_tag_sets_differing_in_one_value_give_their_own_lines() -> None:
    lines = [
        encode_point(Point("air", {"pm25": 1.0}, T, {"province": "01", "source": s, "ward": w}))
        for s in ("a", "b")
        for w in ("00070", "00071")
    ]
    assert lines == [
        f"air,province=01,source=a,ward=00070 pm25=1.0 {T}",
        f"air,province=01,source=a,ward=00071 pm25=1.0 {T}",
        f"air,province=01,source=b,ward=00070 pm25=1.0 {T}",
        f"air,province=01,source=b,ward=00071 pm25=1.0 {T}",
    ]


def test_tag_order_does_not_matter() -> None:
    one = Point("air", {"v": 1.0}, T, {"source": "s", "province": "01", "ward": "w"})
    other = Point("air", {"v": 1.0}, T, {"ward": "w", "province": "01", "source": "s"})
    assert encode_point(one) == encode_point(other) == _reference_encode(one)


def test_refused_names_are_not_cached() -> None:
    bad = Point("air", {"v": 1.0}, T, {"source": "new\nline"})
    for _ in range(2):
        with pytest.raises(LineProtocolError, match="control character"):
            encode_point(bad)
    with pytest.raises(LineProtocolError, match="reserved"):
        encode_point(Point("air", {"time": 1.0}, T))
    assert "time" not in lp._field_keys


def test_field_key_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lp, "_FIELD_KEYS_MAX", 50)
    for n in range(400):
        point = Point("air", {f"k{n}": 1.0, "v": n}, T, {"source": f"s{n}"})
        _same(point)
        assert len(lp._field_keys) <= 50


def test_series_cache_is_bounded() -> None:
    maxsize = lp._cached_series_key.cache_info().maxsize
    assert maxsize is not None
    assert 0 < maxsize <= 100_000
