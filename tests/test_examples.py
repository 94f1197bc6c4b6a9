"""Every shell example of README.md and docs/*.md runs as written against a private stack.

**Which blocks are examples.** A fenced block tagged ``sh`` is a list of commands; a block
tagged ``console`` is a session: a line starting with ``$ `` is a command and the lines after it
(up to the next command or a blank line) are what it must print. Both are run, in document
order, unless the fence is directly preceded (no blank line between) by an opt-out comment:

* ``<!-- not run: REASON -->`` leaves out the whole block;
* ``<!-- not run `COMMAND`: REASON -->`` leaves out the commands that start with ``COMMAND``.

Every opt-out states why, and every command-level opt-out must match a command. A block with
any other tag (or none) must not hold a command (``curl``, ``ioc``, ``mosquitto_*``, ``make``,
``docker``, ``$ ``...): a guard test fails on one, so no example escapes by its tag.

**How a block runs.** Each command (a line, with its ``\\`` continuations) runs in its own
``bash -c`` with the stack's ``IOC_*`` environment, in a copy of the checkout's layout whose
``var/`` is the stack's (so ``var/load.toml`` lands there), after two rewrites: the default
ports (``11883``, ``18086``, ``18088``, ``18080``, ``19093``) become the stack's free ports, and
the placeholders ``$KEY``, ``<key>`` and the docs' sample key ``ioc_3f9a1c2b7d4e_1uP...`` become
a real operator key (a ``console`` block binds the sample key and key id to the ones its own
``ioc keys create`` printed). Then:

* a command must exit 0; ``curl`` must also get HTTP 2xx, and an InfluxDB answer must hold no
  ``error`` (InfluxDB answers 200 to a failed statement);
* a command ending in ``&`` stays in the background until the block ends, and must still run
  then (or have exited 0); it is then stopped with SIGINT, as Ctrl-C would;
* an ``ioc`` command that runs until stopped (``ingest``, ``api``, ``run``, ``probe``,
  ``simulate``, ``engine run``, ``alerts run``, unless ``--once`` or ``--write-registry``) runs
  until it prints something and :data:`SERVICE_WINDOW_S` more, gets SIGINT, and must exit 0;
* a message ``mosquitto_pub`` sends on a collector topic must be stored, not dead-lettered: a
  real collector runs during such blocks, and the reading must be in InfluxDB; a background
  ``mosquitto_sub`` must receive each message published in its block on its topics;
* a console command's output must contain its expected lines in order (12-hex key ids, API keys,
  date-times and ``...`` are wildcards);
* :data:`CLAIMS` checks what particular examples say they show (a query's rows, say).

``curl`` is the real one when installed (else a translation to urllib); ``mosquitto_pub`` and
``mosquitto_sub`` are stand-ins on paho, because Debian's ``mosquitto-clients`` is not among
the packages ``make setup`` installs; ``ioc`` is ``python -m ioc.cli`` of this interpreter.
Before the first block the lab publishes 3 h of the demo fleet through a collector and computes
its indicators, as ``make run`` does, since the README's queries describe that state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from base64 import b64encode
from collections.abc import Callable, Iterator, Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ("README.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md"))))
RUN_TAGS = ("sh", "console")
SERVICE_WINDOW_S = 1.5
"""How long a command that runs until stopped runs, after its first output, before SIGINT."""
COMMAND_TIMEOUT_S = 60.0
BASH = shutil.which("bash") or "/bin/bash"
DEMO_PROVINCES = ("01", "40", "46", "48", "96")
SAMPLE_KEY = "ioc_3f9a1c2b7d4e_1uP..."
"""The key the docs show; a real key replaces it."""

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<tag>[^`\s]*)[^`]*$")
_OPT_OUT = re.compile(
    r"^\s*<!--\s*not run(?:\s+`(?P<command>[^`]+)`)?\s*:\s*(?P<reason>.*?)\s*-->\s*$"
)
_LOOKS_LIKE_COMMAND = re.compile(
    r"^\s*(?:\$ |curl\s|mosquitto_(?:pub|sub)\s|(?:\S*/)?ioc\s|make\s|docker\s|systemctl\s"
    r"|journalctl\s|sudo\s|apt(?:-get)?\s|pip3?\s|python3?\s|[A-Z][A-Z0-9_]*=\S*\s+\S)"
)
_RUNS_UNTIL_STOPPED = (
    ("ingest",),
    ("api",),
    ("run",),
    ("probe",),
    ("simulate",),
    ("engine", "run"),
    ("alerts", "run"),
)
_COLLECTOR_TOPICS = ("ioc/v1/#", "v3/+/devices/+/up", "application/+/device/+/event/+")


# --- the documents ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class OptOut:
    """``<!-- not run[ `command`]: reason -->`` above a fence."""

    command: str | None  # None: the whole block
    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Command:
    """One command of an example, with the output a console block shows for it."""

    line: int
    text: str
    expected: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        """The shell text without a trailing comment and without a final ``&``."""
        code = _strip_comment(self.text).rstrip()
        return code[:-1].rstrip() if self.background else code

    @property
    def background(self) -> bool:
        code = _strip_comment(self.text).rstrip()
        return code.endswith("&") and not code.endswith("&&")


@dataclasses.dataclass(frozen=True, slots=True)
class Block:
    """A fenced block of a document."""

    document: str
    line: int  # of the opening fence, 1-based
    tag: str
    body: tuple[str, ...]
    opt_outs: tuple[OptOut, ...]

    @property
    def name(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def not_run(self) -> str | None:
        """Why the whole block is left out, or None."""
        return next((o.reason for o in self.opt_outs if o.command is None), None)

    def commands(self) -> list[Command]:
        return _console_commands(self) if self.tag == "console" else _sh_commands(self)

    def skipped(self, command: Command) -> OptOut | None:
        text = command.text.lstrip()
        return next(
            (o for o in self.opt_outs if o.command is not None and text.startswith(o.command)),
            None,
        )


def _strip_comment(text: str) -> str:
    """Shell text up to an unquoted ``#`` that starts a word."""
    quote: str | None = None
    escaped = False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote is not None:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i]
    return text


