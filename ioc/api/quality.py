"""Per-feed data quality (issue 17, item 5): how good each registered feed's data was over a
window, worst first, from what is stored.

The unit is one reading, a metric value at a time (ingest/validate.py), counted four ways:

* ``accepted``: readings stored / readings received, where received = stored + the source's
  dead letters in the window (every rejected reading is one dead letter, with its reason);
* ``in_range``: 100 − the share of received readings rejected as ``out_of_range`` (outside the
  catalog's min/max or not finite);
* ``complete``: of the records stored (one per time), the share of *expected* fields present.
  Expected fields are the metrics the catalog's indicators read from the source's kind (VN_AQI
  needs the six pollutants, the 766 ratios the four dossier counts...): what the IOC needs from
  the feed, not every metric the kind allows [D];
* ``on_time``: of the source's expected-interval slots in the window (aligned to the interval,
  the last complete ``since // interval``) from its registration on, the share holding at least
  one record. A slot that starts before the registration date is not owed (issue 17, item 5);
  a source registered after the window's last slot owes none (``on_time`` null).

``score`` is the lowest of the four (the feed's weakest aspect); a source that sent nothing in
the window scores 0 (``on_time`` 0, the others null). Shares are percentages, two decimals,
half-up, like the indicators. Dead letters without a registered source (unknown topics, bad
JSON) belong to no feed and are not counted here (``GET /dead-letters`` lists them).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from ioc.api.data import rfc3339, source_fields
from ioc.catalog import Catalog, Method, Source
from ioc.engine.formulas import FORMULAS
from ioc.engine.rollup import ratio_pct
from ioc.store import Store, time_ns
from ioc.store.influxql import dead_letter_reasons, field_counts, filled_slots

__all__ = ["QUALITY_ASPECTS", "expected_fields", "feed_quality"]

_NS = 1_000_000_000
QUALITY_ASPECTS = ("accepted", "complete", "in_range", "on_time")


def expected_fields(catalog: Catalog, kind: str) -> tuple[str, ...]:
    """The metrics the catalog's indicators read from ``kind`` (all its metrics if none)."""
    allowed = catalog.kind(kind).metrics
    wanted: dict[str, None] = {}
    for indicator in catalog.indicators.values():
        if indicator.kind != kind:
            continue
        formula = FORMULAS.get(indicator.formula or "")
        if indicator.method is Method.FORMULA and formula is not None:
            names: Iterable[str] = (metric for _, metric in formula.reads)
        else:
            names = indicator.metrics
        for name in names:
            if name in allowed:
                wanted[name] = None
    return tuple(wanted) or tuple(allowed)


