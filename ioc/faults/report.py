"""The fault suite's markdown report: one table of all scenarios, then each one's details.

``ioc verify faults --report PATH`` writes it. When PATH already holds the markers
``<!-- faults-report:start -->`` and ``<!-- faults-report:end -->`` (docs/faults.md does), only
the text between them is replaced, so the page's own prose stays.
"""

from __future__ import annotations

import os
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ioc.faults import ScenarioResult

START, END = "<!-- faults-report:start -->", "<!-- faults-report:end -->"


@dataclass(frozen=True, slots=True)
class Run:
    """What a report says about how the suite ran."""

    profile: str
    trials: int
    seed: int
    started: datetime
    seconds: float
    machine: str


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"not runnable ({exc})"
    lines = (out.stdout + out.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def machine() -> str:
    """nproc and the servers' versions: ``2 cores; mosquitto version 2.0.11; InfluxDB v1.6.7``."""
    from ioc.stack import find_binary  # noqa: PLC0415

    parts = [f"{os.cpu_count()} cores"]
    for service, argv in (("mosquitto", ["-h"]), ("influxdb", ["version"])):
        try:
            parts.append(_first_line([find_binary(service), *argv]))
        except Exception as exc:  # a report must not fail on a missing binary
            parts.append(f"{service}: {exc}")
    return "; ".join(parts)


def _recovery(result: ScenarioResult) -> str:
    times = [t.recovery_s for t in result.trials if t.recovery_s is not None]
    if not times:
        return "-"
    return f"{statistics.median(times):.1f} s / {max(times):.1f} s"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(results: Sequence[ScenarioResult]) -> list[str]:
    lines = [
        "| # | scenario | trials | acknowledged | lost | duplicates | recovery p50 / max "
        "| result |",
        "|---:|---|---:|---:|---:|---:|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.number} | {_cell(r.name)} | {len(r.trials)} "
            f"| {sum(t.acknowledged for t in r.trials):,} | {sum(t.lost for t in r.trials):,} "
            f"| {sum(t.duplicates for t in r.trials):,} | {_recovery(r)} "
            f"| {'pass' if r.passed else '**FAIL**'} |"
        )
    return lines


def details(result: ScenarioResult) -> list[str]:
    lines = [f"### {result.number}. {result.name}", ""]
    if result.bound:
        lines.append(f"- bound: {_cell(result.bound)}")
    for name, value in result.figures.items():
        lines.append(f"- {_cell(name)}: {_cell(value)}")
    for index, trial in enumerate(result.trials, 1):
        failed = [name for name, ok in trial.checks.items() if not ok]
        verdict = "pass" if trial.passed else "FAIL (" + ", ".join(failed) + ")"
        recovery = "-" if trial.recovery_s is None else f"{trial.recovery_s:.1f} s"
        extra = f", broker dropped {trial.broker_dropped}" if trial.broker_dropped else ""
        lines.append(
            f"- trial {index}: {verdict}; acknowledged {trial.acknowledged:,}, "
            f"lost {trial.lost}, duplicates {trial.duplicates}, unexpected {trial.unexpected}, "
            f"gaps {trial.gaps}{extra}, recovery {recovery}. {_cell(trial.notes.strip())}"
        )
    lines.append("")
    return lines


def render(results: Sequence[ScenarioResult], run: Run) -> str:
    """The report as markdown (the part between the markers)."""
    lines = [
        START,
        "",
        f"Profile **{run.profile}** ({run.trials} trials per scenario and variant), seed "
        f"`{run.seed}`, run {run.started:%Y-%m-%d %H:%M} UTC in {run.seconds / 60:.0f} min on "
        f"{run.machine}. Reproduce: `ioc verify faults"
        f"{' --full' if run.profile == 'full' else ''} --seed {run.seed}`.",
        "",
        *table(results),
        "",
        *(line for r in results for line in details(r)),
        END,
    ]
    return "\n".join(lines) + "\n"


def write(path: Path, results: Sequence[ScenarioResult], run: Run) -> None:
    """Write the report to ``path``, replacing only the marked part when there is one."""
    text = render(results, run)
    try:
        current = path.read_text()
    except FileNotFoundError:
        current = ""
    if START in current and END in current:
        head, rest = current.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + text.rstrip("\n") + tail
    elif not current:
        text = "# Fault suite report\n\n" + text
    else:
        text = current.rstrip("\n") + "\n\n" + text
    path.write_text(text)