def _joined(lines: Sequence[str], start: int) -> tuple[str, int]:
    """The command starting at ``lines[start]`` with its backslash continuations; next index."""
    parts = [lines[start]]
    end = start + 1
    while parts[-1].rstrip().endswith("\\") and end < len(lines):
        parts.append(lines[end])
        end += 1
    return "\n".join(parts), end


def _sh_commands(block: Block) -> list[Command]:
    commands: list[Command] = []
    i = 0
    while i < len(block.body):
        line = block.body[i]
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        text, end = _joined(block.body, i)
        commands.append(Command(block.line + 1 + i, text))
        i = end
    return commands


def _console_commands(block: Block) -> list[Command]:
    commands: list[Command] = []
    i = 0
    while i < len(block.body):
        if not block.body[i].startswith("$ "):
            i += 1
            continue
        line = block.line + 1 + i
        text, i = _joined(block.body, i)
        start = i
        while i < len(block.body) and block.body[i].strip() and not block.body[i].startswith("$ "):
            i += 1
        commands.append(Command(line, text[2:], tuple(block.body[start:i])))
    return commands


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    """The fenced blocks of one document, and what is wrong with its opt-out comments."""

    blocks: tuple[Block, ...]
    problems: tuple[str, ...]


def parse_document(name: str, text: str) -> Document:
    blocks: list[Block] = []
    problems: list[str] = []
    pending: list[tuple[int, OptOut]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line, number = lines[i], i + 1
        fence = _FENCE.match(line)
        if fence is not None:
            indent, mark = fence["indent"], fence["fence"]
            body: list[str] = []
            i += 1
            while i < len(lines) and not (
                lines[i].strip().startswith(mark) and not lines[i].strip().strip(mark[0])
            ):
                body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
                i += 1
            opt_outs = tuple(o for _, o in pending)
            blocks.append(Block(name, number, fence["tag"], tuple(body), opt_outs))
            pending = []
        elif re.match(r"\s*<!--\s*not run", line):
            match = _OPT_OUT.match(line)
            if match is None:
                problems.append(f"{name}:{number}: not `<!-- not run[ `command`]: reason -->`")
            else:
                pending.append((number, OptOut(match["command"], match["reason"])))
        elif pending:
            problems.extend(
                f"{name}:{n}: an opt-out not directly above a fence" for n, _ in pending
            )
            pending = []
        i += 1
    problems.extend(f"{name}:{n}: an opt-out not directly above a fence" for n, _ in pending)
    return Document(tuple(blocks), tuple(problems))


def _documents() -> dict[str, Document]:
    return {
        name: parse_document(name, (ROOT / name).read_text(encoding="utf-8")) for name in DOCUMENTS
    }


def _examples() -> list[Block]:
    return [b for d in _documents().values() for b in d.blocks if b.tag in RUN_TAGS]


def runs_until_stopped(code: str) -> bool:
    """Whether a command is one of ``ioc``'s long-running processes (see the module docstring)."""
    try:
        words = shlex.split(code)
    except ValueError:
        return False
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words.pop(0)
    if not words or Path(words[0]).name != "ioc" or {"--once", "--write-registry"} & set(words):
        return False
    positional = [w for w in words[1:] if not w.startswith("-")]
    if positional[:2] == ["stack", "up"]:
        return "--foreground" in words
    return any(tuple(positional[: len(p)]) == p for p in _RUNS_UNTIL_STOPPED)


# --- the convention (no services) --------------------------------------------------------------


def test_every_example_is_tagged_and_every_opt_out_says_why() -> None:
    documents = _documents()
    problems = [p for d in documents.values() for p in d.problems]
    for block in (b for d in documents.values() for b in d.blocks):
        if block.tag not in RUN_TAGS:
            command = next((line for line in block.body if _LOOKS_LIKE_COMMAND.match(line)), None)
            if command is not None:
                problems.append(
                    f"{block.name}: `{command.strip()}` looks like a command: tag the block sh "
                    "or console (or opt it out)"
                )
            continue
        commands = block.commands()
        if not commands:
            problems.append(f"{block.name}: a {block.tag} block without a command")
        for opt_out in block.opt_outs:
            if len(opt_out.reason.split()) < 3:
                problems.append(f"{block.name}: opt-out without a reason: {opt_out.reason!r}")
            if opt_out.command is not None and not any(
                block.skipped(c) is opt_out for c in commands
            ):
                problems.append(f"{block.name}: no command starts with `{opt_out.command}`")
    assert not problems, "\n".join(problems)
    assert any(b.not_run is None for b in _examples()), "no example to run"


def test_the_parser_reads_the_convention() -> None:
    text = "\n".join(
        [
            "<!-- not run `ioc run`: runs until Ctrl-C, tested elsewhere -->",
            "```sh",
            "ioc stack up   # start",
            "mosquitto_sub -t 'ioc/#' -v &",
            "curl -s http://127.0.0.1:18086/query \\",
            "  --data-urlencode 'q=SHOW DATABASES'",
            "ioc run",
            "```",
            "",
            "```console",
            "$ ioc keys list",
            "KEY_ID  STATUS",
            "",
            "$ ioc keys revoke 3f9a1c2b7d4e",
            "```",
            "<!-- not run because -->",
            "text",
        ]
    )
    document = parse_document("x.md", text)
    assert document.problems == ("x.md:16: not `<!-- not run[ `command`]: reason -->`",), (
        document.problems
    )
    sh, console = document.blocks
    commands = sh.commands()
    assert [c.line for c in commands] == [3, 4, 5, 7]
    assert commands[0].code == "ioc stack up"
    assert commands[1].background and commands[1].code == "mosquitto_sub -t 'ioc/#' -v"
    assert "SHOW DATABASES" in commands[2].text and not commands[2].background
    assert [sh.skipped(c) is not None for c in commands] == [False, False, False, True]
    assert [(c.line, c.text, c.expected) for c in console.commands()] == [
        (11, "ioc keys list", ("KEY_ID  STATUS",)),
        (14, "ioc keys revoke 3f9a1c2b7d4e", ()),
    ]
    assert runs_until_stopped(".venv/bin/ioc engine run")
    assert runs_until_stopped("IOC_REGISTRY_FILE=var/load.toml ioc ingest")
    assert not runs_until_stopped("ioc engine run --once")
    assert not runs_until_stopped("ioc simulate load --devices 10 --write-registry var/x.toml")
    assert not runs_until_stopped("ioc stack up")


# --- output patterns of console blocks ---------------------------------------------------------

_TOKEN = re.compile(
    r"(?P<key>ioc_[0-9a-f]{12}_[A-Za-z0-9_-]*(?:\.\.\.)?)"
    r"|(?P<id>\b[0-9a-f]{12}\b)"
    r"|(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))"
    r"|(?P<ellipsis>\.\.\.)"
    r"|(?P<space>\s+)"
)
_ANY_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)"