def feed_quality(
    catalog: Catalog,
    store: Store,
    db: str,
    sources: Sequence[Source],
    *,
    since_s: int,
    now_ns: int,
    province: str | None,
) -> list[dict[str, Any]]:
    """Quality of ``sources`` over the ``since_s`` seconds before now_ns, worst first."""
    start, end = now_ns - since_s * _NS, now_ns
    window = {"start": rfc3339(start), "end": rfc3339(end)}
    wanted = {s.id for s in sources}
    counts: dict[str, dict[str, float]] = {}
    filled: Counter[str] = Counter()
    slots: dict[str, int] = {}
    by_kind: dict[str, list[Source]] = defaultdict(list)
    for source in sources:
        by_kind[source.kind].append(source)
    for kind, members in sorted(by_kind.items()):
        measurement = catalog.kind(kind).measurement
        metrics = catalog.kind(kind).metrics
        for series in store.query(field_counts(db, measurement, metrics), window):
            source_id = series.tags.get("source", "")
            if source_id in wanted and series.values:
                row = series.values[0]
                counts[source_id] = {
                    name: float(row[i] or 0) for i, name in enumerate(series.columns) if i
                }
        for interval_s in sorted({max(1, s.expected_interval_s) for s in members}):
            n = max(1, since_s // interval_s)
            step = interval_s * _NS
            slot_end = now_ns // step * step
            first_slot = slot_end - n * step
            params = {"start": rfc3339(first_slot), "end": rfc3339(slot_end)}
            owed: dict[str, int] = {}  # source -> start of its first slot owed in the window
            for s in members:
                if max(1, s.expected_interval_s) == interval_s:
                    owed[s.id] = first_owed_slot(s, first_slot, step)
                    slots[s.id] = max(0, (slot_end - owed[s.id]) // step)
            text = filled_slots(db, measurement, interval_s=interval_s)
            for series in store.query(text, params):
                source_id = series.tags.get("source", "")
                if source_id in owed and source_id in wanted:
                    filled[source_id] += sum(
                        1 for row in series.values if row[1] and int(row[0]) >= owed[source_id]
                    )
    params = dict(window, **({"province": province} if province else {}))
    rejected, out_of_range = _rejections(store, db, params, wanted, province=province)
    items = [
        _item(
            catalog,
            source,
            counts.get(source.id),
            rejected[source.id],
            out_of_range[source.id],
            (filled[source.id], slots[source.id]),
        )
        for source in sources
    ]
    items.sort(key=lambda i: (i["score"], i["source"]))
    return items


def registered_ns(source: Source) -> int | None:
    """The start of a source's registration date (00:00 UTC, as ``GET /feeds`` reads it)."""
    if not source.registered:
        return None
    moment = datetime.fromisoformat(source.registered)
    return time_ns(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def first_owed_slot(source: Source, first_slot: int, step: int) -> int:
    """The start of the first slot of the window the source owes a record for.

    A source owes nothing before it was registered: its first slot is the first one that starts
    at or after its registration (the window's first slot for a source registered earlier or
    with no date). Counting the slots before it as missed would grade a feed added yesterday as
    late for the whole window (issue 17, item 5).
    """
    registered = registered_ns(source)
    if registered is None or registered <= first_slot:
        return first_slot
    return first_slot + -(-(registered - first_slot) // step) * step


def _item(  # noqa: PLR0917 - the figures of one source
    catalog: Catalog,
    source: Source,
    counts: dict[str, float] | None,
    rejected: int,
    out_of_range: int,
    slots: tuple[int, int],
) -> dict[str, Any]:
    expected = expected_fields(catalog, source.kind)
    got = counts or {}
    records = int(got.get("records", 0.0))
    stored = int(sum(got.get(m, 0.0) for m in catalog.kind(source.kind).metrics))
    present = int(sum(got.get(m, 0.0) for m in expected))
    received = stored + rejected
    shares: dict[str, float | None] = {
        "accepted": ratio_pct(stored, received),
        "complete": ratio_pct(present, records * len(expected)),
        "in_range": ratio_pct(received - out_of_range, received),
        "on_time": ratio_pct(slots[0], slots[1]),
    }
    known = [v for v in shares.values() if v is not None]
    return {
        **source_fields(source),
        "score": min(known) if known else 0.0,
        **shares,
        "records": records,
        "readings_received": received,
        "readings_stored": stored,
        "rejected": rejected,
        "out_of_range": out_of_range,
        "expected_fields": list(expected),
        "slots_filled": slots[0],
        "slots_expected": slots[1],
    }


def _rejections(
    store: Store, db: str, params: dict[str, str], wanted: set[str], *, province: str | None
) -> tuple[Counter[str], Counter[str]]:
    """Dead letters per wanted source in the window: all of them, and those out of range."""
    rejected: Counter[str] = Counter()
    out_of_range: Counter[str] = Counter()
    for series in store.query(dead_letter_reasons(db, province=province is not None), params):
        for _, source_id, reason in series.values:
            if source_id in wanted:
                rejected[source_id] += 1
                if reason == "out_of_range":
                    out_of_range[source_id] += 1
    return rejected, out_of_range
