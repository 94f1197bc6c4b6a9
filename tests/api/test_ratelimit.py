"""The per-key rate limiter: GCRA arithmetic, sharing across processes, and a broken database."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from ioc.api.ratelimit import DATABASE_NAME, PRUNE_EVERY_S, Decision, RateLimiter
from ioc.settings import load_settings

T = 1_762_000_000.0  # a realistic epoch: floats this large carry rounding the limiter must absorb


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "api" / DATABASE_NAME


def test_a_burst_of_n_then_refused_with_retry_after(db: Path) -> None:
    limiter = RateLimiter(db, per_minute=6)  # one request per 10 s, bursts of 6
    decisions = [limiter.check("k1", T) for _ in range(6)]
    assert all(d.allowed for d in decisions)
    assert [d.remaining for d in decisions] == [5, 4, 3, 2, 1, 0]
    assert [d.reset_s for d in decisions] == [10, 20, 30, 40, 50, 60]
    refused = limiter.check("k1", T)
    assert refused == Decision(False, limit=6, remaining=0, retry_after_s=10, reset_s=60)
    assert limiter.check("k1", T + 9.5).retry_after_s == 1  # 0.5 s rounds up, never to 0


def test_the_quota_refills_with_time(db: Path) -> None:
    limiter = RateLimiter(db, per_minute=6)
    for _ in range(6):
        assert limiter.check("k1", T).allowed
    assert not limiter.check("k1", T + 9.9).allowed
    again = limiter.check("k1", T + 10)
    assert again.allowed
    assert again.remaining == 0
    assert not limiter.check("k1", T + 10).allowed
    full = limiter.check("k1", T + 600)
    assert (full.allowed, full.remaining) == (True, 5)


def test_retry_after_is_exactly_when_the_next_request_passes(db: Path) -> None:
    limiter = RateLimiter(db, per_minute=7)  # 8.57 s per request: not a round number
    for _ in range(7):
        assert limiter.check("k1", T).allowed
    refused = limiter.check("k1", T + 1)
    assert not refused.allowed
    assert refused.retry_after_s == 8  # 8.57 - 1 = 7.57, rounded up
    assert not limiter.check("k1", T + 1 + refused.retry_after_s - 1).allowed
    assert limiter.check("k1", T + 1 + refused.retry_after_s).allowed


def test_a_smaller_burst_spaces_requests(db: Path) -> None:
    limiter = RateLimiter(db, per_minute=60, burst=1)
    first = limiter.check("k1", T)
    assert (first.allowed, first.limit, first.remaining) == (True, 1, 0)
    assert limiter.check("k1", T + 0.5) == Decision(False, 1, 0, retry_after_s=1, reset_s=1)
    assert limiter.check("k1", T + 1).allowed


def test_keys_are_limited_independently(db: Path) -> None:
    limiter = RateLimiter(db, per_minute=1)
    assert limiter.check("a", T).allowed
    assert not limiter.check("a", T).allowed
    assert limiter.check("b", T).allowed


def test_headers(db: Path) -> None:
    limiter = RateLimiter(db, per_minute=2)
    assert limiter.check("k1", T).headers() == {
        "RateLimit-Limit": "2",
        "RateLimit-Remaining": "1",
        "RateLimit-Reset": "30",
    }
    limiter.check("k1", T)
    assert limiter.check("k1", T + 5).headers() == {
        "RateLimit-Limit": "2",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "55",
        "Retry-After": "25",
    }


def test_state_survives_a_new_limiter_on_the_same_file(db: Path) -> None:
    RateLimiter(db, per_minute=1).check("k1", T)
    assert not RateLimiter(db, per_minute=1).check("k1", T + 1).allowed


def test_a_clock_that_went_back_does_not_lock_a_key_out(db: Path) -> None:
    limiter = RateLimiter(db, per_minute=6)
    for _ in range(7):
        limiter.check("k1", T)
    back = limiter.check("k1", T - 3600)
    assert not back.allowed
    assert back.retry_after_s <= 10  # not an hour: the stored time is clamped


def test_rows_of_idle_keys_are_pruned(db: Path) -> None:
    limiter = RateLimiter(db, per_minute=60)
    limiter.check("idle", T)
    limiter.check("busy", T + PRUNE_EVERY_S / 2)
    limiter.check("busy", T + PRUNE_EVERY_S + 1)
    limiter.close()
    with sqlite3.connect(db) as connection:
        keys = {row[0] for row in connection.execute("SELECT key_id FROM tat")}
    assert keys == {"busy"}


def test_from_settings_uses_the_state_dir_and_the_limit(tmp_path: Path) -> None:
    settings = load_settings({"IOC_VAR_DIR": str(tmp_path), "IOC_API_RATE_LIMIT": "120"})
    limiter = RateLimiter.from_settings(settings)
    assert limiter.path == tmp_path / "api" / DATABASE_NAME
    assert (limiter.per_minute, limiter.burst) == (120, 120)
    assert limiter.check("k1", T).remaining == 119
    assert limiter.path.exists()


@pytest.mark.parametrize(("per_minute", "burst"), [(0, None), (10, 0)])
def test_nonsense_limits_are_refused(db: Path, per_minute: int, burst: int | None) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        RateLimiter(db, per_minute, burst)


# --- several processes on one file ---


def _hammer(path: str, checks: int, results: multiprocessing.Queue[tuple[int, int]]) -> None:
    limiter = RateLimiter(Path(path), per_minute=50, busy_timeout_s=10)
    decisions = [limiter.check("shared", T) for _ in range(checks)]
    results.put((sum(d.allowed for d in decisions), sum(not d.enforced for d in decisions)))


def test_the_limit_is_shared_by_every_process(db: Path) -> None:
    RateLimiter(db, per_minute=50).close()  # nothing checked yet
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[tuple[int, int]] = context.Queue()
    workers = [context.Process(target=_hammer, args=(str(db), 40, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    assert sum(unenforced for _, unenforced in outcomes) == 0
    assert sum(allowed for allowed, _ in outcomes) == 50  # not 4 x 40 = 160, not 4 x 50


# --- an unusable database: fail open by default, closed on request ---


@pytest.fixture
def unusable(tmp_path: Path) -> Path:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    return blocker / DATABASE_NAME


def test_an_unusable_database_fails_open(unusable: Path, caplog: pytest.LogCaptureFixture) -> None:
    limiter = RateLimiter(unusable, per_minute=1)
    decisions = [limiter.check("k1", T + n) for n in range(3)]
    assert all(d.allowed and not d.enforced for d in decisions)
    assert decisions[0].headers() == {}
    assert limiter.failures == 3
    warnings = [r for r in caplog.records if "unusable" in r.getMessage()]
    assert len(warnings) == 1  # at most one warning a minute
    assert "allowing requests" in warnings[0].getMessage()


def test_an_unusable_database_can_fail_closed(unusable: Path) -> None:
    limiter = RateLimiter(unusable, per_minute=1, fail_open=False)
    refused = limiter.check("k1", T)
    assert (refused.allowed, refused.enforced) == (False, False)
    assert refused.headers() == {"Retry-After": "1"}


def test_a_database_locked_beyond_the_timeout_fails_open_then_recovers(db: Path) -> None:
    limiter = RateLimiter(db, per_minute=1, busy_timeout_s=0.05)
    assert limiter.check("k1", T).allowed
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        locked = limiter.check("k1", T)
        assert (locked.allowed, locked.enforced) == (True, False)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    recovered = limiter.check("k1", T)
    assert (recovered.allowed, recovered.enforced) == (False, True)
