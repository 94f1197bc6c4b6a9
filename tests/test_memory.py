"""ioc/memory.py: large blocks stay mapped on their own after glibc would have stopped doing so.

Each check runs in a fresh interpreter, since glibc's threshold is process state."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from ioc.memory import _LIBC, rss_kib

pytestmark = pytest.mark.skipif(_LIBC is None, reason="the C library is not glibc")

PROBE = textwrap.dedent(
    """
    import ctypes, sys
    from ioc.memory import keep_large_blocks_mapped

    class Info(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    if sys.argv[1] == "fixed":
        assert keep_large_blocks_mapped()
    # A first large block, freed: glibc raises its threshold to this size unless it is fixed.
    block = bytearray(4 * 1024 * 1024)
    del block
    before = libc.mallinfo2().hblkhd
    block = bytearray(3 * 1024 * 1024)  # a write body, smaller than the first
    print(libc.mallinfo2().hblkhd - before)
    """
)


def mapped_growth(mode: str) -> int:
    """Bytes glibc mapped on their own for the second large block, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_without_the_fix_a_later_large_block_comes_from_the_heap() -> None:
    """The behaviour the fix is for (if glibc changes it, the fix may no longer be needed)."""
    assert mapped_growth("default") == 0


def test_with_the_threshold_fixed_every_large_block_is_mapped_on_its_own() -> None:
    assert mapped_growth("fixed") >= 3 * 1024 * 1024


def test_rss_is_read_from_proc() -> None:
    held = bytearray(32 * 1024 * 1024)
    held[::4096] = b"x" * len(held[::4096])  # touch every page
    assert rss_kib() >= 32 * 1024
