"""The coverage of an indicator value, counted by kind of unit and said in words (issue 17).

The engine writes, beside ``coverage``/``expected`` (units one level down), how many places of
each kind reported and were expected (ioc/engine/rollup.py, docs/catalog.md): communes and wards,
the province's departments, provinces, and sources. The API shows them as one object, so that
"130 of 130 communes and wards" in a provincial report is the API's own sentence::

    {"provinces": null,
     "wards": {"reporting": 130, "expected": 130},
     "departments": {"reporting": 2, "expected": 2},
     "sources": {"reporting": 135, "expected": 135},
     "text": "130 of 130 communes and wards; 2 of 2 departments (135 of 135 sources)",
     "text_vi": "130/130 xã, phường; 2/2 sở, ban, ngành (135/135 nguồn)"}

For ``systems_up`` the sources are the systems and reporting means up: "3 of 4 systems up
(1 of 1 department)".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["COUNTED_SOURCES", "UNIT_KINDS", "coverage_detail"]

UNIT_KINDS: Mapping[str, tuple[str, str, str]] = {
    "provinces": ("province", "provinces", "tỉnh, thành phố"),
    "wards": ("commune or ward", "communes and wards", "xã, phường"),
    "departments": ("department", "departments", "sở, ban, ngành"),
    "sources": ("source", "sources", "nguồn"),
}
"""Kind of unit -> (English singular, English plural, Vietnamese)."""

_FIELDS = {
    "provinces": ("provinces_reporting", "provinces_expected"),
    "wards": ("wards_reporting", "wards_expected"),
    "departments": ("departments_reporting", "departments_expected"),
    "sources": ("sources", "sources_expected"),
}
_KINDS_AT = {
    "ward": (),
    "province": ("wards", "departments"),
    "nation": ("provinces", "wards", "departments"),
}


def _count(row: Mapping[str, Any], kind: str) -> dict[str, int] | None:
    reporting, expected = (row.get(name) for name in _FIELDS[kind])
    if not isinstance(reporting, (int, float)) or not isinstance(expected, (int, float)):
        return None
    return {"reporting": int(reporting), "expected": int(expected)}


def _words(kind: str, count: Mapping[str, int]) -> tuple[str, str]:
    singular, plural, vietnamese = UNIT_KINDS[kind]
    english = singular if count["expected"] == 1 else plural
    return (
        f"{count['reporting']} of {count['expected']} {english}",
        f"{count['reporting']}/{count['expected']} {vietnamese}",
    )


COUNTED_SOURCES: Mapping[str, tuple[str, str]] = {
    "systems_up": ("systems up", "hệ thống hoạt động"),
}
"""Indicators whose reporting sources are the figure itself, and how their sentence names them.

``systems_up`` counts a shared system as reporting when its last check found it up, so its
"3 of 4 sources" is the report's "3 of 4 systems up" (issue 17, item 4): the sentence leads with
it, in those words, and the units by kind follow in brackets."""


def coverage_detail(
    level: str, row: Mapping[str, Any], indicator: str | None = None
) -> dict[str, Any] | None:
    """The coverage of a ``level`` value (``ward``, ``province``, ``nation``) from its stored
    fields, or None for a value written before the engine counted units by kind. ``indicator``
    names the sources in the sentence when it is one of :data:`COUNTED_SOURCES`."""
    sources = _count(row, "sources")
    kinds = _KINDS_AT.get(level)
    if sources is None or kinds is None:
        return None
    detail: dict[str, Any] = dict.fromkeys(("provinces", "wards", "departments"))
    detail["sources"] = sources
    parts: list[tuple[str, str]] = []
    for kind in kinds:
        count = _count(row, kind)
        if count is None:
            return None
        detail[kind] = count
        if count["expected"] > 0 or kind == "provinces":
            parts.append(_words(kind, count))
    own = _words("sources", sources)
    counted = COUNTED_SOURCES.get(indicator or "")
    if counted is not None:
        english, vietnamese = counted
        head = f"{sources['reporting']} of {sources['expected']} {english}"
        head_vi = f"{sources['reporting']}/{sources['expected']} {vietnamese}"
        detail["text"] = head + (f" ({'; '.join(en for en, _ in parts)})" if parts else "")
        detail["text_vi"] = head_vi + (f" ({'; '.join(vi for _, vi in parts)})" if parts else "")
    elif parts:
        detail["text"] = "; ".join(en for en, _ in parts) + f" ({own[0]})"
        detail["text_vi"] = "; ".join(vi for _, vi in parts) + f" ({own[1]})"
    else:  # a ward: its units are its sources
        detail["text"], detail["text_vi"] = own
    return detail
