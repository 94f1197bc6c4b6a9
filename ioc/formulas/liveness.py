"""Data "live-ness" ("sống" of "đúng, đủ, sạch, sống") per feed, unit and province.

Source: MoST document 1709/BKHCN-CĐSQG (21 May 2025) asks that provincial IOCs run "from data"
that is "đúng, đủ, sạch, sống"; INDICATORS.md §5.1 defines "sống" as continuously updated, not
stale, and proposes the check "age of latest record against the expected update frequency" [D].
§7 asks to show which departments' feeds are not connected or not live, and since when, and a
"data fully updated" indicator (Cà Mau).

A feed is ``live`` if ``now − last_record_at <= expected_interval × grace``, ``stale`` otherwise,
``never_reported`` if it has no record. The share of live feeds of a unit or a province is
``count live / count registered`` — a ratio of counts over all its feeds, never a mean of unit
shares (DESIGN.md "Roll-ups") — and the counts are kept beside it.

Decisions where the text is silent ([U]: 1709's update frequencies are not available, Open item 3):

* The grace factor has no default: the caller chooses it per deployment; it must be ≥ 1, since a
  feed cannot be late before its own interval has passed. Age exactly at the limit is live.
* A last record stamped after ``now`` is ``future_timestamp``: not counted as live (the clock of
  the source is wrong, so its freshness cannot be judged) but counted as registered.
* ``since`` is when the feed stopped being live (last record + interval × grace) for a stale feed,
  and its registration time (if known) for a feed that never reported.
* A feed registered after ``now`` was not registered yet: :func:`assess_feeds` leaves it out.
* All datetimes must be timezone-aware; naive ones are rejected.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from fractions import Fraction

from ioc.errors import FormulaInputError

__all__ = [
    "Feed",
    "FeedState",
    "FeedStatus",
    "LiveLimits",
    "LivenessShare",
    "assess_feeds",
    "feed_status",
    "limit_microseconds",
    "share_by_province",
    "share_by_unit",
    "share_of",
]

_MICROSECOND = timedelta(microseconds=1)


class FeedState(Enum):
    """Freshness of one feed at a moment."""

    LIVE = "live"
    STALE = "stale"
    NEVER_REPORTED = "never_reported"
    FUTURE_TIMESTAMP = "future_timestamp"


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise FormulaInputError(f"{what} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise FormulaInputError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value


@dataclass(frozen=True, slots=True)
class Feed:
    """A registered feed: where it belongs, how often it should report, when it last did."""

    feed_id: str
    province: str
    unit: str
    expected_interval: timedelta
    last_record_at: datetime | None = None
    registered_at: datetime | None = None

    def __post_init__(self) -> None:
        """Reject a non-positive interval and naive datetimes."""
        if self.expected_interval <= timedelta(0):
            raise FormulaInputError(
                f"feed {self.feed_id!r}: expected_interval must be positive, "
                f"got {self.expected_interval}"
            )
        if self.last_record_at is not None:
            _aware(self.last_record_at, f"feed {self.feed_id!r} last_record_at")
        if self.registered_at is not None:
            _aware(self.registered_at, f"feed {self.feed_id!r} registered_at")


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """State of one feed at ``now``; ``age`` is None if it never reported."""

    feed_id: str
    province: str
    unit: str
    state: FeedState
    age: timedelta | None
    live_until: datetime | None
    since: datetime | None


@dataclass(frozen=True, slots=True)
class LivenessShare:
    """Live feeds of a unit (or of a whole province when ``unit`` is None), with the counts."""

    province: str
    unit: str | None
    registered: int
    live: int
    stale: int
    never_reported: int
    future_timestamp: int

    @property
    def share(self) -> Fraction | None:
        """``live / registered`` exactly; None when no feed is registered."""
        return Fraction(self.live, self.registered) if self.registered else None

    def percent(self) -> Decimal | None:
        """The share in percent, rounded half-up to 2 decimals."""
        share = self.share
        if share is None:
            return None
        cents = math.floor(share * 10_000 + Fraction(1, 2))
        return Decimal(cents).scaleb(-2)


def _grace(grace: Decimal | int | float) -> Fraction:
    if isinstance(grace, bool):
        raise FormulaInputError(f"grace must be a number, got {grace!r}")
    if isinstance(grace, float):
        if not math.isfinite(grace):
            raise FormulaInputError(f"grace must be finite, got {grace!r}")
        value = Fraction(repr(grace))
    elif isinstance(grace, Decimal):
        if not grace.is_finite():
            raise FormulaInputError(f"grace must be finite, got {grace!r}")
        value = Fraction(grace)
    else:
        value = Fraction(grace)
    if value < 1:
        raise FormulaInputError(f"grace must be at least 1, got {grace}")
    return value


def limit_microseconds(expected_interval: timedelta, *, grace: Decimal | int | float) -> int:
    """The largest age in whole microseconds that is still live: floor(interval × grace).

    Ages are compared in whole microseconds, so ``age_us <= limit_us`` (a Fraction) and
    ``age_us <= floor(limit_us)`` agree; the engine computes this once per interval rather than
    once per feed and period (issue 16)."""
    if expected_interval <= timedelta(0):
        raise FormulaInputError(f"expected_interval must be positive, got {expected_interval}")
    return math.floor(Fraction(expected_interval // _MICROSECOND) * _grace(grace))


class LiveLimits:
    """:func:`feed_status`'s verdict for many feeds at one grace, without a Fraction per feed.

    The live limit (:func:`limit_microseconds`) is computed once per expected interval and
    kept; a record ``age`` old is then judged with integers. The engine's liveness values and
    the API's feed listing judge through this, and their equivalence tests hold it equal to
    :func:`feed_status` (tests/engine/test_equivalence.py, tests/api/test_feed_entry.py)."""

    def __init__(self, grace: Decimal | int | float) -> None:
        self.grace = grace
        self._limits: dict[int, int] = {}

    def limit_us(self, expected_interval_s: int) -> int:
        """The largest live age in whole microseconds for this expected interval."""
        limit = self._limits.get(expected_interval_s)
        if limit is None:
            limit = limit_microseconds(timedelta(seconds=expected_interval_s), grace=self.grace)
            self._limits[expected_interval_s] = limit
        return limit

    def state(self, age: timedelta, expected_interval_s: int) -> FeedState:
        """Live, stale or future_timestamp for a last record ``age`` old."""
        if age < timedelta(0):
            return FeedState.FUTURE_TIMESTAMP
        if age // _MICROSECOND <= self.limit_us(expected_interval_s):
            return FeedState.LIVE
        return FeedState.STALE


def feed_status(feed: Feed, now: datetime, *, grace: Decimal | int | float) -> FeedStatus:
    """Whether ``feed`` is live at ``now``: age of its last record ≤ interval × grace."""
    _aware(now, "now")
    factor = _grace(grace)
    if feed.registered_at is not None and feed.registered_at > now:
        raise FormulaInputError(
            f"feed {feed.feed_id!r} is registered at {feed.registered_at.isoformat()}, "
            f"after now {now.isoformat()}"
        )
    if feed.last_record_at is None:
        return FeedStatus(
            feed.feed_id,
            feed.province,
            feed.unit,
            FeedState.NEVER_REPORTED,
            age=None,
            live_until=None,
            since=feed.registered_at,
        )
    age = now - feed.last_record_at
    limit_us = Fraction(feed.expected_interval // _MICROSECOND) * factor
    live_until = feed.last_record_at + timedelta(microseconds=math.floor(limit_us))
    if age < timedelta(0):
        state = FeedState.FUTURE_TIMESTAMP
    elif age // _MICROSECOND <= limit_us:
        state = FeedState.LIVE
    else:
        state = FeedState.STALE
    return FeedStatus(
        feed.feed_id,
        feed.province,
        feed.unit,
        state,
        age=age,
        live_until=live_until,
        since=live_until if state is FeedState.STALE else None,
    )


def assess_feeds(
    feeds: Iterable[Feed], now: datetime, *, grace: Decimal | int | float
) -> tuple[FeedStatus, ...]:
    """:func:`feed_status` of every feed registered at ``now`` (later registrations left out)."""
    _aware(now, "now")
    seen: set[str] = set()
    statuses = []
    for feed in feeds:
        if feed.feed_id in seen:
            raise FormulaInputError(f"feed id {feed.feed_id!r} is registered twice")
        seen.add(feed.feed_id)
        if feed.registered_at is not None and feed.registered_at > now:
            continue
        statuses.append(feed_status(feed, now, grace=grace))
    return tuple(statuses)


def share_of(statuses: Iterable[FeedStatus], province: str, unit: str | None) -> LivenessShare:
    """Counts and live share of the feeds of one unit, or of a province when ``unit`` is None."""
    selected = [s for s in statuses if s.province == province and (unit is None or s.unit == unit)]
    counts = dict.fromkeys(FeedState, 0)
    for status in selected:
        counts[status.state] += 1
    return LivenessShare(
        province=province,
        unit=unit,
        registered=len(selected),
        live=counts[FeedState.LIVE],
        stale=counts[FeedState.STALE],
        never_reported=counts[FeedState.NEVER_REPORTED],
        future_timestamp=counts[FeedState.FUTURE_TIMESTAMP],
    )


def share_by_unit(statuses: Iterable[FeedStatus]) -> tuple[LivenessShare, ...]:
    """:func:`share_of` for every (province, unit), sorted."""
    items = tuple(statuses)
    keys = sorted({(s.province, s.unit) for s in items})
    return tuple(share_of(items, province, unit) for province, unit in keys)


def share_by_province(statuses: Iterable[FeedStatus]) -> tuple[LivenessShare, ...]:
    """:func:`share_of` for every province (Σ live / Σ registered over its feeds), sorted."""
    items = tuple(statuses)
    return tuple(
        share_of(items, province, None) for province in sorted({s.province for s in items})
    )
