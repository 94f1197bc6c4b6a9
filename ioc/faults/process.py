"""Scenarios 1-8: faults of the processes (collector, InfluxDB, broker) and of the spool disk.

Each trial starts its own Mosquitto, InfluxDB and collector (:class:`~ioc.faults.harness.Harness`),
streams numbered readings at QoS 1, injects the fault at a moment drawn from the trial's
generator, ends it, and counts among the acknowledged readings what is lost or doubled.
"Recovery" is measured from the later of the end of the fault and the last publish to the moment
every acknowledged reading is queryable.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from random import Random

from ioc.faults import Profile, ScenarioResult, Trial
from ioc.faults.harness import (
    Harness,
    Unavailable,
    check,
    fill,
    run_trials,
    wait_for,
    wait_until_stored,
)
from ioc.faults.proxy import Proxy

RECOVERY_TIMEOUT = 240.0
"""Seconds a trial waits for every acknowledged reading to be stored before calling it lost."""


def _finish(
    h: Harness, trial: Trial, *, since: float, zero_loss: bool = True, timeout: float = 0.0
) -> Trial:
    store = h.store()
    publisher = h.last_publisher
    if publisher is None:
        raise RuntimeError("no publisher started")
    publisher.join()
    publisher.settle()
    count, recovery = wait_until_stored(
        store, publisher, since=since, timeout=timeout or RECOVERY_TIMEOUT
    )
    fill(trial, count, recovery, zero_loss=zero_loss)
    trial.broker_dropped = h.broker_dropped()
    trial.checks["collectors alive"] = all(c.alive() for c in h.collectors)
    return trial


def _stream(h: Harness, count: int, rate: float) -> float:
    """Start the numbered publisher; return when it will have published everything."""
    h.publisher(count).stream(rate)
    return time.monotonic() + count / rate


def _in_flight(h: Harness) -> str:
    """Acknowledged by the broker vs stored, at the moment of a fault (for the trial's notes)."""
    publisher = h.last_publisher
    if publisher is None:
        return ""
    try:
        count = check(h.store(), publisher)
    except Exception as exc:  # InfluxDB may be the one that is down
        return f"(not counted at the fault: {type(exc).__name__})"
    return f"(at the fault: {count.acknowledged} acknowledged, {count.stored} stored)"


def _started(h: Harness) -> None:
    h.up()
    h.collector().start()


# --- 1. collector SIGKILL -----------------------------------------------------------------------


def collector_sigkill(profile: Profile, rng: Random, workdir: Path) -> ScenarioResult:
    """SIGKILL a collector mid-stream, restart it under the same id: nothing lost or doubled.

    Two collectors share the subscription (``$share/faults/...``, as in production); one of them,
    drawn at random, is killed. Its unacknowledged messages wait in its persistent session until
    it is back; the other keeps storing its share meanwhile.
    """

    def trial(rng: Random, workdir: Path) -> Trial:
        with Harness(workdir, IOC_INGEST_GROUP="faults") as h:
            h.up()
            pair = [h.collector(), h.collector()]
            for collector in pair:
                collector.start()
            done = _stream(h, 3000, 500)  # 6 s
            victim = rng.randrange(2)
            moment = rng.uniform(0.5, 5.0)
            time.sleep(moment)
            pair[victim].kill()
            at_fault = _in_flight(h)
            down = rng.uniform(0.2, 3.0)
            time.sleep(down)
            pair[victim].start()
            t = Trial(
                notes=f"collector {victim + 1} of 2 SIGKILLed at {moment:.1f} s, "
                f"restarted {down:.1f} s later {at_fault}."
            )
            return _finish(h, t, since=max(time.monotonic(), done))

    return ScenarioResult(1, "collector SIGKILL", run_trials(profile, rng, workdir, trial))


# --- 2. collector SIGSTOP -----------------------------------------------------------------------

STOP_SECONDS = 30.0


def collector_sigstop(profile: Profile, rng: Random, workdir: Path) -> ScenarioResult:
    """Freeze the collector for 30 s (SIGSTOP), then SIGCONT: it catches up, nothing doubled."""

    def trial(rng: Random, workdir: Path) -> Trial:
        with Harness(workdir) as h:
            _started(h)
            collector = h.collectors[0]
            done = _stream(h, 3000, 200)  # 15 s
            moment = rng.uniform(0.5, 12.0)
            time.sleep(moment)
            collector.signal(signal.SIGSTOP)
            time.sleep(STOP_SECONDS)
            collector.signal(signal.SIGCONT)
            resumed = time.monotonic()
            t = Trial(notes=f"SIGSTOP at {moment:.1f} s for {STOP_SECONDS:.0f} s.")
            _finish(h, t, since=max(resumed, done))
            t.checks["collector not restarted"] = collector.starts == 1
            return t

    trials = run_trials(profile, rng, workdir, trial, concurrent=3)
    return ScenarioResult(2, "collector SIGSTOP 30 s", trials)


# --- 3. InfluxDB SIGKILL ------------------------------------------------------------------------


def influxdb_sigkill(profile: Profile, rng: Random, workdir: Path) -> ScenarioResult:
    """SIGKILL InfluxDB mid-ingest, restart it: the spool covers the gap, nothing lost."""

    def trial(rng: Random, workdir: Path) -> Trial:
        with Harness(workdir) as h:
            _started(h)
            done = _stream(h, 3000, 300)  # 10 s
            moment = rng.uniform(0.5, 8.0)
            time.sleep(moment)
            at_fault = _in_flight(h)
            h.kill("influxdb")
            down = rng.uniform(0.5, 5.0)
            time.sleep(down)
            h.up(("influxdb",))
            t = Trial(notes=f"SIGKILL at {moment:.1f} s, restarted {down:.1f} s later {at_fault}.")
            return _finish(h, t, since=max(time.monotonic(), done))

    return ScenarioResult(3, "InfluxDB SIGKILL", run_trials(profile, rng, workdir, trial))


# --- 4. InfluxDB down 60 s and 300 s ------------------------------------------------------------

OUTAGES = (60.0, 300.0)
OUTAGE_RATE = 100.0
"""Readings per second published during an outage (all of them go to the spool)."""


def _first_replay(h: Harness, timeout: float) -> tuple[float | None, int]:
    """When the first spooled reading became queryable after InfluxDB came back, and how many
    were stored before it (polled every 0.2 s)."""
    publisher = h.last_publisher
    if publisher is None:
        raise RuntimeError("no publisher started")
    store = h.store()
    before = check(store, publisher).stored
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check(store, publisher).stored > before:
                return time.monotonic(), before
        time.sleep(0.2)
    return None, before


def influxdb_down(profile: Profile, rng: Random, workdir: Path) -> ScenarioResult:
    """InfluxDB stopped for 60 s and for 300 s while readings flow; the spool replays them."""
    drains: dict[float, list[float]] = {d: [] for d in OUTAGES}
    retry_waits: dict[float, list[float]] = {d: [] for d in OUTAGES}

    def make(outage: float) -> Callable[[Random, Path], Trial]:
        def trial(rng: Random, workdir: Path) -> Trial:
            with Harness(workdir) as h:
                _started(h)
                moment = rng.uniform(1.0, 5.0)
                count = int(OUTAGE_RATE * (moment + outage))
                _stream(h, count, OUTAGE_RATE)
                time.sleep(moment)
                h.down("influxdb")
                stopped = time.monotonic()
                time.sleep(max(0.0, outage - (time.monotonic() - stopped)))
                h.up(("influxdb",))
                back = time.monotonic()
                first_replay, before = _first_replay(h, timeout=RECOVERY_TIMEOUT)
                t = Trial(notes=f"{outage:.0f} s outage from {moment:.1f} s.")
                _finish(h, t, since=back)
                if t.recovery_s is not None and first_replay is not None:
                    waited = first_replay - back
                    drained = t.recovery_s - waited
                    spooled = t.stored - before
                    if drained > 0:
                        drains[outage].append(spooled / drained)
                    retry_waits[outage].append(waited)
                    t.notes += f" First replay {waited:.1f} s after InfluxDB was back; "
                    t.notes += f"{spooled:,} spooled readings drained in {max(drained, 0):.1f} s."
                t.checks["spool replayed"] = "spool replayed" in h.collectors[0].log_text()
                return t

        return trial

    # Independent stacks, mostly waiting: all trials of both lengths run at the same time.
    short, long = (make(d) for d in OUTAGES)
    seeds = Random(rng.getrandbits(64)), Random(rng.getrandbits(64))  # noqa: S311

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(
            run_trials, profile, seeds[0], workdir / "60s", short, concurrent=min(profile.trials, 6)
        )
        second = pool.submit(
            run_trials, profile, seeds[1], workdir / "300s", long, concurrent=min(profile.trials, 6)
        )
        trials = first.result() + second.result()
    result = ScenarioResult(4, "InfluxDB down 60 s / 300 s", trials)
    for outage, rates in drains.items():
        if rates:
            result.figures[f"drain rate after {outage:.0f} s"] = (
                f"median {statistics.median(rates):,.0f} readings/s (min {min(rates):,.0f}), "
                "from the first replayed batch to the last reading stored"
            )
        waits = retry_waits[outage]
        if waits:
            result.figures[f"first replay after {outage:.0f} s"] = (
                f"median {statistics.median(waits):.1f} s (max {max(waits):.1f} s) after InfluxDB "
                "answered again: the writer's backoff (capped at 30 s, jittered)"
            )
    result.figures["ingest rate during the outage"] = f"{OUTAGE_RATE:.0f} readings/s"
    return result


# --- 5. InfluxDB slow or stalled ----------------------------------------------------------------


def influxdb_slow(profile: Profile, rng: Random, workdir: Path) -> ScenarioResult:
    """A proxy between the collector and InfluxDB adds latency, then holds every connection."""

    def trial(rng: Random, workdir: Path) -> Trial:
        with Harness(workdir) as h:
            h.up()
            with Proxy(h.settings.influx_host, h.settings.influx_port) as proxy:
                h.collector(IOC_INFLUX_URL=f"http://127.0.0.1:{proxy.port}").start()
                done = _stream(h, 5000, 200)  # 25 s
                latency = rng.uniform(0.2, 1.5)
                proxy.set_latency(latency)
                time.sleep(rng.uniform(4.0, 8.0))
                proxy.set_latency(0.0)
                stall = rng.uniform(12.0, 20.0)  # past the client's 10 s timeout
                proxy.stall()
                time.sleep(stall)
                proxy.resume()
                t = Trial(notes=f"latency {latency:.2f} s per chunk, then stalled {stall:.0f} s.")
                _finish(h, t, since=max(time.monotonic(), done))
                t.checks["collector wrote through the proxy"] = proxy.connections > 0
                return t

    result = ScenarioResult(5, "InfluxDB slow / stalled", run_trials(profile, rng, workdir, trial))
    result.figures["injection"] = (
        "TCP proxy: 0.2-1.5 s per chunk both ways, then 12-20 s of held connections"
    )
    return result


# --- 6. InfluxDB refusing writes (disk full) ----------------------------------------------------

TMPFS_MB = 64


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if not found:
        raise Unavailable(f"{name} is not installed")
    return found


def _mount_tmpfs(path: Path, size_mb: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    answer = subprocess.run(
        [_tool("mount"), "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if answer.returncode != 0:
        raise Unavailable(
            f"cannot mount a {size_mb} MB tmpfs for InfluxDB's data (needs root or "
            f"CAP_SYS_ADMIN): {answer.stderr.strip()}"
        )


def _fill_disk(path: Path) -> Path:
    """Write a filler file until the file system is full (ENOSPC)."""
    filler = path / "filler"
    block = b"\0" * (1 << 20)
    with filler.open("wb") as out:
        try:
            while True:
                out.write(block)
                out.flush()
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
    return filler


SELF_HEAL_WAIT = 10.0


def _all_stored_within(h: Harness, seconds: float) -> bool:
    """True if every reading acknowledged so far is stored within ``seconds``."""
    publisher = h.last_publisher
    if publisher is None:
        raise RuntimeError("no publisher started")
    store = h.store()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if not check(store, publisher).lost:
                return True
        time.sleep(0.5)
    return False


def influxdb_refusing(profile: Profile, rng: Random, workdir: Path) -> ScenarioResult:
    """InfluxDB's data directory (a small tmpfs) runs full: every write fails; then space again."""

    def trial(rng: Random, workdir: Path) -> Trial:
        data = workdir / "var" / "influxdb"
        _mount_tmpfs(data, TMPFS_MB)
        try:
            with Harness(workdir) as h:
                _started(h)
                done = _stream(h, 4000, 200)  # 20 s
                moment = rng.uniform(1.0, 6.0)
                time.sleep(moment)
                filler = _fill_disk(data)
                full_for = rng.uniform(8.0, 15.0)
                time.sleep(full_for)
                refused = "InfluxDB write failed" in h.collectors[0].log_text()
                filler.unlink()
                # InfluxDB 1.6 keeps failing its WAL writes (ENOSPC) after space is freed, until
                # it is restarted: an operator's restart is part of the recovery. Say whether
                # it came back by itself first.
                freed = time.monotonic()
                self_healed = _all_stored_within(h, SELF_HEAL_WAIT)
                h.down("influxdb")
                h.up(("influxdb",))
                t = Trial(
                    notes=f"disk full at {moment:.1f} s for {full_for:.0f} s; InfluxDB "
                    + ("recovered by itself." if self_healed else "needed a restart.")
                )
                _finish(h, t, since=max(freed, done))
                t.checks["InfluxDB refused writes while full"] = refused
                return t
        finally:
            subprocess.run([_tool("umount"), "-l", str(data)], capture_output=True, check=False)

    result = ScenarioResult(6, "InfluxDB refusing writes", run_trials(profile, rng, workdir, trial))
    result.figures["injection"] = (
        f"InfluxDB's data on a {TMPFS_MB} MB tmpfs filled to ENOSPC (InfluxDB answers 500), "
        f"then space freed; InfluxDB restarted if it has not recovered {SELF_HEAL_WAIT:.0f} s later"
    )
    return result


# --- 7. broker restart --------------------------------------------------------------------------


STREAM_RATE = 200.0
"""Readings per second of scenario 7's stream: what turns a time-based autosave into a count."""


def autosave_bound(config: Path, rate: float = STREAM_RATE) -> tuple[int, str]:
    """The loss bound of a broker SIGKILL that follows from the rendered Mosquitto config, in
    readings at ``rate`` readings per second, and in words.

    Time-based autosave (``autosave_interval`` seconds, the default) saves the database that
    often: a crash loses at most what was acknowledged in the last interval and not yet taken by
    a collector, so ``interval x rate``. With ``autosave_on_changes true`` it saves once more than
    ``autosave_interval`` changes happened: at most that many.
    """
    text = config.read_text()
    interval = re.search(r"^autosave_interval\s+(\d+)", text, re.M)
    value = int(interval.group(1)) if interval else 1800
    if re.search(r"^autosave_on_changes\s+true", text, re.M):
        return (
            value,
            f"at most {value} acknowledged readings per broker SIGKILL (saves per {value} changes)",
        )
    bound = int(value * rate)
    return bound, (
        f"at most {value} s of acknowledged traffic not yet taken by a collector per broker "
        f"SIGKILL (time-based autosave), {bound} readings at {rate:g} per second"
    )


def _session_after_restart(h: Harness) -> str:
    """Whether the collector found its session on the restarted broker (its last connect line).

    A broker killed before it first saved the collector's session restarts without it: what
    devices publish before the collector subscribes again has no subscriber (docs/faults.md).
    """
    lines = re.findall(r"session present: (True|False)", h.collectors[0].log_text())
    if not lines:
        return ""
    if lines[-1] == "True":
        return "The collector's session was restored from mosquitto.db."
    return (
        "The broker restarted without the collector's session (not yet saved): readings "
        "acknowledged before the collector subscribed again had no subscriber."
    )


def broker_restart(profile: Profile, rng: Random, workdir: Path) -> ScenarioResult:
    """Mosquitto restarted gracefully (no loss) and SIGKILLed (loss within the autosave bound)."""
    bounds: list[str] = []

    def make(kill: bool) -> Callable[[Random, Path], Trial]:
        def trial(rng: Random, workdir: Path) -> Trial:
            with Harness(workdir) as h:
                _started(h)
                bound, words = autosave_bound(h.stack.run_dir / "mosquitto.conf")
                bounds[:] = [words]
                done = _stream(h, 3000, STREAM_RATE)  # 15 s
                moment = rng.uniform(1.0, 10.0)
                time.sleep(moment)
                if kill:
                    h.kill("mosquitto")
                else:
                    h.down("mosquitto")
                down = rng.uniform(0.5, 3.0)
                time.sleep(down)
                h.up(("mosquitto",))
                how = "SIGKILL" if kill else "graceful restart"
                t = Trial(notes=f"{how} at {moment:.1f} s, down {down:.1f} s.")
                # After a SIGKILL some loss is allowed (the bound): what is still missing a
                # minute after the stream is not coming, so do not wait RECOVERY_TIMEOUT for it.
                since = max(time.monotonic(), done)
                _finish(h, t, since=since, zero_loss=not kill, timeout=60.0 if kill else 0.0)
                if kill:
                    t.checks[f"lost <= bound ({bound})"] = t.lost <= bound
                    t.notes += f" {_session_after_restart(h)}"
                return t

        return trial

    seeds = Random(rng.getrandbits(64)), Random(rng.getrandbits(64))  # noqa: S311
    graceful = run_trials(profile, seeds[0], workdir / "graceful", make(False))
    killed = run_trials(profile, seeds[1], workdir / "sigkill", make(True))
    result = ScenarioResult(7, "broker restart / SIGKILL", graceful + killed)
    result.bound = (
        "graceful restart: 0 (Mosquitto saves on exit); "
        + (bounds[0] if bounds else "SIGKILL: see deploy/local/mosquitto.conf.in")
        + "; the first half of the trials are graceful, the rest SIGKILL"
    )
    return result


# --- 8. the collector's spool full --------------------------------------------------------------


def _dir_bytes(path: Path) -> int:
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path):
            if entry.is_file():
                total += entry.stat().st_size
    return total


def spool_full(profile: Profile, rng: Random, workdir: Path) -> ScenarioResult:
    """InfluxDB down and the 1 MB spool full: the collector stops acknowledging, stays up,
    and once InfluxDB is back stores everything."""

    def trial(rng: Random, workdir: Path) -> Trial:
        with Harness(workdir, IOC_INGEST_SPOOL_MAX_MB="1") as h:
            _started(h)
            collector = h.collectors[0]
            done = _stream(h, 12_000, 1000)  # ~1.8 MB of lines: more than the spool
            time.sleep(rng.uniform(0.2, 2.0))
            h.down("influxdb")
            wait_for(
                lambda: "holding messages unacknowledged" in collector.log_text(),
                120,
                "the spool to fill",
            )
            time.sleep(max(0.0, done - time.monotonic()) + 1.0)
            held_bytes = _dir_bytes(h.spool_dir(collector))
            hold = rng.uniform(3.0, 8.0)
            time.sleep(hold)
            alive_while_full = collector.alive() and collector.starts == 1
            still = _dir_bytes(h.spool_dir(collector)) == held_bytes
            h.up(("influxdb",))
            t = Trial(notes=f"spool full for {hold:.0f} s more; {held_bytes:,} bytes spooled.")
            _finish(h, t, since=time.monotonic())
            t.checks["collector stayed up while full"] = alive_while_full
            t.checks["spool within its limit"] = held_bytes <= 1024 * 1024 + 256 * 1024
            t.checks["nothing more accepted while full"] = still
            return t

    return ScenarioResult(8, "collector spool full", run_trials(profile, rng, workdir, trial))
