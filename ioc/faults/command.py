"""``ioc verify faults``: run the fault suite (docs/faults.md) and report its figures.

Each scenario starts its own servers and collectors on free loopback ports in a temporary
directory, so the command needs no running stack, only the installed Mosquitto and InfluxDB.
A scenario whose module is missing or that raises is reported as failed with its error; the
command exits 1 when any scenario failed.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from random import Random

from ioc.faults import SCENARIOS, Profile, ScenarioResult, Trial, scenario
from ioc.settings import Settings

HELP = "the fault suite: inject real faults, count what was acknowledged and what was lost"

log = logging.getLogger(__name__)


def configure(parser: argparse.ArgumentParser) -> None:
    checks = parser.add_subparsers(dest="check", required=True, metavar="CHECK")
    faults = checks.add_parser(
        "faults",
        help="inject real faults into real processes; count what was acknowledged and lost",
        description="Run the fault suite's scenarios (docs/faults.md) and print a summary.",
    )
    faults.add_argument(
        "--full", action="store_true", help="20 trials per scenario (default: the CI profile, 3)"
    )
    faults.add_argument("--report", type=Path, metavar="PATH", help="write a markdown report")
    faults.add_argument(
        "--scenario",
        type=int,
        nargs="+",
        metavar="N",
        help="run only these scenarios (1-12; default: all)",
    )
    faults.add_argument("--seed", type=int, help="seed of the fault moments (default: random)")
    faults.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, data) afterwards"
    )


def _failed(number: int, name: str, error: str) -> ScenarioResult:
    trial = Trial(notes=error)
    trial.checks["scenario ran"] = False
    return ScenarioResult(number, name, [trial])


def run(settings: Settings, args: argparse.Namespace) -> int:
    del settings  # every scenario makes its own stack
    from ioc.faults.report import Run, machine, table, write  # noqa: PLC0415

    numbers = args.scenario or sorted(SCENARIOS)
    unknown = [n for n in numbers if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s) {unknown}: choose from {sorted(SCENARIOS)}")
        return 2
    # The servers' start and stop lines of every trial would bury the summary.
    for name in ("ioc.stack", "ioc.store.client"):
        logging.getLogger(name).setLevel(logging.WARNING)
    profile = Profile.full() if args.full else Profile.ci()
    seed = args.seed if args.seed is not None else Random().getrandbits(32)  # noqa: S311
    started, began = datetime.now(UTC), time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="ioc-faults-"))
    print(f"fault suite: profile {profile.name}, seed {seed}, work directory {workdir}")
    results: list[ScenarioResult] = []
    try:
        for number in numbers:
            # Each scenario gets its own generator, so --scenario N repeats N's moments.
            scenario_rng = Random(seed * 100 + number)  # noqa: S311
            _module, name = SCENARIOS[number]
            print(f"scenario {number} ({name}) ...", flush=True)
            t0 = time.monotonic()
            try:
                result = scenario(number)(profile, scenario_rng, workdir / f"s{number:02d}")
            except Exception as exc:  # one broken scenario must not hide the others
                log.exception("scenario %d raised", number)
                result = _failed(number, name, f"{type(exc).__name__}: {exc}")
            results.append(result)
            print(
                f"scenario {number} {'passed' if result.passed else 'FAILED'} "
                f"in {time.monotonic() - t0:.0f} s",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("\n".join(table(results)))
    for result in results:
        for index, trial in enumerate(result.trials, 1):
            if not trial.passed:
                failed = ", ".join(k for k, ok in trial.checks.items() if not ok)
                print(f"scenario {result.number} trial {index}: {failed}. {trial.notes.strip()}")
    if args.report:
        run_info = Run(
            profile.name, profile.trials, seed, started, time.monotonic() - began, machine()
        )
        write(args.report, results, run_info)
        print(f"report written to {args.report}")
    return 0 if all(r.passed for r in results) else 1
