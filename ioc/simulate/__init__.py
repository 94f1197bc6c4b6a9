"""``ioc simulate``: a demo fleet publishing through the real broker, or a benchmark load profile.

Modules: ``fleet`` (which registered source publishes what, in which format), ``signals`` (value
models, deterministic from a seed), ``pm25`` (the real Hanoi PM2.5 record), ``formats`` (payload
encoders and topics), ``publisher`` (QoS 1 with backpressure), ``runner`` (history, then live),
``load`` (the load profile), ``command`` (this command). docs/simulate.md describes them.

Importing this package is cheap: the command's work is imported inside :func:`run`.
"""

from __future__ import annotations

import argparse
import re

from ioc.settings import Settings

__all__ = ["HELP", "configure", "parse_duration", "run"]

HELP = "publish a demo fleet (history, then live) or a benchmark load through the broker"

_DURATION = re.compile(r"(\d+)(d|h|m|s)")
_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``26h``, ``90m``, ``1h30m``, ``45s`` or ``2d``."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration such as 26h, 90m, 1h30m, 45s or 2d"
        )
    return float(sum(int(n) * _SECONDS[u] for n, u in parts))


def _provinces(text: str) -> tuple[str, ...]:
    codes = tuple(code.strip() for code in text.split(",") if code.strip())
    if not codes or not all(re.fullmatch(r"[0-9]{2}", code) for code in codes):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of 2-digit province codes such as 01,40,96,46,48"
        )
    return codes


def configure(parser: argparse.ArgumentParser) -> None:
    """The fleet's options; ``load`` is a sub-mode with its own."""
    parser.add_argument(
        "--provinces",
        type=_provinces,
        default=("01", "40", "96", "46", "48"),
        help="province codes to simulate (default 01,40,96,46,48: Hà Nội, Nghệ An, Cà Mau, "
        "Huế, Đà Nẵng)",
    )
    parser.add_argument(
        "--history",
        type=parse_duration,
        default=parse_duration("26h"),
        metavar="DURATION",
        help="publish this much past data first, as fast as the broker acknowledges "
        "(default 26h; at most IOC_INGEST_MAX_AGE)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the value models (default 1)")
    parser.add_argument("--once", action="store_true", help="publish the history, then exit")
    parser.add_argument(
        "--duration",
        type=parse_duration,
        metavar="DURATION",
        help="stop live mode after this long (default: until Ctrl-C or SIGTERM)",
    )
    parser.add_argument(
        "--pm25-csv",
        action="append",
        metavar="PATH",
        help="AirNow CSV export(s) of the PM2.5 record to replay (default: the Hanoi 2019-2020 "
        "record in ../shared/data/opendata)",
    )
    modes = parser.add_subparsers(dest="mode", metavar="[load]", title="modes")
    load = modes.add_parser(
        "load",
        help="benchmark load: N synthetic air stations publishing IOC JSON at a fixed rate",
        description="Benchmark load: N synthetic air stations publishing IOC JSON at a fixed "
        "rate. Write their registry first (--write-registry) and start the collector with it.",
    )
    load.add_argument("--devices", type=int, default=100, help="synthetic devices (default 100)")
    load.add_argument(
        "--metrics", type=int, default=4, help="metrics per message, 1 to 8 (default 4)"
    )
    load.add_argument(
        "--rate", type=float, default=1000.0, help="messages per second (default 1000)"
    )
    load.add_argument(
        "--duration",
        dest="load_duration",
        type=parse_duration,
        default=parse_duration("60s"),
        metavar="DURATION",
        help="how long to publish (default 60s)",
    )
    load.add_argument(
        "--write-registry",
        metavar="PATH",
        help="write the registry TOML of the devices to PATH and exit (no publishing)",
    )
    load.add_argument(
        "--max-inflight",
        type=int,
        default=1000,
        help="messages awaiting their PUBACK before publishing waits (default 1000)",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run the fleet, or the load profile with ``load``; return the exit code."""
    from ioc.simulate.command import run_fleet, run_load_profile  # noqa: PLC0415 - keep import cheap

    if getattr(args, "mode", None) == "load":
        return run_load_profile(settings, args)
    return run_fleet(settings, args)
