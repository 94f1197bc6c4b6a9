"""Line protocol encoding: exact escaping, refusals, and the no-injection property."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ioc.errors import LineProtocolError
from ioc.store import Point, encode_point, time_ns
from tests.store.lp_reference import ParsedPoint, parse, parse_line, split_lines

T = 1_700_000_000_000_000_000


@pytest.mark.parametrize(
    ("point", "line"),
    [
        (Point("air", {"pm25": 12.5}, T, {"ward": "00004"}), f"air,ward=00004 pm25=12.5 {T}"),
        (Point("a b,c", {"v": 1}, T), rf"a\ b\,c v=1i {T}"),
        (Point("m=x", {"v": True}, T), f"m=x v=true {T}"),
        (Point("m", {"k ,=": 0.0}, T, {"t ,=": "v ,="}), rf"m,t\ \,\==v\ \,\= k\ \,\==0.0 {T}"),
        (Point("m", {"s": 'say "hi" \\ bye'}, T), rf'm s="say \"hi\" \\ bye" {T}'),
        (Point("m", {"s": "two\nlines"}, T), f'm s="two\nlines" {T}'),
        (Point("m", {"b": 2, "a": -3}, T, {"z": "1", "y": "2"}), f"m,y=2,z=1 a=-3i,b=2i {T}"),
        (Point("m", {"f": 1e300}, -5), "m f=1e+300 -5"),
        (
            Point("phường", {"tên": "Hà Nội"}, T, {"xã": "Ba Đình"}),
            f'phường,xã=Ba\\ Đình tên="Hà Nội" {T}',
        ),
    ],
)
def test_encode_point_escapes_exactly_as_influxdb_expects(point: Point, line: str) -> None:
    assert encode_point(point) == line


@pytest.mark.parametrize(
    ("point", "message"),
    [
        (Point("m", {"v": 1}, T, {"t": "a\nb"}), r"tag value 'a\\nb' contains '\\n'"),
        (Point("m", {"v": 1}, T, {"t": "a\\"}), "tag value 'a\\\\\\\\' contains"),
        (Point("m", {"v": 1}, T, {"t": "a\rb"}), "contains '\\\\r'"),
        (Point("m", {"v": 1}, T, {"t": ""}), "tag value is empty"),
        (Point("m", {"v": 1}, T, {"": "x"}), "tag key is empty"),
        (Point("m\n", {"v": 1}, T), "measurement"),
        (Point("#m", {"v": 1}, T), "comment line"),
        (Point("", {"v": 1}, T), "measurement is empty"),
        (Point("m", {}, T), "has no fields"),
        (Point("m", {"time": 1}, T), "field key 'time' is reserved"),
        (Point("m", {"v": 1}, T, {"_field": "x"}), "tag key '_field' is reserved"),
        (Point("m", {"v": math.nan}, T), "not a finite number"),
        (Point("m", {"v": math.inf}, T), "not a finite number"),
        (Point("m", {"v": 2**63}, T), "outside the int64 range"),
        (Point("m", {"v": "\ud800"}, T), "not valid Unicode"),
        (Point("m", {"v": None}, T), "unsupported type NoneType"),  # type: ignore[dict-item]
        (Point("m", {"v": 1}, T, {"t": ["a"]}), r"tag value \['a'\] is not a string"),  # type: ignore[dict-item]
        (Point("m", {("k",): 1}, T), "field key .* is not a string"),  # type: ignore[dict-item]
        (Point(None, {"v": 1}, T), "measurement None is not a string"),  # type: ignore[arg-type]
        (Point("m", {"v": 1}, 2**63), "not an int64"),
        (Point("m", {"v": 1}, 1.5), "not an int64"),  # type: ignore[arg-type]
    ],
)
def test_values_line_protocol_cannot_carry_are_refused_with_a_reason(
    point: Point, message: str
) -> None:
    with pytest.raises(LineProtocolError, match=message):
        encode_point(point)


def _naive_encode(measurement: str, tags: dict[str, str], value: float, ts: int) -> str:
    """What many hand-written writers do: escape commas, equals and spaces, nothing else."""

    def esc(text: str) -> str:
        return re.sub(r"([,= ])", r"\\\1", text)

    tag_text = "".join(f",{esc(k)}={esc(v)}" for k, v in tags.items())
    return f"{esc(measurement)}{tag_text} value={value} {ts}"


NEWLINE_IN_TAG = "00004\nforged"


def test_newline_in_tag_breaks_a_naive_writer_but_not_ours() -> None:
    naive = _naive_encode("air", {"ward": NEWLINE_IN_TAG}, 1.0, T)
    # The naive text is cut into two lines: a broken first half, then a point forged by the tag.
    first, second = split_lines(naive)
    with pytest.raises(ValueError, match="missing fields"):
        parse_line(first)
    assert parse_line(second) == ParsedPoint("forged", {}, {"value": 1.0}, T)
    with pytest.raises(LineProtocolError, match="tag value"):
        encode_point(Point("air", {"value": 1.0}, T, {"ward": NEWLINE_IN_TAG}))


def test_time_ns_converts_aware_datetimes_and_refuses_naive_ones() -> None:
    moment = datetime(2025, 7, 1, 7, 0, 0, 123456, tzinfo=timezone(timedelta(hours=7)))
    assert time_ns(moment) == 1_751_328_000_123_456_000
    assert time_ns(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    with pytest.raises(LineProtocolError, match="no timezone"):
        time_ns(datetime(2025, 7, 1))  # noqa: DTZ001  (the naive datetime is the point)


# --- the property: whatever the text, one point in, the same one point out ----------------

_HOSTILE = ",= \"'\\\n\r\t#=_é😀"
names = st.one_of(
    st.text(alphabet=st.sampled_from(_HOSTILE + "ab"), max_size=8),
    st.text(max_size=8),
    st.sampled_from(["time", "_field", "_measurement", "#x", NEWLINE_IN_TAG]),
)
field_values = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from(_HOSTILE + "ab"), max_size=20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
)
points = st.builds(
    Point,
    measurement=names,
    fields=st.dictionaries(names, field_values, min_size=1, max_size=3),
    time_ns=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    tags=st.dictionaries(names, names, max_size=3),
)


def _refusable(name: str, kind: str) -> bool:
    """Whether a name must be refused: empty, control char, backslash, reserved, comment."""
    if not name or re.search(r"[\x00-\x1f\x7f\\]", name):
        return True
    if kind == "measurement":
        return name.startswith("#")
    return kind != "tag value" and name in ("time", "_measurement", "_field")


def _must_refuse(p: Point) -> bool:
    return (
        _refusable(p.measurement, "measurement")
        or any(_refusable(k, "tag key") or _refusable(v, "tag value") for k, v in p.tags.items())
        or any(_refusable(k, "field key") for k in p.fields)
    )


@settings(max_examples=1500, deadline=None)
@given(st.lists(points, min_size=1, max_size=4))
@example([Point("air", {"value": 1.0}, T, {"ward": NEWLINE_IN_TAG})])
@example([Point("air", {"value": 'x" y=1\nforged v=2'}, T, {"ward": "a b,c=d"})])
@example([Point("m", {"v": "ends with backslash\\"}, T, {"t": "x"})])
def test_no_value_can_create_another_point_measurement_or_tag(batch: list[Point]) -> None:
    encoded: list[Point] = []
    lines: list[str] = []
    for point in batch:
        if _must_refuse(point):
            with pytest.raises(LineProtocolError):
                encode_point(point)
            continue
        lines.append(encode_point(point))
        encoded.append(point)
    read_back = parse("\n".join(lines) + "\n")
    assert read_back == [
        ParsedPoint(p.measurement, dict(p.tags), dict(p.fields), p.time_ns) for p in encoded
    ]
