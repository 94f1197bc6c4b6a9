"""The durable spool on a real filesystem: round trips, reopen, segments, limits, crashes, lock."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.spool import Spool, SpoolBatch
from ioc.errors import IocError, SpoolCorruptError, SpoolFullError, SpoolLockedError

ROOT = Path(__file__).resolve().parents[2]
BIG = 1 << 30

TRICKY = [
    SpoolBatch("autogen", ("m,site=a v=1i 1700000000000000000",)),
    SpoolBatch("raw_30d", ('m s="two\nlines" 1', 'm s="three\n\nlines"', "\n", "\r\n")),
    SpoolBatch("q", ('m s="quote \\" inside",t="back\\\\slash"', "\\", '"', "'")),
    SpoolBatch(
        "vi", ("nhiệt_độ,phường=Bến\\ Nghé v=30.5", "空气 pm25=12", "emoji 😀=1", "\x00\x7f")
    ),
    SpoolBatch("", ()),
    SpoolBatch("autogen", ("",)),
    SpoolBatch("autogen", ("", "", "")),
    SpoolBatch("autogen", ("x" * 70_000,)),
    SpoolBatch("autogen", tuple(f"m,n={i} v={i}i {i}" for i in range(500))),
]


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.spool"))


def batch(n: int) -> SpoolBatch:
    return SpoolBatch("autogen", (f"m,n={n} v={n}i", f'm s="{n}\nmore"'))


def record_bytes(tmp_path: Path, item: SpoolBatch) -> bytes:
    """The bytes a spool writes for one record (the only record of a scratch spool)."""
    scratch = tmp_path / "scratch"
    with Spool.open(scratch, max_bytes=BIG) as spool:
        spool.append(item)
    (segment,) = segment_files(scratch)
    return segment.read_bytes()


def test_round_trip_keeps_order_and_exact_content(tmp_path: Path) -> None:
    with Spool.open(tmp_path / "spool", max_bytes=BIG) as spool:
        seqs = [spool.append(item) for item in TRICKY]
        assert seqs == list(range(1, len(TRICKY) + 1))
        assert spool.pending() == list(zip(seqs, TRICKY, strict=True))
        assert spool.pending_count == len(TRICKY)
        assert spool.size_bytes == sum(p.stat().st_size for p in segment_files(spool.directory))
    with Spool.open(tmp_path / "spool", max_bytes=BIG) as spool:
        assert spool.pending() == list(zip(seqs, TRICKY, strict=True))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(
        st.builds(
            SpoolBatch,
            st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=12),
            st.lists(st.text(max_size=40), max_size=8).map(tuple),
        ),
        max_size=6,
    ),
    segment_bytes=st.integers(1, 400),
)
def test_any_batches_round_trip(batches: list[SpoolBatch], segment_bytes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "spool"
        with Spool.open(directory, max_bytes=BIG, segment_bytes=segment_bytes) as spool:
            seqs = [spool.append(item) for item in batches]
            assert spool.pending() == list(zip(seqs, batches, strict=True))
        with Spool.open(directory, max_bytes=BIG, segment_bytes=segment_bytes) as spool:
            assert spool.pending() == list(zip(seqs, batches, strict=True))


def test_pending_limit_returns_the_oldest(tmp_path: Path) -> None:
    with Spool.open(tmp_path, max_bytes=BIG, segment_bytes=300) as spool:
        for n in range(10):
            spool.append(batch(n))
        assert spool.pending(0) == []
        assert spool.pending(3) == [(n + 1, batch(n)) for n in range(3)]
        spool.commit(4)
        assert spool.pending(3) == [(n + 1, batch(n)) for n in range(4, 7)]
        assert spool.pending(100) == [(n + 1, batch(n)) for n in range(4, 10)]
        with pytest.raises(ValueError, match="negative"):
            spool.pending(-1)


def test_reopen_keeps_pending_and_sequence_numbers(tmp_path: Path) -> None:
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        for n in range(5):
            spool.append(batch(n))
        spool.commit(2)
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        assert spool.pending() == [(n + 1, batch(n)) for n in range(2, 5)]
        assert spool.pending_count == 3
        assert spool.append(batch(5)) == 6
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        assert [seq for seq, _ in spool.pending()] == [3, 4, 5, 6]


def test_segments_roll_and_commit_deletes_spent_ones(tmp_path: Path) -> None:
    size = len(record_bytes(tmp_path, batch(0)))
    directory = tmp_path / "spool"
    with Spool.open(directory, max_bytes=BIG, segment_bytes=2 * size) as spool:
        for n in range(7):
            spool.append(batch(n))
        names = [p.name for p in segment_files(directory)]
        assert names == [f"{first:020d}.spool" for first in (1, 3, 5, 7)]
        assert spool.size_bytes == 7 * size
        spool.commit(4)  # segments 1-2 and 3-4 are spent
        assert [p.name for p in segment_files(directory)] == names[2:]
        assert spool.size_bytes == 3 * size
        spool.commit(5)  # half of segment 5-6: it stays
        assert [p.name for p in segment_files(directory)] == names[2:]
        assert spool.pending() == [(6, batch(5)), (7, batch(6))]
    with Spool.open(directory, max_bytes=BIG, segment_bytes=2 * size) as spool:
        assert spool.pending() == [(6, batch(5)), (7, batch(6))]
        assert spool.append(batch(7)) == 8
        spool.commit(8)
        assert segment_files(directory) == []
        assert spool.size_bytes == 0
        assert spool.pending() == []


def test_sequence_continues_after_everything_was_committed(tmp_path: Path) -> None:
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        for n in range(3):
            spool.append(batch(n))
        spool.commit(3)
        assert segment_files(tmp_path) == []
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        assert spool.pending_count == 0
        assert spool.append(batch(3)) == 4
        assert [p.name for p in segment_files(tmp_path)] == [f"{4:020d}.spool"]
        assert spool.pending() == [(4, batch(3))]


def test_commit_below_is_a_no_op_and_beyond_the_last_is_an_error(tmp_path: Path) -> None:
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        for n in range(3):
            spool.append(batch(n))
        spool.commit(2)
        spool.commit(1)
        spool.commit(0)
        assert [seq for seq, _ in spool.pending()] == [3]
        with pytest.raises(ValueError, match="cannot commit record 4"):
            spool.commit(4)
        assert spool.pending_count == 1
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        assert [seq for seq, _ in spool.pending()] == [3]


def test_full_spool_refuses_and_writes_nothing(tmp_path: Path) -> None:
    size = len(record_bytes(tmp_path, batch(0)))
    directory = tmp_path / "spool"
    with Spool.open(directory, max_bytes=3 * size + size // 2, segment_bytes=1) as spool:
        for n in range(3):
            spool.append(batch(n))
        assert not spool.is_full
        before = {p.name: p.read_bytes() for p in segment_files(directory)}
        with pytest.raises(SpoolFullError) as caught:
            spool.append(batch(3))
        assert isinstance(caught.value, IocError)
        message = str(caught.value)
        assert str(directory) in message
        assert str(3 * size) in message
        assert str(3 * size + size // 2) in message
        assert {p.name: p.read_bytes() for p in segment_files(directory)} == before
        assert spool.pending() == [(n + 1, batch(n)) for n in range(3)]
        spool.commit(1)  # frees the first segment
        assert spool.append(batch(3)) == 4
        assert [seq for seq, _ in spool.pending()] == [2, 3, 4]
    with Spool.open(directory, max_bytes=3 * size, segment_bytes=1) as spool:
        assert spool.is_full
        assert [seq for seq, _ in spool.pending()] == [2, 3, 4]


TAILS: dict[str, Callable[[bytes], bytes]] = {
    "first-half-of-a-record": lambda record: record[: len(record) // 2],
    "header-fragment": lambda record: record[:5],
    "last-byte-wrong": lambda record: record[:-1] + bytes([record[-1] ^ 0xFF]),
    "zero-filled": lambda record: bytes(len(record)),
    "garbage": lambda record: random.Random(7).randbytes(300),
}


@pytest.mark.parametrize("make_tail", TAILS.values(), ids=TAILS.keys())
def test_torn_tail_is_cut_and_the_spool_goes_on(
    tmp_path: Path, make_tail: Callable[[bytes], bytes], caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "spool"
    with Spool.open(directory, max_bytes=BIG) as spool:
        for n in range(3):
            spool.append(batch(n))
    (segment,) = segment_files(directory)
    good = segment.read_bytes()
    tail = make_tail(record_bytes(tmp_path, batch(99)))
    segment.write_bytes(good + tail)
    with (
        caplog.at_level(logging.WARNING, "ingest.spool"),
        Spool.open(directory, max_bytes=BIG) as spool,
    ):
        assert spool.recovered_torn_bytes == len(tail) > 0
        assert segment.read_bytes() == good
        assert spool.pending() == [(n + 1, batch(n)) for n in range(3)]
        assert spool.append(batch(3)) == 4
    (warning,) = [r for r in caplog.records if r.name == "ingest.spool"]
    assert warning.levelno == logging.WARNING
    assert f"cut {len(tail)} bytes" in warning.getMessage()
    assert segment.name in warning.getMessage()
    with Spool.open(directory, max_bytes=BIG) as spool:
        assert spool.recovered_torn_bytes == 0
        assert spool.pending() == [(n + 1, batch(n)) for n in range(4)]


def test_empty_new_segment_left_by_a_crash_is_reused(tmp_path: Path) -> None:
    with Spool.open(tmp_path, max_bytes=BIG, segment_bytes=1) as spool:
        spool.append(batch(0))
    (tmp_path / f"{2:020d}.spool").write_bytes(b"\xf5\x9e\x01\x00")  # created, write torn
    with Spool.open(tmp_path, max_bytes=BIG, segment_bytes=1) as spool:
        assert spool.recovered_torn_bytes == 4
        assert spool.append(batch(1)) == 2
        assert spool.pending() == [(1, batch(0)), (2, batch(1))]


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "offset", [0, 2, 5, 9, 30], ids=["magic", "version", "length", "crc", "payload"]
)
def test_damage_before_good_records_is_corruption(tmp_path: Path, offset: int) -> None:
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        for n in range(3):
            spool.append(batch(n))
    (segment,) = segment_files(tmp_path)
    flip(segment, offset)
    with pytest.raises(SpoolCorruptError, match=r"00000000000000000001\.spool.* at offset 0"):
        Spool.open(tmp_path, max_bytes=BIG)
    flip(segment, offset)  # repaired: the lock was released by the failed open
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        assert spool.pending_count == 3


def test_damage_in_an_earlier_segment_is_corruption(tmp_path: Path) -> None:
    with Spool.open(tmp_path, max_bytes=BIG, segment_bytes=1) as spool:
        for n in range(3):
            spool.append(batch(n))
    first, second, _ = segment_files(tmp_path)
    second.write_bytes(second.read_bytes()[:-3])  # torn, but not the last segment
    with pytest.raises(SpoolCorruptError, match=rf"{second.name}.* at offset 0"):
        Spool.open(tmp_path, max_bytes=BIG)
    first.write_bytes(first.read_bytes()[:-1] + b"\x00")  # CRC mismatch at its end
    with pytest.raises(SpoolCorruptError, match=rf"{first.name}: CRC mismatch at offset 0"):
        Spool.open(tmp_path, max_bytes=BIG)


def test_record_with_the_wrong_number_is_corruption(tmp_path: Path) -> None:
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        spool.append(batch(0))
    (segment,) = segment_files(tmp_path)
    first = segment.read_bytes()
    segment.write_bytes(first * 2)  # intact CRC, but record 1 where record 2 belongs
    with pytest.raises(SpoolCorruptError, match=rf"offset {len(first)} is number 1, expected 2"):
        Spool.open(tmp_path, max_bytes=BIG)


def test_missing_segment_is_corruption(tmp_path: Path) -> None:
    with Spool.open(tmp_path, max_bytes=BIG, segment_bytes=1) as spool:
        for n in range(3):
            spool.append(batch(n))
    segment_files(tmp_path)[1].unlink()
    with pytest.raises(SpoolCorruptError, match=r"00000000000000000003\.spool.*expected 2"):
        Spool.open(tmp_path, max_bytes=BIG)


def test_damage_found_while_reading_is_corruption(tmp_path: Path) -> None:
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        spool.append(batch(0))
        (segment,) = segment_files(tmp_path)
        flip(segment, 30)
        with pytest.raises(SpoolCorruptError, match="CRC mismatch"):
            spool.pending()


def test_failed_fsync_leaves_no_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        spool.append(batch(0))
        (segment,) = segment_files(tmp_path)
        size = segment.stat().st_size

        def broken_fsync(fd: int) -> None:
            raise OSError(5, "Input/output error")

        with monkeypatch.context() as patch:
            patch.setattr(os, "fsync", broken_fsync)
            with pytest.raises(OSError, match="Input/output"):
                spool.append(batch(1))
        assert segment.stat().st_size > size  # the bytes reached the file before fsync failed
        assert spool.append(batch(2)) == 2  # ...and the next append replaced them
        assert spool.pending() == [(1, batch(0)), (2, batch(2))]
    with Spool.open(tmp_path, max_bytes=BIG) as spool:
        assert spool.recovered_torn_bytes == 0
        assert spool.pending() == [(1, batch(0)), (2, batch(2))]


def test_second_open_is_locked_out_until_close(tmp_path: Path) -> None:
    first = Spool.open(tmp_path, max_bytes=BIG)
    with pytest.raises(SpoolLockedError, match=str(tmp_path)) as caught:
        Spool.open(tmp_path, max_bytes=BIG)
    assert isinstance(caught.value, IocError)
    script = "import sys; from pathlib import Path; from ingest.spool import Spool\n"
    script += "Spool.open(Path(sys.argv[1]), max_bytes=1000)"
    other = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert other.returncode != 0
    assert "SpoolLockedError" in other.stderr
    first.close()
    first.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        first.append(batch(0))
    with Spool.open(tmp_path, max_bytes=BIG) as second:
        assert second.append(batch(0)) == 1


CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ingest.spool import Spool, SpoolBatch

    round_ = sys.argv[2]
    with Spool.open(Path(sys.argv[1]), max_bytes=1 << 30, segment_bytes=20_000) as spool:
        n = 0
        while True:
            lines = tuple(f'crash,round={round_},n={n} i={i}i,s="a\\nb"' for i in range(40))
            seq = spool.append(SpoolBatch("autogen", lines))
            print(seq, n, flush=True)
            n += 1
    """
)


