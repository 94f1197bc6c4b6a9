"""An independent reader of line protocol, following how InfluxDB 1.x scans a buffer.

It mirrors the server's rules that matter for injection: a line ends at a newline outside a
quoted field value; while scanning keys, the character after *any* backslash is skipped; a quote
toggles "inside a string" only in the field section, after a field key's ``=``. It is strict:
anything the server would refuse raises ``ValueError``. Tests compare what our encoder meant with
what this reader (and the real server) sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParsedPoint:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, Any]
    time_ns: int | None


def split_lines(buf: str) -> list[str]:
    """Lines as the server's scanner cuts them (newlines inside quoted field values kept)."""
    lines, i, n = [], 0, len(buf)
    while i < n:
        start, quoted, in_fields, equals, commas = i, False, False, 0, 0
        while i < n:
            c = buf[i]
            if c == "\\":
                i += 2
                continue
            if c == " ":
                in_fields = True
            if in_fields:
                if not quoted and c == "=":
                    equals += 1
                    i += 1
                    continue
                if not quoted and c == ",":
                    commas += 1
                    i += 1
                    continue
                if c == '"' and equals > commas:
                    quoted = not quoted
                    i += 1
                    continue
            if c == "\n" and not quoted:
                break
            i += 1
        line = buf[start:i]
        i += 1
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(line)
    return lines


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, i = [], [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if c == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def _unescape(text: str, chars: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in chars:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _key_end(line: str) -> int:
    """Index of the first unescaped space: the end of measurement and tags."""
    i = 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == " ":
            return i
        i += 1
    return len(line)


def _field_parts(line: str, start: int) -> tuple[list[str], int]:
    """Split the field section at unescaped commas outside strings; return parts and its end.

    As in the server, a quote opens or closes a string only after a field key's ``=`` (more
    ``=`` than ``,`` seen so far), so a quote inside a field key is an ordinary character.
    """
    parts, begin, i = [], start, start
    quoted, equals, commas = False, 0, 0
    while i < len(line):
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c == '"' and equals > commas:
            quoted = not quoted
        elif c == "=" and not quoted:
            equals += 1
        elif c == "," and not quoted:
            commas += 1
            parts.append(line[begin:i])
            begin = i + 1
        elif c == " " and not quoted:
            break
        i += 1
    if quoted:
        raise ValueError(f"unterminated string in {line!r}")
    parts.append(line[begin:i])
    return parts, i


def _field_value(raw: str) -> Any:
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise ValueError(f"bad string field {raw!r}")
        return _unescape(raw[1:-1], '"\\')
    if raw in ("t", "T", "true", "True", "TRUE"):
        return True
    if raw in ("f", "F", "false", "False", "FALSE"):
        return False
    if raw.endswith("i"):
        return int(raw[:-1])
    return float(raw)


def parse_line(line: str) -> ParsedPoint:
    key_end = _key_end(line)
    key = line[:key_end]
    parts = _split_unescaped(key, ",")
    measurement = _unescape(parts[0], ", ")
    if not measurement:
        raise ValueError(f"missing measurement in {line!r}")
    tags: dict[str, str] = {}
    for part in parts[1:]:
        pair = _split_unescaped(part, "=")
        if len(pair) != 2 or not pair[0] or not pair[1]:
            raise ValueError(f"bad tag {part!r} in {line!r}")
        tags[_unescape(pair[0], ",= ")] = _unescape(pair[1], ",= ")
    if key_end >= len(line):
        raise ValueError(f"missing fields in {line!r}")
    parts_, fields_end = _field_parts(line, key_end + 1)
    fields: dict[str, Any] = {}
    for part in parts_:
        name, sep, raw = _partition_unescaped(part)
        if not sep or not name:
            raise ValueError(f"bad field {part!r} in {line!r}")
        fields[_unescape(name, ",= ")] = _field_value(raw)
    rest = line[fields_end + 1 :] if fields_end < len(line) else ""
    return ParsedPoint(measurement, tags, fields, int(rest) if rest else None)


def _partition_unescaped(text: str) -> tuple[str, str, str]:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "=":
            return text[:i], "=", text[i + 1 :]
        i += 1
    return text, "", ""


def parse(buf: str) -> list[ParsedPoint]:
    """Every point in a buffer of line protocol."""
    return [parse_line(line) for line in split_lines(buf)]
