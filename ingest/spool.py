"""A durable local spool: batches of line protocol kept on disk while InfluxDB cannot take them.

The collector acknowledges an MQTT message once its points are durable: InfluxDB answered 2xx,
or they were appended here and fsynced. When InfluxDB is back, ``pending`` hands the records back
oldest first and ``commit`` marks them replayed. One process at a time owns a spool directory.

The directory holds:

- ``lock``: flocked (exclusive, non-blocking) by the owner for as long as the spool is open.
- ``committed``: the sequence number of the last replayed record, ASCII decimal and a newline,
  replaced atomically (temp file, fsync, rename, directory fsync).
- ``<20-digit first sequence number>.spool``: segments (lexical order is record order), holding
  records back to back. A record is a header ``F5 9E 01`` (magic, version 1), the payload length
  and the CRC32 of the payload (u32 big-endian each), then the payload: sequence number (u64),
  retention-policy length and line count (u32 each), one u32 length per line, then the
  retention policy and the lines, UTF-8. Records are framed by length, never by newline.

On open the segments are checked: a damaged record at the end of the last segment, with nothing
valid after it, is a write cut short by a crash (never acknowledged) and is truncated away; any
other damage, or a gap in the sequence numbers, raises ``SpoolCorruptError``. The spool is safe
to share between threads of the owning process.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from ioc.errors import SpoolCorruptError, SpoolFullError, SpoolLockedError

logger = logging.getLogger(__name__)

DEFAULT_SEGMENT_BYTES = 4 * 1024 * 1024
MAGIC = b"\xf5\x9e"  # 0xF5 never occurs in UTF-8 text
VERSION = 1
_HEADER = struct.Struct(">2sBII")  # magic, version, payload length, CRC32 of the payload
_PAYLOAD_HEAD = struct.Struct(">QII")  # sequence number, retention-policy length, line count
_SEGMENT_NAME = re.compile(r"[0-9]{20}\.spool")
_COMMITTED_TEXT = re.compile(rb"[0-9]{1,20}\n")
_LOCK, _COMMITTED = "lock", "committed"


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    """One record: line-protocol lines bound for one retention policy."""

    rp: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Damage:
    """Why no valid record starts at an offset; ``end`` is set when only the CRC is wrong."""

    reason: str
    end: int | None = None
    fatal: bool = False


@dataclass(slots=True)
class _Segment:
    """A segment file and where its records start (mutable: the last segment grows)."""

    path: Path
    first_seq: int
    offsets: list[int] = field(default_factory=list)
    size: int = 0

    @property
    def last_seq(self) -> int:
        """Sequence number of the last record (first_seq - 1 when empty)."""
        return self.first_seq + len(self.offsets) - 1

    def end_of(self, index: int) -> int:
        """Offset just past record ``index``."""
        return self.offsets[index + 1] if index + 1 < len(self.offsets) else self.size


class Spool:
    """An append-only, fsynced, crash-safe queue of SpoolBatch records in a directory."""

    def __init__(
        self, directory: Path, lock_fd: int, *, max_bytes: int, segment_bytes: int
    ) -> None:
        """Recover the spool state from disk; use ``Spool.open``, which takes the lock."""
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._directory = directory
        self._lock_fd: int | None = lock_fd
        self._fd: int | None = None  # the last segment, opened for appending on first use
        self._mutex = threading.Lock()
        self._committed = _read_committed(directory / _COMMITTED)
        self._segments, self.recovered_torn_bytes = _recover(directory, self._committed)
        self._size = sum(segment.size for segment in self._segments)
        last = self._segments[-1].last_seq if self._segments else 0
        self._next_seq = max(last, self._committed) + 1
        self._drop_committed()  # finishes a commit that crashed before deleting its segments

    @classmethod
    def open(
        cls, directory: Path, *, max_bytes: int, segment_bytes: int = DEFAULT_SEGMENT_BYTES
    ) -> Spool:
        """Open (creating if needed) and lock the spool in ``directory``, recovering a torn tail."""
        if max_bytes <= 0 or segment_bytes <= 0:
            raise ValueError(f"spool sizes must be positive: {max_bytes=}, {segment_bytes=}")
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            _fsync_dir(directory.parent)
        lock_fd = _lock(directory)
        try:
            return cls(directory, lock_fd, max_bytes=max_bytes, segment_bytes=segment_bytes)
        except BaseException:
            os.close(lock_fd)
            raise

    @property
    def directory(self) -> Path:
        """The spool directory."""
        return self._directory

    @property
    def size_bytes(self) -> int:
        """Bytes of segment files on disk, committed records included until their segment goes."""
        return self._size

    @property
    def pending_count(self) -> int:
        """Records appended and not yet committed."""
        return self._next_seq - 1 - self._committed

    @property
    def is_full(self) -> bool:
        """Whether the segments have reached ``max_bytes``."""
        return self._size >= self.max_bytes

    def append(self, batch: SpoolBatch) -> int:
        """Write one batch and fsync it; return its sequence number (or raise SpoolFullError)."""
        with self._mutex:
            self._check_open()
            seq = self._next_seq
            record = _encode(seq, batch)
            if self._size + len(record) > self.max_bytes:
                raise SpoolFullError(
                    f"spool {self._directory} is full: {self._size} bytes on disk, a"
                    f" {len(record)}-byte record would pass the limit of {self.max_bytes} bytes"
                )
            segment, fd = self._writer(len(record), seq)
            try:
                _write_all(fd, record)
                os.fsync(fd)
            except BaseException:
                self._close_writer()  # the next append truncates back to the last good record
                raise
            segment.offsets.append(segment.size)
            segment.size += len(record)
            self._size += len(record)
            self._next_seq = seq + 1
            return seq

    def pending(self, limit: int | None = None) -> list[tuple[int, SpoolBatch]]:
        """The oldest records not yet committed, in order, at most ``limit`` of them."""
        if limit is not None and limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        with self._mutex:
            self._check_open()
            wanted = self.pending_count if limit is None else min(limit, self.pending_count)
            out: list[tuple[int, SpoolBatch]] = []
            for segment in self._segments:
                if len(out) >= wanted:
                    break
                first = self._committed + 1 + len(out) - segment.first_seq
                if first < len(segment.offsets):
                    stop = min(len(segment.offsets), first + wanted - len(out))
                    out.extend(_read(segment, first, stop))
            return out

    def commit(self, seq: int) -> None:
        """Mark every record up to and including ``seq`` replayed, durably; drop spent segments."""
        with self._mutex:
            self._check_open()
            if seq >= self._next_seq:
                raise ValueError(
                    f"spool {self._directory}: cannot commit record {seq},"
                    f" the last one appended is {self._next_seq - 1}"
                )
            if seq <= self._committed:
                return
            _write_committed(self._directory, seq)
            self._committed = seq
            self._drop_committed()

    def close(self) -> None:
        """Close the segment and release the lock (idempotent)."""
        with self._mutex:
            self._close_writer()
            if self._lock_fd is not None:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
                self._lock_fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        """Refuse to work on a closed spool: another process may own the directory by now."""
        if self._lock_fd is None:
            raise ValueError(f"spool {self._directory} is closed")

    def _writer(self, record_size: int, seq: int) -> tuple[_Segment, int]:
        """The segment to append to and its descriptor, rolling to a new segment when full."""
        current = self._segments[-1] if self._segments else None
        rolls = current is not None and current.size + record_size > self.segment_bytes
        if current is None or (rolls and current.size > 0):
            self._close_writer()
            path = self._directory / f"{seq:020d}.spool"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            try:
                _fsync_dir(self._directory)
            except BaseException:
                os.close(fd)
                path.unlink(missing_ok=True)
                raise
            current, self._fd = _Segment(path, seq), fd
            self._segments.append(current)
        elif self._fd is None:
            self._fd = os.open(current.path, os.O_WRONLY | os.O_APPEND)
            os.ftruncate(self._fd, current.size)  # drop what a failed append may have left
        return current, self._fd

    def _close_writer(self) -> None:
        """Close the descriptor of the last segment, if open."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _drop_committed(self) -> None:
        """Delete, oldest first, the segments whose records have all been replayed."""
        while self._segments and self._segments[0].last_seq <= self._committed:
            segment = self._segments.pop(0)
            if not self._segments:
                self._close_writer()
            segment.path.unlink(missing_ok=True)
            self._size -= segment.size