def output_pattern(expected: str, bindings: dict[str, str]) -> tuple[re.Pattern[str], list[str]]:
    """A regular expression for an expected output line, and the sample tokens it captures.

    A sample key id or key already bound matches only its real value; one not yet bound is
    captured (group ``g<i>`` for the i-th returned token) so that later commands can use it.
    """
    parts: list[str] = []
    captured: list[str] = []
    position = 0
    for token in _TOKEN.finditer(expected):
        parts.append(re.escape(expected[position : token.start()]))
        text, kind = token.group(), token.lastgroup
        if kind in ("key", "id") and text in bindings:
            parts.append(re.escape(bindings[text]))
        elif kind in ("key", "id") and text not in captured:
            shape = r"ioc_[0-9a-f]{12}_[A-Za-z0-9_-]{20,}" if kind == "key" else r"[0-9a-f]{12}"
            parts.append(f"(?P<g{len(captured)}>{shape})")
            captured.append(text)
        elif kind in ("key", "id"):
            parts.append(f"(?P=g{captured.index(text)})")
        elif kind == "time":
            parts.append(_ANY_TIME)
        elif kind == "ellipsis":
            parts.append(".*?")
        else:
            parts.append(r"\s+")
        position = token.end()
    parts.append(re.escape(expected[position:]))
    return re.compile("".join(parts)), captured


def match_output(expected: Sequence[str], output: str, bindings: dict[str, str]) -> list[str]:
    """Check that ``output`` holds the expected lines in order; bind the sample tokens.

    Returns the expected lines that were not found (empty when all were).
    """
    lines = [line.rstrip() for line in output.splitlines()]
    at = 0
    for n_wanted, wanted in enumerate(expected):
        pattern, captured = output_pattern(wanted.rstrip(), bindings)
        for i in range(at, len(lines)):
            match = pattern.fullmatch(lines[i])
            if match is not None:
                for n, sample in enumerate(captured):
                    bindings[sample] = match[f"g{n}"]
                    if sample.startswith("ioc_"):  # the key's id is bound with the key
                        bindings.setdefault(sample.split("_")[1], match[f"g{n}"].split("_")[1])
                at = i + 1
                break
        else:
            return list(expected[n_wanted:])
    return []


def test_output_patterns_bind_the_sample_key_and_id() -> None:
    bindings: dict[str, str] = {}
    output = (
        "created API key 0123456789ab (hcmc wall), scope read (79), expires 2027-01-01T00:00:00Z\n"
        "The key is shown only this once; store it now:\n"
        "ioc_0123456789ab_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ\n"
        "KEY_ID        STATUS\n"
        "0123456789ab  active\n"
    )
    expected = [
        "created API key 3f9a1c2b7d4e (hcmc wall), scope read (79), expires "
        "2026-11-21T08:00:00+00:00",
        "ioc_3f9a1c2b7d4e_1uP...",
        "KEY_ID  STATUS",
        "3f9a1c2b7d4e  active",
    ]
    assert match_output(expected, output, bindings) == []
    assert bindings["3f9a1c2b7d4e"] == "0123456789ab"
    assert bindings[SAMPLE_KEY].startswith("ioc_0123456789ab_")
    assert match_output(["3f9a1c2b7d4e  revoked"], output, bindings) == ["3f9a1c2b7d4e  revoked"]


# --- stand-ins for curl and the mosquitto clients (run as scripts by the examples) -------------


def _record(entry: dict[str, Any]) -> None:
    """Append what a stand-in did to ``$EXAMPLES_LOG`` (the lab reads it after the command)."""
    path = os.environ.get("EXAMPLES_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")


