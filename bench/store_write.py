"""Store write throughput against a private InfluxDB 1.x, as ratios to baselines from the same run.

Run: ``.venv/bin/python -m bench.store_write [--points 100000] [--batch 5000]``

It starts its own Mosquitto and InfluxDB (the local stack code) in a temporary folder on free
loopback ports and measures, in one run:

* baseline: pre-encoded line protocol POSTed straight to ``/write`` with urllib3, in batches;
* ``Store.write``: the same points as ``Point`` values, encoded and sent by the store;
* ``Store.write`` with one point per request (what an unbatched writer does).

It prints points per second for each and the ratios store/baseline and single/batched.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import urllib3

from ioc.settings import Settings, load_settings
from ioc.stack import LocalStack, free_ports
from ioc.store import Point, Store, encode_points


def _points(measurement: str, count: int, start_ns: int) -> list[Point]:
    """Readings of 1,000 sensors over distinct seconds, three fields each."""
    return [
        Point(
            measurement,
            {"pm25": 10.0 + i % 97, "pm10": 20.0 + i % 89, "ok": True},
            start_ns + i * 1_000_000_000,
            {"province": f"{i % 34:02d}", "source": f"aq-{i % 1000:04d}"},
        )
        for i in range(count)
    ]


def _rate(label: str, count: int, run: Callable[[], None]) -> float:
    began = time.perf_counter()
    run()
    seconds = time.perf_counter() - began
    rate = count / seconds
    print(f"  {label:<44} {count:>8} points in {seconds:6.2f} s = {rate:>10,.0f} points/s")
    return rate


def measure(settings: Settings, points: int, batch: int, single: int) -> None:
    """Run the three measurements and print rates and ratios."""
    now = time.time_ns() // 10**9 * 10**9 - points * 10**9
    baseline_lines = encode_points(_points("bench_raw", points, now))
    store_points = _points("bench_store", points, now)
    http = urllib3.PoolManager()
    url = f"{settings.influx_url}/write?" + urlencode(
        {"db": settings.influx_db, "rp": "raw", "precision": "ns"}
    )

    def raw_post() -> None:
        for i in range(0, len(baseline_lines), batch):
            body = ("\n".join(baseline_lines[i : i + batch]) + "\n").encode()
            answer = http.request("POST", url, body=body)
            assert answer.status == 204, answer.data

    with Store(settings) as store:

        def store_batches() -> None:
            for i in range(0, len(store_points), batch):
                store.write(store_points[i : i + batch])

        def store_single() -> None:
            for point in _points("bench_single", single, now):
                store.write([point])

        print(f"InfluxDB {store.ping()} at {settings.influx_url}; batches of {batch}")
        base = _rate(f"baseline: urllib3 POST, {batch}-line batches", points, raw_post)
        batched = _rate(f"Store.write, {batch}-point batches", points, store_batches)
        one = _rate("Store.write, one point per request", single, store_single)
    print(f"ratio Store.write / baseline (batched):   {batched / base:.2f}")
    print(f"ratio one-per-request / batched Store:    {one / batched:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--single", type=int, default=2_000, help="points sent one per request")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ioc-bench-") as var:
        mqtt, influx, rpc = free_ports(3)
        settings = load_settings(
            {
                "IOC_VAR_DIR": str(Path(var)),
                "IOC_MQTT_PORT": str(mqtt),
                "IOC_INFLUX_URL": f"http://127.0.0.1:{influx}",
                "IOC_INFLUX_RPC_PORT": str(rpc),
                "IOC_INFLUX_DB": "ioc_bench",
                "IOC_LOG_LEVEL": "WARNING",
            }
        )
        with LocalStack(settings).running():
            measure(settings, args.points, args.batch, args.single)


if __name__ == "__main__":
    main()
