"""``ioc engine`` as a newcomer runs it: a real process against the real InfluxDB."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ioc.settings import Settings
from ioc.store import Point, Store

pytestmark = pytest.mark.services

HOUR = 3600 * 10**9


def _ioc(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ioc.cli", *args],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_engine_once_and_backfill_write_indicator_values(
    service_env: dict[str, str], own_database: Settings
) -> None:
    env = {**service_env, "IOC_INFLUX_DB": own_database.influx_db}
    hour0 = time.time_ns() // HOUR * HOUR
    with Store(own_database) as store:
        at = hour0 - 50 * 60 * 10**9
        store.write(
            [
                Point(
                    "air",
                    {"pm25": 80.0, "received_ms": at // 10**6},
                    at - k * HOUR,
                    {"source": "01-air-cau-giay", "province": "01", "ward": "00167"},
                )
                for k in range(4)
            ]
        )
        once = _ioc(env, "engine", "run", "--once")
        assert once.returncode == 0, once.stderr
        assert "points written" in once.stdout
        (row,) = store.query(
            'SELECT "value", "origin" FROM "derived"."indicator" WHERE "indicator" = \'vn_aqi\' '
            "AND \"level\" = 'nation' AND time = $t",
            {"t": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour0 // 10**9))},
        )[0].values
        assert row[1:] == (150.0, "01-air-cau-giay")

        start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(hour0 // 10**9 - 6 * 3600))
        backfill = _ioc(env, "engine", "backfill", start)
        assert backfill.returncode == 0, backfill.stderr
        times = store.query(
            'SELECT "value" FROM "derived"."indicator" WHERE "indicator" = \'vn_aqi\' '
            "AND \"level\" = 'nation'"
        )[0].values
        # 4 hours have readings; the oldest has no NowCast (it needs 2 of the last 3 hours)
        assert [t for t, _ in times] == [hour0 - k * HOUR for k in (2, 1, 0)]


def test_engine_refuses_a_date_without_offset(service_env: dict[str, str]) -> None:
    result = _ioc(service_env, "engine", "backfill", "2025-11-01T00:00:00")
    assert result.returncode == 2
    assert "has no UTC offset" in result.stderr