def _options(
    tool: str, argv: Sequence[str], with_value: str, flags: str, long: dict[str, str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """Parse short options (``-su value`` style groups) and long ones, as curl and mosquitto do.

    ``long`` maps a long option to its short letter, or to a name of its own when it has none
    (such a name ends with ``=`` when the option takes a value). Returns the options in order
    (by letter or own name) and the other words.
    """
    options: list[tuple[str, str]] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        i += 1
        if word.startswith("--"):
            name, _, inline = word.partition("=")
            letter = long.get(name)
            if letter is None:
                raise SystemExit(f"{tool} (examples stand-in): option {name} is not supported")
            if letter.endswith("=") or (len(letter) == 1 and letter in with_value):
                value = inline if inline else argv[i]
                i += 0 if inline else 1
                options.append((letter, value))
            else:
                options.append((letter, ""))
        elif word.startswith("-") and len(word) > 1:
            for n, letter in enumerate(word[1:], start=1):
                if letter in with_value:
                    value = word[n + 1 :] or argv[i]
                    i += 0 if word[n + 1 :] else 1
                    options.append((letter, value))
                    break
                if letter not in flags:
                    raise SystemExit(f"{tool} (examples stand-in): option -{letter} unsupported")
                options.append((letter, ""))
        else:
            rest.append(word)
    return options, rest


def _curl_urllib(argv: Sequence[str]) -> tuple[int, bytes]:
    """What ``curl`` would fetch, with urllib, for the options the docs use."""
    long = {
        "--silent": "s",
        "--show-error": "S",
        "--get": "G",
        "--fail": "f",
        "--fail-with-body": "f",
        "--location": "L",
        "--header": "H",
        "--data": "d",
        "--data-raw": "d",
        "--data-binary": "d",
        "--data-urlencode": "--data-urlencode=",
        "--request": "X",
        "--user": "u",
        "--url": "--url=",
    }
    options, rest = _options("curl", argv, "HdXu", "sSGfL", long)
    urls = [v for k, v in options if k == "--url="] + rest
    assert len(urls) == 1, f"curl (examples stand-in): one URL expected, got {urls}"
    data: list[str] = []
    headers: dict[str, str] = {}
    method: str | None = None
    for option, value in options:
        if option == "d":
            data.append(
                Path(value[1:]).read_text().replace("\n", "") if value[:1] == "@" else value
            )
        elif option == "--data-urlencode=":
            name, equals, content = value.partition("=")
            data.append(
                f"{name}={urllib.parse.quote_plus(content)}"
                if equals
                else urllib.parse.quote_plus(value)
            )
        elif option == "H":
            header, _, header_value = value.partition(":")
            headers[header.strip()] = header_value.strip()
        elif option == "X":
            method = value
        elif option == "u":
            headers["Authorization"] = "Basic " + b64encode(value.encode()).decode()
    url, body = urls[0], "&".join(data).encode() if data else None
    if body is not None and ("G", "") in options:
        url += ("&" if "?" in url else "?") + body.decode()
        body = None
    if body is not None:
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _influx_error(body: bytes) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    if not isinstance(answer, dict):
        return None
    if isinstance(answer.get("error"), str):
        return str(answer["error"])
    results = answer.get("results")
    errors = [r["error"] for r in results if "error" in r] if isinstance(results, list) else []
    return "; ".join(errors) or None


def curl_main(argv: Sequence[str]) -> int:
    """``curl`` for the examples: the real one (or urllib), and HTTP 2xx or a failure."""
    own = os.environ.get("EXAMPLES_STAND_INS", "")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != own)
    real = shutil.which("curl", path=path)
    if real is not None and os.environ.get("EXAMPLES_CURL") != "urllib":
        answer = subprocess.run(
            [real, *argv, "--write-out", "\n%{http_code}"], stdout=subprocess.PIPE, check=False
        )
        if answer.returncode != 0:
            return answer.returncode
        body, _, code = answer.stdout.rpartition(b"\n")
        status = int(code)
    else:
        status, body = _curl_urllib(argv)
    sys.stdout.buffer.write(body)
    sys.stdout.flush()
    _record({"tool": "curl", "argv": list(argv), "status": status, "body": body.decode()})
    if not 200 <= status < 300:
        print(f"\ncurl: the server answered HTTP {status}", file=sys.stderr)
        return 22
    error = _influx_error(body)
    if error is not None:
        print(f"\ncurl: InfluxDB answered an error: {error}", file=sys.stderr)
        return 1
    return 0


_MQTT_LONG = {"--quiet": "--quiet"}


def _mqtt_client(options: Sequence[tuple[str, str]]) -> tuple[Any, str, int]:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    values = dict(options)
    protocols = {
        "mqttv5": MQTTProtocolVersion.MQTTv5,
        "5": MQTTProtocolVersion.MQTTv5,
        "mqttv311": MQTTProtocolVersion.MQTTv311,
        "311": MQTTProtocolVersion.MQTTv311,
        "mqttv31": MQTTProtocolVersion.MQTTv31,
        "31": MQTTProtocolVersion.MQTTv31,
    }
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=values.get("i", f"examples-{uuid.uuid4().hex[:8]}"),
        protocol=protocols[values.get("V", "mqttv311")],
    )
    if "u" in values:
        client.username_pw_set(values["u"], values.get("P"))
    return client, values.get("h", "localhost"), int(values.get("p", "1883"))


def mosquitto_pub_main(argv: Sequence[str]) -> int:
    """``mosquitto_pub -h -p -t -m|-f|-n -q -r -u -P -i -V`` on paho: publish, await the ack."""
    options, rest = _options("mosquitto_pub", argv, "hptmfqiuPVk", "rnd", _MQTT_LONG)
    if rest or "t" not in dict(options):
        print("mosquitto_pub (examples stand-in): -t TOPIC is required", file=sys.stderr)
        return 1
    values = dict(options)
    if "f" in values:
        payload = Path(values["f"]).read_bytes()
    elif "n" in values:
        payload = b""
    else:
        payload = values.get("m", "").encode()
    client, host, port = _mqtt_client(options)
    try:
        client.connect(host, port, keepalive=int(values.get("k", "60")))
    except OSError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    client.loop_start()
    try:
        info = client.publish(
            values["t"], payload, qos=int(values.get("q", "0")), retain="r" in values
        )
        info.wait_for_publish(timeout=10)
        if not info.is_published():
            print("Error: the broker did not acknowledge the message", file=sys.stderr)
            return 1
    finally:
        client.disconnect()
        client.loop_stop()
    _record(
        {"tool": "mosquitto_pub", "topic": values["t"], "payload": payload.decode(errors="replace")}
    )
    return 0


