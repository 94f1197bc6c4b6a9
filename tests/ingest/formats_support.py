"""Where the shared payload files are, and an independent way to write their timestamps."""

from __future__ import annotations

import calendar
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
PAYLOADS = SHARED / "data" / "payloads"
NOW = calendar.timegm((2025, 7, 1, 0, 0, 0)) * 10**9  # the "now" of relative SenML times


def utc_ns(wall_clock: str, ns: int = 0) -> int:
    """Epoch ns of a UTC wall-clock time, computed with calendar (not with the parsers' code)."""
    return calendar.timegm(time.strptime(wall_clock, "%Y-%m-%dT%H:%M:%S")) * 10**9 + ns
