"""Feed live-ness ("sống", INDICATORS.md §5.1, §7) with hand-calculated expectations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest

from ioc.errors import FormulaInputError
from ioc.formulas.liveness import (
    Feed,
    FeedState,
    assess_feeds,
    feed_status,
    limit_microseconds,
    share_by_province,
    share_by_unit,
)

ICT = timezone(timedelta(hours=7))
NOW = datetime(2025, 11, 20, 12, 0, tzinfo=ICT)
HOUR = timedelta(hours=1)


def _feed(
    feed_id: str,
    last: datetime | None,
    *,
    unit: str = "so-y-te",
    province: str = "01",
    interval: timedelta = HOUR,
    registered: datetime | None = None,
) -> Feed:
    return Feed(feed_id, province, unit, interval, last, registered)


@pytest.mark.parametrize(
    ("age", "grace", "state"),
    [
        (timedelta(minutes=30), 1, FeedState.LIVE),
        (timedelta(minutes=60), 1, FeedState.LIVE),  # exactly at the limit: live
        (timedelta(minutes=60, microseconds=1), 1, FeedState.STALE),
        (timedelta(minutes=89), Decimal("1.5"), FeedState.LIVE),  # limit 90 min
        (timedelta(minutes=90), Decimal("1.5"), FeedState.LIVE),
        (timedelta(minutes=91), Decimal("1.5"), FeedState.STALE),
        (timedelta(minutes=119), 2, FeedState.LIVE),
        (timedelta(minutes=121), 2.0, FeedState.STALE),
        (timedelta(0), 1, FeedState.LIVE),
        (timedelta(seconds=-5), 1, FeedState.FUTURE_TIMESTAMP),
    ],
)
def test_feed_state(age: timedelta, grace: Decimal | int | float, state: FeedState) -> None:
    status = feed_status(_feed("f", NOW - age), NOW, grace=grace)
    assert status.state is state
    assert status.age == age


def test_stale_since_is_end_of_grace() -> None:
    # Daily feed ("before 17:00 daily", Sơn La §5.3), last record 3 days ago at 16:00, grace 1.5:
    # live until last + 36 h; stale since then.
    last = datetime(2025, 11, 17, 16, 0, tzinfo=ICT)
    status = feed_status(_feed("f", last, interval=timedelta(days=1)), NOW, grace=Decimal("1.5"))
    assert status.state is FeedState.STALE
    assert status.since == datetime(2025, 11, 19, 4, 0, tzinfo=ICT)
    assert status.live_until == status.since


def test_live_feed_has_no_since() -> None:
    status = feed_status(_feed("f", NOW - timedelta(minutes=10)), NOW, grace=1)
    assert status.since is None
    assert status.live_until == NOW + timedelta(minutes=50)


def test_never_reported_since_registration() -> None:
    # §7 Hà Nội: departments that had not opened their data — "not connected, and since when".
    registered = datetime(2025, 9, 1, tzinfo=ICT)
    status = feed_status(_feed("f", None, registered=registered), NOW, grace=1)
    assert status.state is FeedState.NEVER_REPORTED
    assert status.age is None
    assert status.since == registered


def test_age_across_time_zones() -> None:
    # 04:30 UTC = 11:30 ICT: 30 minutes before NOW, live with a 1 h interval.
    status = feed_status(_feed("f", datetime(2025, 11, 20, 4, 30, tzinfo=UTC)), NOW, grace=1)
    assert status.age == timedelta(minutes=30)
    assert status.state is FeedState.LIVE


def test_share_is_ratio_of_counts_not_mean_of_ratios() -> None:
    # Unit A: 1 of 1 live; unit B: 1 of 3 live. Province = (1 + 1) / (1 + 3) = 1/2 = 50.00 %,
    # not the mean of unit shares (1 + 1/3) / 2 = 66.67 %.
    feeds = [
        _feed("a1", NOW - timedelta(minutes=5), unit="A"),
        _feed("b1", NOW - timedelta(minutes=5), unit="B"),
        _feed("b2", NOW - timedelta(hours=5), unit="B"),
        _feed("b3", None, unit="B"),
    ]
    statuses = assess_feeds(feeds, NOW, grace=1)
    (province,) = share_by_province(statuses)
    assert (province.live, province.registered) == (2, 4)
    assert province.share == Fraction(1, 2)
    assert province.percent() == Decimal("50.00")
    units = {s.unit: s for s in share_by_unit(statuses)}
    assert (units["A"].live, units["A"].registered) == (1, 1)
    assert (units["B"].live, units["B"].stale, units["B"].never_reported) == (1, 1, 1)
    assert units["B"].percent() == Decimal("33.33")  # 1/3 = 33.333…


def test_counts_add_up_and_provinces_are_separate() -> None:
    feeds = [
        _feed("x1", NOW - timedelta(minutes=5), province="01"),
        _feed("x2", NOW + timedelta(minutes=5), province="01"),  # clock ahead
        _feed("y1", NOW - timedelta(days=2), province="96"),
    ]
    shares = {s.province: s for s in share_by_province(assess_feeds(feeds, NOW, grace=2))}
    hanoi = shares["01"]
    assert (hanoi.registered, hanoi.live, hanoi.future_timestamp) == (2, 1, 1)
    assert hanoi.live + hanoi.stale + hanoi.never_reported + hanoi.future_timestamp == 2
    assert (shares["96"].live, shares["96"].stale) == (0, 1)
    assert shares["96"].percent() == Decimal("0.00")


def test_two_thirds_rounds_half_up() -> None:
    # 2/3 = 66.666…% → 66.67
    feeds = [_feed(f"f{i}", NOW - timedelta(minutes=5)) for i in range(2)] + [_feed("g", None)]
    (share,) = share_by_province(assess_feeds(feeds, NOW, grace=1))
    assert share.percent() == Decimal("66.67")


def test_feed_registered_later_is_left_out() -> None:
    feeds = [
        _feed("old", NOW - timedelta(minutes=5)),
        _feed("new", None, registered=NOW + timedelta(days=1)),
    ]
    statuses = assess_feeds(feeds, NOW, grace=1)
    assert [s.feed_id for s in statuses] == ["old"]
    with pytest.raises(FormulaInputError, match=r"'new' is registered at .* after now"):
        feed_status(feeds[1], NOW, grace=1)


def test_no_feeds_no_share() -> None:
    assert share_by_province([]) == ()


@pytest.mark.parametrize(
    ("grace", "match"),
    [
        (Decimal("0.9"), "grace must be at least 1, got 0.9"),
        (float("nan"), "grace must be finite"),
        (True, "grace must be a number"),
    ],
)
def test_bad_grace_rejected(grace: Decimal | float, match: str) -> None:
    with pytest.raises(FormulaInputError, match=match):
        feed_status(_feed("f", NOW), NOW, grace=grace)


def test_naive_datetimes_rejected() -> None:
    naive = datetime(2025, 11, 20, 12, 0)  # noqa: DTZ001
    with pytest.raises(FormulaInputError, match="now must be timezone-aware"):
        feed_status(_feed("f", NOW), naive, grace=1)
    with pytest.raises(FormulaInputError, match="'f' last_record_at must be timezone-aware"):
        _feed("f", naive)


def test_bad_interval_and_duplicates_rejected() -> None:
    with pytest.raises(FormulaInputError, match="expected_interval must be positive"):
        _feed("f", NOW, interval=timedelta(0))
    with pytest.raises(FormulaInputError, match="'f' is registered twice"):
        assess_feeds([_feed("f", NOW), _feed("f", NOW)], NOW, grace=1)


@pytest.mark.parametrize(
    ("interval", "grace", "limit_us"),
    [
        (HOUR, 2, 7_200_000_000),
        (timedelta(minutes=5), 1.5, 450_000_000),
        (timedelta(microseconds=3), Decimal("1.5"), 4),  # 4.5 µs: the last live whole µs is 4
        (timedelta(seconds=1), 1.1, 1_100_000),  # 1.1 as written, not the binary float above it
    ],
)
def test_limit_is_the_largest_live_age(
    interval: timedelta, grace: Decimal | int | float, limit_us: int
) -> None:
    assert limit_microseconds(interval, grace=grace) == limit_us
    at_limit = _feed("f", NOW - timedelta(microseconds=limit_us), interval=interval)
    beyond = _feed("f", NOW - timedelta(microseconds=limit_us + 1), interval=interval)
    assert feed_status(at_limit, NOW, grace=grace).state is FeedState.LIVE
    assert feed_status(beyond, NOW, grace=grace).state is FeedState.STALE


def test_limit_refuses_what_feed_status_refuses() -> None:
    with pytest.raises(FormulaInputError, match="positive"):
        limit_microseconds(timedelta(0), grace=2)
    with pytest.raises(FormulaInputError, match="at least 1"):
        limit_microseconds(HOUR, grace=0.5)