def _encode(seq: int, batch: SpoolBatch) -> bytes:
    """One record: header, then the payload described in the module docstring."""
    rp = batch.rp.encode()
    lines = [line.encode() for line in batch.lines]
    payload = b"".join(
        (
            _PAYLOAD_HEAD.pack(seq, len(rp), len(lines)),
            struct.pack(f">{len(lines)}I", *map(len, lines)),
            rp,
            *lines,
        )
    )
    return _HEADER.pack(MAGIC, VERSION, len(payload), zlib.crc32(payload)) + payload


def _decode(payload: bytes) -> tuple[int, SpoolBatch]:
    """The sequence number and batch of a payload; struct.error or ValueError if malformed."""
    seq, rp_size, count = _PAYLOAD_HEAD.unpack_from(payload)
    sizes = struct.unpack_from(f">{count}I", payload, _PAYLOAD_HEAD.size)
    pos = _PAYLOAD_HEAD.size + 4 * count
    rp = payload[pos : pos + rp_size].decode()
    pos += rp_size
    lines = []
    for size in sizes:
        lines.append(payload[pos : pos + size].decode())
        pos += size
    if pos != len(payload):
        raise ValueError(f"payload is {len(payload)} bytes, its lengths add up to {pos}")
    return seq, SpoolBatch(rp, tuple(lines))