def mosquitto_sub_main(argv: Sequence[str]) -> int:
    """``mosquitto_sub -h -p -t... -q -v -C -W -u -P -i -V`` on paho, until SIGINT/SIGTERM."""
    options, rest = _options("mosquitto_sub", argv, "hptqiuPVCWk", "vd", _MQTT_LONG)
    topics = [v for k, v in options if k == "t"]
    if rest or not topics:
        print("mosquitto_sub (examples stand-in): -t TOPIC is required", file=sys.stderr)
        return 1
    values = dict(options)
    client, host, port = _mqtt_client(options)
    qos, count = int(values.get("q", "0")), int(values.get("C", "0"))
    received = 0

    def on_connect(c: Any, _userdata: object, _flags: object, _reason: object, _p: object) -> None:
        c.subscribe([(topic, qos) for topic in topics])

    def on_subscribe(_c: Any, _userdata: object, _mid: object, _codes: object, _p: object) -> None:
        ready = os.environ.get("EXAMPLES_READY_FILE")
        if ready:
            Path(ready).touch()

    def on_message(c: Any, _userdata: object, message: Any) -> None:
        nonlocal received
        payload = message.payload.decode(errors="replace")
        print(f"{message.topic} {payload}" if "v" in values else payload, flush=True)
        _record({"tool": "mosquitto_sub", "topic": message.topic, "payload": payload})
        received += 1
        if count and received >= count:
            c.disconnect()

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda _n, _f: client.disconnect())
    if "W" in values:
        timer = threading.Timer(float(values["W"]), client.disconnect)
        timer.daemon = True
        timer.start()
    try:
        client.connect(host, port, keepalive=int(values.get("k", "60")))
    except OSError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    client.loop_forever()
    return 0


STAND_INS: dict[str, Callable[[Sequence[str]], int]] = {
    "curl": curl_main,
    "mosquitto_pub": mosquitto_pub_main,
    "mosquitto_sub": mosquitto_sub_main,
}


def run_stand_in(tool: str, argv: Sequence[str]) -> int:
    return STAND_INS[tool](argv)