def child_batch(round_: int, n: int) -> SpoolBatch:
    return SpoolBatch(
        "autogen", tuple(f'crash,round={round_},n={n} i={i}i,s="a\nb"' for i in range(40))
    )


def run_and_kill(directory: Path, round_: int, appends: int) -> list[tuple[int, int]]:
    """Run the child until it reported ``appends`` appends, SIGKILL it; return all its reports."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(directory), str(round_)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        seen = [proc.stdout.readline() for _ in range(appends)]
        if not all(line.endswith("\n") for line in seen):
            pytest.fail(f"child exited early: {proc.communicate(timeout=60)[1]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        # Read through the same buffered reader as readline(): communicate() would read the
        # pipe underneath it and miss lines readline() had already buffered.
        rest = proc.stdout.read()
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    complete = "".join(seen) + rest[: rest.rfind("\n") + 1]  # a line cut by the kill is no report
    return [(int(seq), int(n)) for seq, n in (line.split() for line in complete.splitlines())]


def test_sigkill_loses_no_acknowledged_append(tmp_path: Path) -> None:
    reports: list[list[tuple[int, int]]] = []
    for round_, appends in enumerate([25, 40, 60]):
        reports.append(run_and_kill(tmp_path, round_, appends))
        with Spool.open(tmp_path, max_bytes=BIG, segment_bytes=20_000) as spool:
            records = spool.pending()
        assert [seq for seq, _ in records] == list(range(1, len(records) + 1))
        at = 0  # records must be each round's reported appends, plus at most one unreported
        for earlier, reported in enumerate(reports):
            assert [n for _, n in reported] == list(range(len(reported)))
            for seq, n in reported:
                assert records[at] == (seq, child_batch(earlier, n))
                at += 1
            if at < len(records) and records[at][1] == child_batch(earlier, len(reported)):
                at += 1  # appended and fsynced, killed before it could print
        assert at == len(records)
    assert len(segment_files(tmp_path)) > 1  # the crashes also happened across segment rolls