def _parse_at(data: bytes, pos: int) -> tuple[bytes, int] | _Damage:
    """The payload of the record at ``pos`` and the offset past it, or why there is none."""
    if len(data) - pos < _HEADER.size:
        return _Damage("incomplete header")
    magic, version, length, crc = _HEADER.unpack_from(data, pos)
    if magic != MAGIC:
        return _Damage("bad magic")
    if version != VERSION:
        return _Damage(f"unsupported version {version}", fatal=True)
    end = pos + _HEADER.size + length
    if end > len(data):
        return _Damage(f"{length}-byte record runs past the end of the file")
    payload = data[pos + _HEADER.size : end]
    if zlib.crc32(payload) != crc:
        return _Damage("CRC mismatch", end=end)
    return payload, end


def _is_torn(data: bytes, pos: int, damage: _Damage) -> bool:
    """Whether damage at ``pos`` can only be the last write cut short: nothing valid follows."""
    if damage.fatal:
        return False
    if damage.end is not None:
        return damage.end == len(data)
    hit = data.find(MAGIC, pos + 1)
    while hit != -1:
        if not isinstance(_parse_at(data, hit), _Damage):
            return False
        hit = data.find(MAGIC, hit + 1)
    return True


def _scan(path: Path, first_seq: int, *, last: bool) -> tuple[_Segment, int]:
    """Index a segment's records; return it and the length of its torn tail (last one only)."""
    data = path.read_bytes()
    segment = _Segment(path, first_seq)
    pos = 0
    while pos < len(data):
        parsed = _parse_at(data, pos)
        if isinstance(parsed, _Damage):
            if last and _is_torn(data, pos, parsed):
                break
            raise SpoolCorruptError(f"spool segment {path}: {parsed.reason} at offset {pos}")
        payload, end = parsed
        expected = segment.last_seq + 1
        seq = _PAYLOAD_HEAD.unpack_from(payload)[0] if len(payload) >= _PAYLOAD_HEAD.size else None
        if seq != expected:
            raise SpoolCorruptError(
                f"spool segment {path}: record at offset {pos} is number {seq}, expected {expected}"
            )
        segment.offsets.append(pos)
        pos = end
    segment.size = pos
    return segment, len(data) - pos


def _recover(directory: Path, committed: int) -> tuple[list[_Segment], int]:
    """Index the segments in order, truncating a torn tail; return them and the bytes cut."""
    paths = sorted(path for path in directory.iterdir() if _SEGMENT_NAME.fullmatch(path.name))
    segments: list[_Segment] = []
    torn = 0
    for index, path in enumerate(paths):
        first_seq = int(path.name[:20])
        expected = segments[-1].last_seq + 1 if segments else min(first_seq, committed + 1)
        if first_seq != expected:
            raise SpoolCorruptError(
                f"spool segment {path}: starts at record {first_seq} (offset 0), expected"
                f" {expected}: records are missing (committed up to {committed})"
            )
        segment, torn = _scan(path, first_seq, last=index == len(paths) - 1)
        segments.append(segment)
    if torn:
        tail = segments[-1]
        with tail.path.open("r+b") as file:
            file.truncate(tail.size)
            os.fsync(file.fileno())
        logger.warning(
            "spool %s: cut %d bytes of a write torn by a crash at offset %d of %s",
            directory,
            torn,
            tail.size,
            tail.path.name,
        )
    return segments, torn


def _read(segment: _Segment, first: int, stop: int) -> list[tuple[int, SpoolBatch]]:
    """Records ``first`` to ``stop - 1`` of a segment, checked against their CRC and number."""
    start = segment.offsets[first]
    with segment.path.open("rb") as file:
        file.seek(start)
        data = file.read(segment.end_of(stop - 1) - start)
    out = []
    pos = 0
    for index in range(first, stop):
        parsed = _parse_at(data, pos)
        offset, expected = start + pos, segment.first_seq + index
        if isinstance(parsed, _Damage):
            raise SpoolCorruptError(f"spool segment {segment.path}: {parsed.reason} at {offset}")
        payload, pos = parsed
        try:
            seq, batch = _decode(payload)
        except (struct.error, ValueError) as exc:
            raise SpoolCorruptError(
                f"spool segment {segment.path}: unreadable record at offset {offset}: {exc}"
            ) from None
        if seq != expected:
            raise SpoolCorruptError(
                f"spool segment {segment.path}: record at offset {offset} is number {seq},"
                f" expected {expected}"
            )
        out.append((seq, batch))
    return out


def _read_committed(path: Path) -> int:
    """The last committed sequence number (0 when nothing was ever committed)."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return 0
    if not _COMMITTED_TEXT.fullmatch(text):
        raise SpoolCorruptError(f"spool file {path}: {text[:40]!r} is not a sequence number")
    return int(text)


def _write_committed(directory: Path, seq: int) -> None:
    """Replace the committed file atomically and durably."""
    temp = directory / f"{_COMMITTED}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, f"{seq}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, directory / _COMMITTED)
    _fsync_dir(directory)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    """Make the directory's entries (created, renamed files) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock(directory: Path) -> int:
    """Take the directory's exclusive lock and return its descriptor, or raise SpoolLockedError."""
    fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise SpoolLockedError(
            f"spool {directory} is in use by another process or another open Spool"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    return fd