# --- the lab: a private stack and the runner ---------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Ran:
    """What one command did."""

    block: Block
    command: Command
    text: str  # as run, after the rewrites
    returncode: int
    stdout: str
    stderr: str
    records: tuple[dict[str, Any], ...]  # what the stand-ins logged
    started_ns: int

    def describe(self) -> str:
        return (
            f"{self.block.document}:{self.command.line}: `{self.text}` exited {self.returncode}\n"
            f"--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Claim:
    """What a particular example says it shows, checked on what it printed."""

    pattern: re.Pattern[str]  # searched in the command as written in the document
    what: str
    check: Callable[[Ran], None]


def _series(ran: Ran) -> list[dict[str, Any]]:
    answer = json.loads(ran.stdout)
    return [s for result in answer["results"] for s in result.get("series", [])]


def _check_policies(ran: Ran) -> None:
    (series,) = _series(ran)
    rows = [dict(zip(series["columns"], row, strict=True)) for row in series["values"]]
    assert {"raw", "derived", "ops"} <= {r["name"] for r in rows}, rows  # and InfluxDB's autogen
    assert [r["name"] for r in rows if r["default"]] == ["raw"], rows


def _check_latest_vn_aqi(ran: Ran) -> None:
    rows = {
        s["tags"]["province"]: dict(zip(s["columns"], s["values"][0], strict=True))
        for s in _series(ran)
    }
    assert set(DEMO_PROVINCES) <= set(rows), rows
    for province in DEMO_PROVINCES:
        assert rows[province]["last"] is not None and rows[province]["origin"], rows[province]


def _check_stored_reading(ran: Ran) -> None:
    (series,) = _series(ran)
    assert series["values"][0][1] == 35.2, series


def _check_catalog(ran: Ran) -> None:
    assert "vn_aqi" in ran.stdout, ran.stdout[:500]


def _check_task_groups(ran: Ran) -> None:
    (item,) = json.loads(ran.stdout)["items"]
    assert item["text"] == "16 of 16 task groups, 130 of 130 communes", item
    assert item["counts_consistent"] is True, item


def _check_overdue_per_register(ran: Ran) -> None:
    items = json.loads(ran.stdout)["items"]
    values = {i["place"]["code"]: i["value"] for i in items}
    assert values == {"01-tasks": 18.0, "01-tasks-central": 12.0}, values


def _check_systems_up(ran: Ran) -> None:
    for item in json.loads(ran.stdout)["items"]:
        sources = item["coverage_detail"]["sources"]
        said = f"{sources['reporting']} of {sources['expected']} systems up"
        assert item["coverage_detail"]["text"].startswith(said), item["coverage_detail"]
        assert item["value"] == sources["reporting"], item


def _check_calendar(ran: Ran) -> None:
    answer = json.loads(ran.stdout)
    numerator, denominator = answer["numerator"], answer["denominator"]
    assert 0 <= numerator <= denominator, answer
    if denominator:
        exact = Decimal(100) * Decimal(numerator) / Decimal(denominator)
        assert answer["value"] == float(exact.quantize(Decimal("0.01"), ROUND_HALF_UP)), answer


CLAIMS = (
    Claim(
        re.compile(r"curl .*/api/v1/tasks/groups\?province=40"),
        "Nghệ An's 16 of 16 task groups in 130 of 130 communes",
        _check_task_groups,
    ),
    Claim(
        re.compile(r"curl .*/tasks_overdue/values\?level=source&province=01"),
        "Hà Nội's overdue tasks per register, 18 and 12",
        _check_overdue_per_register,
    ),
    Claim(
        re.compile(r"curl .*/systems_up/values"),
        "n of m systems up, in numbers and in words",
        _check_systems_up,
    ),
    Claim(
        re.compile(r"curl .*/calendar\?"),
        "a day's or month's rate, the ratio of the summed counts",
        _check_calendar,
    ),
    Claim(
        re.compile(r"SHOW RETENTION POLICIES ON ioc"),
        "raw (default), derived, ops",
        _check_policies,
    ),
    Claim(
        re.compile(r"indicator='vn_aqi' AND level='province' GROUP BY province"),
        "the latest VN_AQI of every demo province, with its station",
        _check_latest_vn_aqi,
    ),
    Claim(
        re.compile(r"SELECT pm25 FROM raw\.air WHERE source='01-air-hoan-kiem'"),
        "the reading just published",
        _check_stored_reading,
    ),
    Claim(  # the catalog itself, not one indicator's values (/indicators/{key}/...)
        re.compile(r"curl .*/api/v1/indicators(?![/\w])"), "the indicator catalog", _check_catalog
    ),
)


class Lab:
    """A private stack, its environment for the examples, and the runner of blocks."""

    def __init__(self, base: Path) -> None:
        from ioc.settings import load_settings
        from ioc.stack import free_ports
        from tests.conftest import stack_environment

        [api_port] = free_ports(1)
        self.base = base
        self.env = stack_environment(
            base / "var",
            IOC_INFLUX_DB="ioc",
            IOC_API_PORT=str(api_port),
            IOC_API_CACHE_SECONDS="0",
        )
        self.settings = load_settings(self.env)
        self.ports = {  # default -> this lab's
            "11883": self.env["IOC_MQTT_PORT"],
            "18086": str(urllib.parse.urlsplit(self.env["IOC_INFLUX_URL"]).port),
            "18088": self.env["IOC_INFLUX_RPC_PORT"],
            "18080": str(api_port),
            "19093": str(urllib.parse.urlsplit(self.env["IOC_ALERTMANAGER_URL"]).port),
        }
        self.stand_ins = base / "bin"
        self.checkout = base / "checkout"
        self.logs = base / "logs"
        self.key = ""
        self.api: subprocess.Popen[bytes] | None = None
        self.claimed: set[str] = set()
        self.ran: list[Ran] = []

    # -- setting up ----------------------------------------------------------------------------

    def _layout(self) -> None:
        """Stand-ins on PATH, and the checkout's layout with this lab's ``var/`` and ``ioc``."""
        self.stand_ins.mkdir()
        self.logs.mkdir()
        (self.base / "var").mkdir(exist_ok=True)
        for tool in STAND_INS:
            self._script(
                self.stand_ins / tool,
                f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                "from tests.test_examples import run_stand_in\n"
                f"sys.exit(run_stand_in({tool!r}, sys.argv[1:]))\n",
            )
        self._script(self.stand_ins / "ioc", f'#!/bin/sh\nexec {sys.executable} -m ioc.cli "$@"\n')
        self._script(self.stand_ins / "python", f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        self.checkout.mkdir()
        for entry in ROOT.iterdir():
            if entry.name not in {"var", ".venv", ".git"}:
                (self.checkout / entry.name).symlink_to(entry)
        (self.checkout / "var").symlink_to(self.base / "var")
        venv_bin = self.checkout / ".venv" / "bin"
        venv_bin.mkdir(parents=True)
        for tool in ("ioc", "python"):  # .venv/bin/ioc is `python -m ioc.cli` of this interpreter
            (venv_bin / tool).symlink_to(self.stand_ins / tool)

    @staticmethod
    def _script(path: Path, text: str) -> None:
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)

    def environment(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IOC_", "EXAMPLES_"))}
        env.update(self.env)
        env["PATH"] = os.pathsep.join([str(self.stand_ins), env.get("PATH", "")])
        env["EXAMPLES_STAND_INS"] = str(self.stand_ins)
        env.update(extra)
        return env

    @contextlib.contextmanager
    def running(self) -> Iterator[Lab]:
        from ioc.api.keys import KeyStore
        from ioc.stack import LocalStack

        self._layout()
        stack = LocalStack(self.settings)
        try:
            stack.up(die_with_parent=True)
            self.key = KeyStore(self.settings.api_keys_path).create("examples", "operator")[1]
            self._demo_data()
            yield self
        finally:
            self.stop_api()
            stack.down()

    def ensure_stack(self) -> None:
        """Start whatever of the stack is not running."""
        from ioc.stack import LocalStack

        LocalStack(self.settings).up(die_with_parent=True)

    def _demo_data(self) -> None:
        """3 h of the demo fleet through a collector, and its indicators (as ``make run``)."""
        from ioc.catalog import get_catalog
        from ioc.engine import Engine
        from ioc.store import Store

        end = time.time_ns()
        with self.collector() as collector:
            published = subprocess.run(
                [sys.executable, "-m", "ioc.cli", "simulate", "--history", "3h", "--once"],
                env=self.environment(),
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
            history = re.search(r"history: (\d+) messages", published)
            assert history is not None, published
            sent = int(history[1])
            _wait_for(lambda: collector.counters["acked"] >= sent, 60, "the demo history stored")
        with Store(self.settings) as store:
            Engine(self.settings, get_catalog(), store).backfill(end - 3 * 3600 * 10**9, end)

    @contextlib.contextmanager
    def collector(self) -> Iterator[Any]:
        """A real collector of its own (plain subscription: it gets every message)."""
        from tests.ingest.test_collector import running

        settings = dataclasses.replace(
            self.settings, ingest_id=f"examples-{uuid.uuid4().hex[:8]}", ingest_group=None
        )
        with running(settings) as collector:
            yield collector

    def start_api(self) -> None:
        if self.api is not None:
            return
        with (self.logs / "api.log").open("ab") as log:
            self.api = subprocess.Popen(
                [sys.executable, "-m", "ioc.cli", "api"],
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{self.ports['18080']}/api/v1/health/live"

        def answers() -> bool:
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return True
            except OSError:
                return False

        _wait_for(answers, 30, "the API")

    def stop_api(self) -> None:
        if self.api is not None:
            _stop(self.api)
            self.api = None

    # -- running -------------------------------------------------------------------------------

    def rewrite(self, text: str, bindings: dict[str, str]) -> str:
        for default, port in self.ports.items():
            text = re.sub(rf"(?<![\w.]){default}(?!\w)", port, text)
        for sample in sorted(bindings, key=len, reverse=True):
            text = text.replace(sample, bindings[sample])
        return text

    def run_block(self, block: Block) -> None:
        """Run a block's commands in order and check them (see the module docstring)."""
        try:
            self._run_block(block)
        finally:
            self.ensure_stack()  # start again what an example's `ioc stack down` stopped

    def _run_block(self, block: Block) -> None:
        commands = [c for c in block.commands() if block.skipped(c) is None]
        if any(runs_until_stopped(c.code) and _words(c.code)[1:2] == ["api"] for c in commands):
            self.stop_api()  # the example starts its own on the API port
        elif any(":18080" in c.text for c in commands):
            self.start_api()
        placeholders = {
            SAMPLE_KEY: self.key,
            "$KEY": self.key,
            "${KEY}": self.key,
            "<key>": self.key,
        }
        learned: dict[str, str] = {}  # sample key and key id -> what this block's commands printed
        publishes = any(_words(c.code)[:1] == ["mosquitto_pub"] for c in commands)
        with contextlib.ExitStack() as stack:
            collector = stack.enter_context(self.collector()) if publishes else None
            background: list[tuple[Command, subprocess.Popen[bytes], Path, Path]] = []
            published: list[dict[str, Any]] = []
            try:
                for command in commands:
                    text = self.rewrite(command.code, placeholders | learned)
                    if command.background:
                        background.append((command, *self._start_background(text)))
                        continue
                    before = dict(collector.counters) if collector is not None else {}
                    ran = self.run_command(block, command, text)
                    self.ran.append(ran)
                    assert ran.returncode == 0, ran.describe()
                    missing = match_output(
                        [self.rewrite(line, {}) for line in command.expected], ran.stdout, learned
                    )
                    assert not missing, f"{ran.describe()}\n--- missing, in order\n" + "\n".join(
                        missing
                    )
                    pubs = [r for r in ran.records if r["tool"] == "mosquitto_pub"]
                    if collector is not None and pubs:
                        self._check_stored(ran, pubs, collector, before)
                    published.extend(pubs)
                    for claim in CLAIMS:
                        if claim.pattern.search(command.text):
                            claim.check(ran)
                            self.claimed.add(claim.what)
                self._check_subscribers(block, background, published)
            finally:
                failures = [
                    f"{block.document}:{c.line}: `{c.code}` {why}"
                    for c, process, _, out in background
                    if (why := _stop_background(process, out))
                ]
            assert not failures, "\n".join(failures)

    def run_command(self, block: Block, command: Command, text: str, **extra: str) -> Ran:
        started_ns = time.time_ns()
        log = self.logs / f"{uuid.uuid4().hex}.jsonl"
        env = self.environment(EXAMPLES_LOG=str(log), **extra)
        if runs_until_stopped(command.code):
            out, err = self.logs / f"{log.stem}.out", self.logs / f"{log.stem}.err"
            with out.open("wb") as stdout, err.open("wb") as stderr:
                process = subprocess.Popen(
                    [BASH, "-c", text],
                    cwd=self.checkout,
                    env=env,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
                _wait_for(
                    lambda: process.poll() is not None or out.stat().st_size or err.stat().st_size,
                    30,
                    f"`{text}` to start",
                )
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(SERVICE_WINDOW_S)
                returncode = process.poll()
                if returncode is None:
                    returncode = _stop(process)
            stdout_text, stderr_text = (
                out.read_text(errors="replace"),
                err.read_text(errors="replace"),
            )
        else:
            try:
                answer = subprocess.run(
                    [BASH, "-c", text],
                    cwd=self.checkout,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=COMMAND_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired as exc:
                raise AssertionError(
                    f"{block.document}:{command.line}: `{text}` did not end within "
                    f"{COMMAND_TIMEOUT_S:.0f} s; a command that runs until stopped must stand "
                    "alone on its line"
                ) from exc
            returncode, stdout_text, stderr_text = answer.returncode, answer.stdout, answer.stderr
        records = _read_log(log)
        return Ran(block, command, text, returncode, stdout_text, stderr_text, records, started_ns)

    def _start_background(self, text: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
        name = uuid.uuid4().hex
        log, ready, out = (self.logs / f"{name}{suffix}" for suffix in (".jsonl", ".ready", ".out"))
        with out.open("wb") as output:
            process = subprocess.Popen(
                [BASH, "-c", text],
                cwd=self.checkout,
                env=self.environment(EXAMPLES_LOG=str(log), EXAMPLES_READY_FILE=str(ready)),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if _words(text)[:1] == ["mosquitto_sub"]:
            _wait_for(lambda: ready.exists() or process.poll() is not None, 20, "the subscription")
        else:
            time.sleep(1.0)  # a process that fails at start shows it by then
        return process, log, out

    def _check_stored(
        self, ran: Ran, pubs: list[dict[str, Any]], collector: Any, before: dict[str, int]
    ) -> None:
        """Each message published on a collector topic is stored, and nothing dead-lettered."""
        from paho.mqtt.client import topic_matches_sub

        from ioc.store import Store

        ours = [p for p in pubs if any(topic_matches_sub(s, p["topic"]) for s in _COLLECTOR_TOPICS)]
        if not ours:
            return
        _wait_for(
            lambda: collector.counters["acked"] >= before.get("acked", 0) + len(ours),
            30,
            f"the collector to store what {ran.command.text!r} published",
        )

        def letters(counters: dict[str, int]) -> dict[str, int]:
            return {k: v for k, v in counters.items() if k.startswith("dead_letters.")}

        new = {k: v - before.get(k, 0) for k, v in letters(dict(collector.counters)).items()}
        assert not any(new.values()), f"{ran.describe()}\n--- dead-lettered: {new}"
        assert collector.counters["readings"] > before.get("readings", 0), ran.describe()
        with Store(self.settings) as store:
            for pub in ours:
                stored = store.query(
                    'SELECT * FROM "ops"."dead_letter" WHERE "topic" = $topic AND time >= '
                    f"{ran.started_ns}",
                    {"topic": pub["topic"]},
                )
                assert not stored, f"{ran.describe()}\n--- dead letters: {stored[0].values}"
                for source, at in _ioc_json(pub["payload"]):
                    points = store.query(
                        f'SELECT * FROM "raw"./.*/ WHERE "source" = $source AND time = {at}',
                        {"source": source},
                    )
                    assert points, f"{ran.describe()}\n--- no point of {source} at {at} ns"

    def _check_subscribers(
        self,
        block: Block,
        background: Sequence[tuple[Command, subprocess.Popen[bytes], Path, Path]],
        published: Sequence[dict[str, Any]],
    ) -> None:
        """A background ``mosquitto_sub`` receives what its block published on its topics."""
        from paho.mqtt.client import topic_matches_sub

        for command, _process, log, _out in background:
            words = _words(command.code)
            if words[:1] != ["mosquitto_sub"]:
                continue
            filters = [words[i + 1] for i, w in enumerate(words[:-1]) if w == "-t"]
            for pub in published:
                if not any(topic_matches_sub(f, pub["topic"]) for f in filters):
                    continue

                def seen(pub: dict[str, Any] = pub, log: Path = log) -> bool:
                    return any(
                        r["topic"] == pub["topic"] and r["payload"] == pub["payload"]
                        for r in _read_log(log)
                    )

                _wait_for(
                    seen,
                    10,
                    f"{block.document}:{command.line}: `{command.code}` to print {pub['topic']}",
                )


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        return text.split()


def _ioc_json(payload: str) -> set[tuple[str, int]]:
    """The (source, time in ns) of each reading of an IOC JSON payload; empty if it is not one."""
    from ingest.formats.ioc_json import parse_ioc_json
    from ioc.errors import IocError

    try:
        return {(r.device_ref, r.time) for r in parse_ioc_json(payload.encode())}
    except IocError:
        return set()


def _read_log(path: Path) -> tuple[dict[str, Any], ...]:
    if not path.exists():
        return ()
    return tuple(json.loads(line) for line in path.read_text().splitlines() if line)


def _wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> int:
    """SIGINT to the process group (Ctrl-C), SIGKILL if it is still there after 30 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return -9


def _stop_background(process: subprocess.Popen[bytes], out: Path) -> str | None:
    """Stop a background command; why it failed, or None."""
    code = process.poll()
    if code is not None:
        return None if code == 0 else f"exited {code}:\n{out.read_text(errors='replace')[-3000:]}"
    code = _stop(process)
    return None if code == 0 else f"did not stop on SIGINT ({code})"


# --- the examples --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    with Lab(tmp_path_factory.mktemp("examples")).running() as running:
        yield running


@pytest.mark.services
@pytest.mark.parametrize("block", [pytest.param(b, id=b.name) for b in _examples()])
def test_the_example_runs_as_written(lab: Lab, block: Block) -> None:
    if block.not_run is not None:
        pytest.skip(f"not run: {block.not_run}")
    lab.run_block(block)


@pytest.mark.services
def test_every_claim_was_checked(lab: Lab) -> None:
    if not lab.ran:
        pytest.skip("runs after the examples")
    unchecked = {c.what for c in CLAIMS} - lab.claimed
    assert not unchecked, f"no example ran for: {unchecked}"


@pytest.mark.services
def test_the_curl_stand_in_without_curl_gets_what_curl_gets(lab: Lab) -> None:
    """The urllib translation (used where curl is not installed) on every curl example that ran."""
    ran = [r for r in lab.ran if any(record["tool"] == "curl" for record in r.records)]
    if not ran:
        pytest.skip("runs after the examples")
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: every example already ran through urllib")
    for example in ran:
        with_curl = lab.run_command(example.block, example.command, example.text)
        with_urllib = lab.run_command(
            example.block, example.command, example.text, EXAMPLES_CURL="urllib"
        )
        assert with_urllib.returncode == 0, with_urllib.describe()
        assert _timeless(json.loads(with_urllib.stdout)) == _timeless(
            json.loads(with_curl.stdout)
        ), with_urllib.describe()


_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$")


def _timeless(answer: Any) -> Any:
    """The answer with its timestamps blanked: the two runs are a second apart, and an answer
    about "now" (a period ending now, a value's age) differs by that second, nothing else."""
    if isinstance(answer, dict):
        return {key: _timeless(value) for key, value in answer.items() if key != "age_s"}
    if isinstance(answer, list):
        return [_timeless(value) for value in answer]
    if isinstance(answer, str) and _TIMESTAMP.match(answer):
        return "<time>"
    return answer


def _json_blocks(document: str) -> list[Block]:
    return [b for b in _documents()[document].blocks if b.tag == "json"]


@pytest.mark.parametrize(
    "block", [pytest.param(b, id=b.name) for b in _json_blocks("docs/payloads.md")]
)
def test_the_payload_examples_parse(block: Block) -> None:
    from ingest.formats.ioc_json import parse_ioc_json

    readings = parse_ioc_json("\n".join(block.body).encode())
    assert readings, block.name


@pytest.mark.services
def test_the_silence_example_is_accepted(lab: Lab) -> None:
    """docs/api.md's body of ``POST /api/v1/alerts/silences``, sent with an operator key."""
    (body,) = [b for b in _json_blocks("docs/api.md") if '"matchers"' in "\n".join(b.body)]
    lab.start_api()
    request = urllib.request.Request(
        f"http://127.0.0.1:{lab.ports['18080']}/api/v1/alerts/silences",
        data="\n".join(body.body).encode(),
        headers={"X-API-Key": lab.key, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback
        assert answer.status == 201
        silence = json.loads(answer.read())
    assert silence["comment"] == "Kim Long gauge under maintenance", silence
