"""The feed listing's fast paths against their references (issue 16).

``feed_entry`` judges every source with a live limit computed once per expected interval; the
reference is :func:`ioc.formulas.liveness.feed_status` with Fractions, as the listing used it
before. ``rfc3339`` writes text with ``time.gmtime``; the reference is a UTC datetime's
``strftime``. Both are compared value for value over generated inputs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from ioc.api.data import LIVENESS_GRACE, feed_entry, rfc3339, source_fields
from ioc.catalog import Source
from ioc.formulas import liveness

NS = 10**9
NOW_NS = 1_764_950_400 * NS + 123_456_789  # 2025-12-05T16:00:00.123456789Z


def _reference_rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns // NS, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _reference_entry(
    source: Source, seen: tuple[int, int | None] | None, now: datetime
) -> dict[str, Any]:
    """What the listing answered before issue 16: a Feed judged by feed_status."""
    registered = None
    if source.registered:
        registered = datetime.fromisoformat(source.registered)
        if registered.tzinfo is None:
            registered = registered.replace(tzinfo=UTC)
    last = None if seen is None else datetime.fromtimestamp(seen[0] / NS, tz=UTC)
    feed = liveness.Feed(
        feed_id=source.id,
        province=source.province,
        unit=source.ward or source.province,
        expected_interval=timedelta(seconds=source.expected_interval_s),
        last_record_at=last,
        registered_at=registered if registered and registered <= now else None,
    )
    status = liveness.feed_status(feed, now, grace=LIVENESS_GRACE)
    return {
        **source_fields(source),
        "last_record": None if seen is None else _reference_rfc3339(seen[0]),
        "last_received": None
        if seen is None or seen[1] is None
        else _reference_rfc3339(seen[1] * 1_000_000),
        "age_s": None if status.age is None else int(status.age.total_seconds()),
        "state": status.state.value,
        "since": None if status.since is None else _seconds(status.since),
    }


def _source(interval_s: int, registered: str | None) -> Source:
    return Source(
        id="01-feed-test",
        kind="service_feed",
        province="01",
        ward=None,
        name="a test feed",
        expected_interval_s=interval_s,
        department="so-test",
        station=None,
        url=None,
        device_refs=(),
        registered=registered,
    )


@given(ns=st.integers(min_value=-62_135_596_800 * NS, max_value=253_402_300_799 * NS))
@example(ns=0)
@example(ns=-1)  # the second before the epoch, not the epoch
@example(ns=NOW_NS)
def test_rfc3339_writes_what_a_datetime_writes(ns: int) -> None:
    assert rfc3339(ns) == _reference_rfc3339(ns)


@given(
    interval_s=st.sampled_from([1, 7, 60, 300, 900, 3600, 86_400, 604_800])
    | st.integers(min_value=1, max_value=10**7),
    age_ns=st.none()
    | st.integers(min_value=-10 * 86_400 * NS, max_value=30 * 86_400 * NS)
    | st.sampled_from([0, 120 * NS, 120 * NS + 999, 120 * NS + 1000, 7200 * NS, 7200 * NS + 1]),
    received_ms=st.none() | st.integers(min_value=0, max_value=2 * 10**12),
    registered_s=st.none() | st.integers(min_value=-40 * 86_400, max_value=40 * 86_400),
    naive=st.booleans(),
)
def test_feed_entry_answers_what_feed_status_answers(
    interval_s: int,
    age_ns: int | None,
    received_ms: int | None,
    registered_s: int | None,
    naive: bool,
) -> None:
    now = datetime.fromtimestamp(NOW_NS / NS, tz=UTC)
    registered = None
    if registered_s is not None:  # before or after now, with or without an offset
        moment = now + timedelta(seconds=registered_s)
        registered = (moment.replace(tzinfo=None) if naive else moment).isoformat()
    source = _source(interval_s, registered)
    seen = None if age_ns is None else (NOW_NS - age_ns, received_ms)
    limits = liveness.LiveLimits(LIVENESS_GRACE)
    first = feed_entry(source, seen, now, limits)
    assert first == _reference_entry(source, seen, now)
    assert feed_entry(source, seen, now, limits) == first  # the limit kept by `limits`


def test_the_states_at_their_edges() -> None:
    """An hourly feed with grace 2: live up to 7,200 s old, stale beyond, since = last + limit."""
    now = datetime.fromtimestamp(NOW_NS / NS, tz=UTC)
    source = _source(3600, "2025-01-01T00:00:00+07:00")

    def state(age_ns: int | None) -> tuple[str, str | None]:
        seen = None if age_ns is None else (NOW_NS - age_ns, None)
        entry = feed_entry(source, seen, now, liveness.LiveLimits(LIVENESS_GRACE))
        return entry["state"], entry["since"]

    assert state(7200 * NS) == ("live", None)
    assert state(7200 * NS + 1000) == ("stale", "2025-12-05T16:00:00Z")
    assert state(-NS) == ("future_timestamp", None)
    assert state(None) == ("never_reported", "2024-12-31T17:00:00Z")
