"""Scenarios 9-12: hostile input, ACL abuse, the API with InfluxDB down or slow, API abuse.

Unlike scenarios 1-8, these inject no process fault: they send what a careless or malicious
client would send, through the real broker and the real API (gunicorn) as child processes, and
check by effect that nothing breaks, nothing hostile is stored, and every refusal is counted.

* 9 :func:`hostile_input`: a fixed corpus plus hypothesis-generated payloads on every topic
  form the collector reads, with numbered good traffic alongside.
* 10 :func:`acl_abuse`: deploy/'s Mosquitto config with the generated password and ACL files.
* 11 :func:`api_influxdb_down`: the API with InfluxDB stopped, then stalled and slow behind the
  harness's :class:`~ioc.faults.proxy.Proxy`.
* 12 :func:`api_abuse`: a flood from one key, and every OpenAPI operation fed invalid
  parameters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import getpass
import json
import logging
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from random import Random
from types import TracebackType
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from ingest.deadletter import EXCERPT_BYTES
from ingest.router import SUBSCRIPTIONS
from ioc.api.keys import KeyStore
from ioc.catalog import get_catalog
from ioc.faults import Profile, ScenarioResult, Trial
from ioc.faults.harness import (
    Harness,
    fill,
    run_trials,
    stored_readings,
    wait_for,
    wait_until_stored,
)
from ioc.faults.proxy import Proxy
from ioc.mqtt import make_client
from ioc.settings import Settings
from ioc.stack import find_binary, free_ports, terminate_with_parent
from ioc.store import Store

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"
BIG = 10_240
"""The oversized parameter: 10 kB."""
DEVICE, VICTIM = "01-air-long-bien", "46-air-phu-xuan"
"""Two air stations with broker users of their own (not LoRaWAN) in the demo registry."""
OWN_TOPIC = {DEVICE: "ioc/v1/01/01-air-long-bien/air", VICTIM: "ioc/v1/46/46-air-phu-xuan/air"}


# --- the API as a child process ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer: status, headers (lower-case names), body, and how long it took."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    seconds: float

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def is_problem(self) -> bool:
        return self.media_type == PROBLEM_TYPE and isinstance(self.json(), dict)


class ApiProcess:
    """``ioc api`` (gunicorn) as a child process on a free loopback port, with its log file."""

    def __init__(self, env: Mapping[str, str], log_file: Path, port: int) -> None:
        self.env = dict(env)
        self.log_file = log_file
        self.port = port
        self.base = f"http://127.0.0.1:{port}/api/v1"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ioc.cli", "api"],
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **self.env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=terminate_with_parent,  # noqa: PLW1509
            )
        wait_for(self._live, timeout, f"the API on port {self.port} (see {self.log_file})")

    def _live(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the API exited with {self.process.returncode}: {self.log_file}")
        try:
            return self.get("/health/live", timeout=2).status == 200
        except OSError:
            return False

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("the API is not started")
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def worker_timeouts(self) -> int:
        """gunicorn's WORKER TIMEOUT lines: a worker killed because a request hung."""
        try:
            return self.log_file.read_text(errors="replace").count("WORKER TIMEOUT")
        except FileNotFoundError:
            return 0

    def get(
        self,
        path: str,
        query: Mapping[str, str] | list[tuple[str, str]] | None = None,
        *,
        key: str | None = None,
        timeout: float = 60.0,
    ) -> Answer:
        """GET ``/api/v1{path}``; any status is an answer (only a network failure raises)."""
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(url)  # noqa: S310 - loopback, our own server
        if key is not None:
            request.add_header("X-API-Key", key)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, body = error.code, error.headers, error.read()
        return Answer(
            status,
            {k.lower(): v for k, v in headers.items()},
            body,
            time.monotonic() - started,
        )

    def send(
        self, method: str, path: str, body: bytes, *, key: str, media: str = "application/json"
    ) -> Answer:
        """``method`` ``/api/v1{path}`` with a body of type ``media``; any status is an answer."""
        request = urllib.request.Request(  # noqa: S310 - loopback, our own server
            self.base + path,
            data=body,
            method=method,
            headers={"X-API-Key": key, "Content-Type": media},
        )
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                status, headers, data = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, data = error.code, error.headers, error.read()
        return Answer(
            status, {k.lower(): v for k, v in headers.items()}, data, time.monotonic() - started
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> ApiProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_api(
    h: Harness,
    scopes: Mapping[str, str],
    feeds: Mapping[str, tuple[str, ...]] | None = None,
    **env: str,
) -> tuple[ApiProcess, dict[str, str]]:
    """The API on the harness's stack (no response cache) and a key per name, of its scope;
    ``feeds``: feed keys by name, each for its sources."""
    [port] = free_ports(1)
    keys_file = h.workdir / "api" / "keys.json"
    api_env = {
        **h.env,
        "IOC_API_PORT": str(port),
        "IOC_API_CACHE_SECONDS": "0",
        "IOC_API_KEYS_FILE": str(keys_file),
        **env,
    }
    store = KeyStore(keys_file)
    keys = {name: store.create(name, scope)[1] for name, scope in scopes.items()}
    for name, sources in (feeds or {}).items():
        keys[name] = store.create(name, "feed", sources=sources)[1]
    api = ApiProcess(api_env, h.workdir / "api.log", port)
    api.start()
    return api, keys


# --- walking the OpenAPI document -------------------------------------------------------------

SAMPLE_PATH_VALUES = {
    "code": "01",
    "source": "01-air-hoan-kiem",
    "silence_id": "00000000-0000-4000-8000-000000000000",
}
"""A valid value of each path parameter the document names (``key`` takes its first enum)."""
WARD = "00070"
"""A registered ward (of 01-air-hoan-kiem), for ``/places/wards/{code}``."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One GET of the OpenAPI document: its concrete path and its query parameters' schemas."""

    template: str
    path: str
    query: dict[str, dict[str, Any]]
    required: frozenset[str] = frozenset()


def get_operations(document: Mapping[str, Any]) -> tuple[list[Operation], list[str]]:
    """Every GET of the document with sample path values; and the templates it cannot fill.

    ``document`` paths start with ``/api/v1``; the operations' paths are relative to it.
    """
    operations, unfilled = [], []
    for template, item in document.get("paths", {}).items():
        op = item.get("get")
        if op is None:
            continue
        parameters = [*item.get("parameters", ()), *op.get("parameters", ())]
        path = template.removeprefix("/api/v1")
        missing = False
        for parameter in parameters:
            if parameter.get("in") != "path":
                continue
            name, schema = parameter["name"], parameter.get("schema", {})
            if schema.get("enum"):
                value = str(schema["enum"][0])
            elif name == "code" and "/wards/" in template:
                value = WARD
            elif name in SAMPLE_PATH_VALUES:
                value = SAMPLE_PATH_VALUES[name]
            else:
                missing = True
                break
            path = path.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
        if missing:
            unfilled.append(template)
            continue
        query = {p["name"]: p.get("schema", {}) for p in parameters if p.get("in") == "query"}
        required = frozenset(
            p["name"] for p in parameters if p.get("in") == "query" and p.get("required")
        )
        operations.append(Operation(template, path, query, required))
    return operations, unfilled


def invalid_values(schema: Mapping[str, Any], rng: Random, *, oversize: int) -> list[str]:
    """Values ``schema`` must refuse: a wrong type, an unknown enum value, an oversized string.

    ``oversize`` is the length of the oversized string (a ``maxLength`` of the schema plus one
    when it declares one, else the caller's choice).
    """
    kind = schema.get("type")
    if schema.get("enum"):
        return [f"no-such-{rng.randrange(10**6)}", "x" * oversize]
    if kind == "integer":
        return [rng.choice(["ten", "1.5", "0x10", "1e3", "--1"]), "9" * oversize]
    if kind == "number":
        return [rng.choice(["ten", "1,5", "NaN-ish"]), "9" * oversize]
    if kind == "boolean":
        return [rng.choice(["maybe", "yes please", "2"]), "t" * oversize]
    # strings: only the oversized one is certainly invalid (a free-text q may accept anything)
    return ["x" * oversize]


def listed(answer: Answer) -> set[str]:
    """The parameter names a 400 problem lists in ``errors``."""
    body = answer.json()
    if not isinstance(body, dict):
        return set()
    return {str(e.get("parameter")) for e in body.get("errors", ()) if isinstance(e, dict)}


# --- 12. API abuse ----------------------------------------------------------------------------

LONG = 2_048
"""An oversized parameter that still fits gunicorn's request line (8190 bytes with the rest):
every string parameter must refuse it, and several of them fit in one request."""
SHORT = 512
"""The invalid string in a request with every parameter invalid, when no maxLength is declared."""
FLOOD_PATH = "/indicators"


def _walk_invalid(api: ApiProcess, key: str, rng: Random, trial: Trial) -> tuple[int, int]:
    """Every GET of the OpenAPI document, fed invalid query parameters one by one and all at once.

    Each request must get a 400 problem+json whose ``errors`` names every invalid parameter.
    Returns how many 10 kB values got a problem+json, of how many were sent: gunicorn refuses a
    request line above 8190 bytes (414) before the app sees it, with an HTML page unless its
    ``post_worker_init`` hook is :func:`ioc.api.problems.install_gunicorn_problems`.
    """
    document = api.get("/openapi.json", key=key).json()
    operations, unfilled = get_operations(document)
    trial.checks["every GET operation has sample path values"] = not unfilled
    if unfilled:
        trial.notes += f" no sample path value for {unfilled}."
    failures: list[str] = []
    requests = 0
    big_problems = big_sent = 0
    for op in operations:
        if not op.query:
            continue
        together: list[tuple[str, str]] = []
        for name, schema in op.query.items():
            values = invalid_values(schema, rng, oversize=LONG)
            for value in values:
                requests += 1
                answer = api.get(op.path, [(name, value)], key=key)
                if answer.status != 400 or not answer.is_problem or name not in listed(answer):
                    failures.append(f"{op.template} {name}={value[:20]!r}: {answer.status}")
            # all at once, short enough for one request line: a string just over its maxLength
            short = int(schema.get("maxLength", SHORT - 1)) + 1
            together.append((name, values[0][:short] if len(values) == 1 else values[0]))
        # several invalid at once (wrong types and unknown values: they fit in one request line)
        requests += 1
        answer = api.get(op.path, together, key=key)
        missing = {name for name, _ in together} - listed(answer)
        if answer.status != 400 or not answer.is_problem or missing:
            failures.append(f"{op.template} all at once: {answer.status}, not listed {missing}")
        # a 10 kB value: refused (by the app, or by gunicorn's request-line limit before it)
        name = rng.choice(sorted(op.query))
        requests += 1
        answer = api.get(op.path, [(name, "x" * BIG)], key=key)
        if answer.status not in (400, 414):
            failures.append(f"{op.template} {name}=<10 kB>: {answer.status}")
        big_sent += 1
        big_problems += answer.is_problem
    bodies = _walk_bodies(api, key, document)
    trial.checks["every invalid body field refused with a 400 problem listing it"] = not bodies
    failures.extend(bodies)
    trial.checks["every invalid parameter refused with a 400 problem listing it"] = not failures
    trial.notes += f" {len(operations)} GET operations, {requests} invalid requests."
    if failures:
        trial.notes += " failures (first): " + "; ".join(failures[:8]) + "."
    return big_problems, big_sent


WRONG_TYPE: dict[str | None, Any] = {
    "string": 12345,
    "integer": "twelve",
    "number": "twelve",
    "boolean": "maybe",
    "array": "not a list",
    "object": "not an object",
    None: ["not", "this"],
}
"""A JSON value of the wrong type for each schema type (None: a property without one)."""


def _body_schemas(document: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, object schema) of every operation whose JSON body names a schema."""
    components = document.get("components", {}).get("schemas", {})
    found = []
    for template, item in document.get("paths", {}).items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {}) if isinstance(op, dict) else {}
            ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
            schema = components.get(ref.rsplit("/", 1)[-1]) if ref else None
            if schema and schema.get("properties") and "{" not in template:
                found.append((method.upper(), template.removeprefix("/api/v1"), schema))
    return found


def _walk_bodies(api: ApiProcess, key: str, document: Mapping[str, Any]) -> list[str]:
    """Every JSON body the document describes, with every field of the wrong type plus an
    unknown one, then with each length-limited string 10 kB long: a 400 listing each field."""
    failures = []
    for method, path, schema in _body_schemas(document):
        properties: dict[str, Any] = schema["properties"]
        wrong = {name: WRONG_TYPE.get(p.get("type")) for name, p in properties.items()}
        wrong["no_such_field"] = 1
        answer = api.send(method, path, json.dumps(wrong).encode(), key=key)
        missing = set(wrong) - listed(answer)
        if answer.status != 400 or not answer.is_problem or missing:
            failures.append(f"{method} {path} all wrong: {answer.status}, not listed {missing}")
        for name, p in properties.items():
            if p.get("type") == "string" and "maxLength" in p:
                answer = api.send(method, path, json.dumps({name: "x" * BIG}).encode(), key=key)
                if answer.status != 400 or name not in listed(answer):
                    failures.append(f"{method} {path} {name}=<10 kB>: {answer.status}")
    return failures


def _latencies(api: ApiProcess, key: str, count: int, path: str = FLOOD_PATH) -> list[Answer]:
    return [api.get(path, key=key) for _ in range(count)]


PER_MINUTE = 120
"""The rate limit of scenario 12 (``IOC_API_RATE_LIMIT``): a flood passes it within seconds."""


def api_abuse(profile: Profile, rng: Random, workdir: Path) -> ScenarioResult:
    """A flood from one key is limited (429 + Retry-After) while another key is still served;
    every operation refuses invalid parameters with a 400 problem listing each of them."""
    ratios: list[float] = []
    big: list[tuple[int, int]] = []

    def trial(rng: Random, workdir: Path) -> Trial:
        result = Trial()
        with Harness(workdir) as h:
            h.up(("influxdb",))
            api, keys = start_api(
                h,
                {"flooder": "read", "other": "read", "walker": "operator"},
                {"feed": (DEVICE,)},
                IOC_API_RATE_LIMIT=str(PER_MINUTE),
            )
            with api:
                ratios.append(_flood(api, keys["flooder"], keys["other"], rng, result))
                big.append(_walk_invalid(api, keys["walker"], rng, result))
                _push_hostile(api, keys["feed"], rng, result)
                result.checks["API alive"] = api.alive()
        return result

    trials = run_trials(profile, rng, workdir, trial)
    figures = {}
    if ratios:
        figures["other key latency during flood / before (median of 15, per trial)"] = ", ".join(
            f"{r:.2f}" for r in ratios
        )
    if big:
        got, sent = sum(b[0] for b in big), sum(b[1] for b in big)
        figures["10 kB parameter answered as problem+json (414 from gunicorn)"] = f"{got} of {sent}"
    return ScenarioResult(12, "API abuse", trials, figures=figures)


def _push_hostile(api: ApiProcess, key: str, rng: Random, result: Trial) -> None:
    """Scenario 9's hostile payloads pushed over HTTP by a feed key: each refused with a 4xx
    problem, never a 500 (the push path parses with the collector's parsers)."""
    now_ms = time.time_ns() // 10**6
    forms = [
        (dataclasses.replace(FORMS[0], device=DEVICE), "application/json"),
        (FORMS[1], "application/senml+json"),
    ]
    failures = []
    pushed = 0
    for form, media in forms:
        parts = [("value", v) for v in RAW_VALUES]
        parts += [("metric", json_text(rng.choice(INJECTIONS))) for _ in range(3)]
        parts += [("ident", json_text(rng.choice(INJECTIONS)))]
        parts += [("deep", b"1000"), ("deep", b"1100"), ("bytes", b"\xff")]
        for kind, value in parts:
            message = mutate(form, kind, value, registered=True, now_ms=now_ms)
            answer = api.send(
                "POST", f"/feeds/{DEVICE}/readings", message.payload, key=key, media=media
            )
            pushed += 1
            if not (400 <= answer.status < 500 and answer.is_problem):
                failures.append(f"{message.what} {message.payload[:40]!r}: {answer.status}")
    result.checks["hostile pushes refused with a 4xx problem (never 500)"] = not failures
    result.notes += f" {pushed} hostile pushes."
    if failures:
        result.notes += " pushes not refused with a 4xx (first): " + "; ".join(failures[:4]) + "."


def _flood(api: ApiProcess, flooder: str, other: str, rng: Random, result: Trial) -> float:
    """Flood from ``flooder`` in 2-4 threads until refused; the other key's latency ratio
    (median during the flood / before it)."""
    _latencies(api, other, 3)  # warm-up: each worker's first answer is slower
    before = _latencies(api, other, 15)
    started = time.monotonic()
    stop = threading.Event()
    flood: list[Answer] = []
    lock = threading.Lock()

    def flood_body() -> None:
        while not stop.is_set():
            answer = api.get(FLOOD_PATH, key=flooder)
            with lock:
                flood.append(answer)

    threads = rng.randint(2, 4)
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(threads):
            pool.submit(flood_body)
        # the other key is measured once the flooder is being refused
        wait_for(lambda: any(a.status == 429 for a in list(flood)), 60, "the first 429")
        during = _latencies(api, other, 15)
        stop.set()
    flood_s = time.monotonic() - started
    limited = [a for a in flood if a.status == 429]
    served = [a for a in flood if a.status == 200]
    result.acknowledged = len(flood)
    result.notes += (
        f"flood of {len(flood)} requests from {threads} threads in {flood_s:.1f} s: "
        f"{len(served)} served, {len(limited)} refused 429."
    )
    result.checks["flood rate-limited (429)"] = bool(limited)
    # GCRA: the burst (= PER_MINUTE) at once, then PER_MINUTE / 60 a second
    allowed = PER_MINUTE + PER_MINUTE * flood_s / 60 + 1
    result.checks["flood served at most its quota"] = len(served) <= allowed
    result.checks["every 429 is a problem with Retry-After"] = all(
        a.is_problem and int(a.headers.get("retry-after", "0")) >= 1 for a in limited
    )
    result.checks["flood: only 200 or 429"] = all(a.status in (200, 429) for a in flood)
    result.checks["other key served 200 before and during the flood"] = all(
        a.status == 200 for a in [*before, *during]
    )
    ratio = statistics.median(a.seconds for a in during) / max(
        statistics.median(a.seconds for a in before), 1e-6
    )
    result.notes += f" other key's median latency during/before: {ratio:.2f}."
    return ratio


# --- 11. the API with InfluxDB down, stalled or slow ------------------------------------------

STORE_TIMEOUT = 2.0
"""The API's ``IOC_INFLUX_TIMEOUT`` in scenario 11: how long one InfluxDB request may take."""
ANSWER_BOUND = 3 * STORE_TIMEOUT + 2.0
"""A data endpoint must answer within this while InfluxDB hangs: a few store timeouts at most
(no endpoint may wait for InfluxDB without a bound, nor until gunicorn kills the worker)."""


SAMPLE_QUERY_VALUES = {"place": "01", "q": "Hoàn Kiếm"}
"""A valid value of each required query parameter the document names."""


def _sample_query(op: Operation) -> list[tuple[str, str]]:
    """Valid values of the operation's required query parameters (a new one shows as a 400)."""
    return [(name, SAMPLE_QUERY_VALUES.get(name, "")) for name in sorted(op.required)]


ROUND_CONCURRENCY = 4
"""Requests in flight at once in scenario 11 (the API runs as many workers)."""


PUSH = Operation("POST /api/v1/feeds/{source}/readings", f"/feeds/{DEVICE}/readings", {})
"""The write path of the API: a feed key pushing a reading (writes to InfluxDB)."""


def _round(
    api: ApiProcess, keys: Mapping[str, str], operations: list[Operation]
) -> dict[str, Answer]:
    """One request of every operation (``keys["reader"]``; the push with ``keys["feed"]``),
    ``ROUND_CONCURRENCY`` at a time."""

    def one(op: Operation) -> Answer:
        if op is PUSH:
            body = _reading(DEVICE, time.time_ns() // 10**6, 12.5)
            return api.send("POST", op.path, body, key=keys["feed"])
        return api.get(op.path, _sample_query(op), key=keys["reader"])

    with ThreadPoolExecutor(ROUND_CONCURRENCY) as pool:
        answers = pool.map(one, operations)
        return {op.template: answer for op, answer in zip(operations, answers, strict=True)}


def _is_unavailable(answer: Answer) -> bool:
    """A 503 problem+json with a Retry-After of at least one second."""
    retry = answer.headers.get("retry-after", "")
    return answer.status == 503 and answer.is_problem and retry.isdigit() and int(retry) >= 1


def api_influxdb_down(profile: Profile, rng: Random, workdir: Path) -> ScenarioResult:
    """InfluxDB stopped, then stalled and slow behind a proxy: every data endpoint answers 503
    problem+json with Retry-After within a bound, and the same API process recovers."""
    slowest: list[float] = []

    def trial(rng: Random, workdir: Path) -> Trial:
        result = Trial()
        with Harness(workdir) as h:
            h.up(("influxdb", "alertmanager"))
            with Proxy(h.settings.influx_host, h.settings.influx_port) as proxy:
                api, keys = start_api(
                    h,
                    {"reader": "operator"},
                    {"feed": (DEVICE,)},
                    IOC_INFLUX_URL=f"http://127.0.0.1:{proxy.port}",
                    IOC_INFLUX_TIMEOUT=str(STORE_TIMEOUT),
                    IOC_API_RATE_LIMIT="100000",
                    IOC_API_WORKERS=str(ROUND_CONCURRENCY),
                )
                with api:
                    _outages(h, proxy, api, keys, rng=rng, result=result, slowest=slowest)
        return result

    trials = run_trials(profile, rng, workdir, trial)
    figures = {}
    if slowest:
        figures["slowest answer while InfluxDB was down/stalled/slow"] = f"{max(slowest):.1f} s"
    return ScenarioResult(11, "API with InfluxDB down or slow", trials, figures=figures)


def _outages(
    h: Harness,
    proxy: Proxy,
    api: ApiProcess,
    keys: Mapping[str, str],
    *,
    rng: Random,
    result: Trial,
    slowest: list[float],
) -> None:
    """InfluxDB stopped, stalled and slow (in a random order), each followed by its recovery."""
    pid = api.pid
    operations, _ = get_operations(api.get("/openapi.json", key=keys["reader"]).json())
    operations.append(PUSH)
    rng.shuffle(operations)
    healthy = _round(api, keys, operations)
    ok = {t for t, a in healthy.items() if a.status == 200}
    not_ok = {t: a.status for t, a in healthy.items() if a.status != 200}
    result.checks["healthy: every operation answers 200"] = not not_ok
    if not_ok:
        result.notes += f" healthy but not 200: {not_ok}."
    data: set[str] = set()
    faults = ["stopped", "stalled", "slow"]
    rng.shuffle(faults)
    for fault in faults:
        if fault == "stopped":
            h.down("influxdb")
        elif fault == "stalled":
            proxy.stall()
        else:
            proxy.set_latency(STORE_TIMEOUT + rng.uniform(0.5, 2.0))
        answers = _round(api, keys, operations)
        unavailable = {t for t, a in answers.items() if _is_unavailable(a)}
        data |= unavailable
        others = {
            t: a.status
            for t, a in answers.items()
            if t not in unavailable and a.status != healthy[t].status
        }
        result.checks[f"{fault}: every data endpoint 503 + Retry-After"] = (
            bool(unavailable) and not others
        )
        if others:
            result.notes += f" {fault}: neither 503 nor as when healthy: {others}."
        slow = max(a.seconds for a in answers.values())
        slowest.append(slow)
        result.checks[f"{fault}: answered within {ANSWER_BOUND:.0f} s"] = slow <= ANSWER_BOUND
        result.notes += f" {fault}: {len(unavailable)} answered 503, slowest {slow:.1f} s."
        # InfluxDB back: the same process answers 200 again
        if fault == "stopped":
            h.up(("influxdb",))
        else:
            proxy.set_latency(0)
            proxy.resume()
        since = time.monotonic()
        recovered = _recovered(api, keys, operations, ok)
        result.recovery_s = max(result.recovery_s or 0.0, time.monotonic() - since)
        result.checks[f"{fault}: recovered without restart"] = (
            recovered and api.alive() and api.pid == pid
        )
    result.checks["no worker timed out"] = api.worker_timeouts() == 0
    result.acknowledged = len(data)
    result.notes += f" data endpoints (503 at least once): {len(data)}."


def _recovered(
    api: ApiProcess,
    keys: Mapping[str, str],
    operations: list[Operation],
    ok: set[str],
    timeout: float = 60.0,
) -> bool:
    """Poll until every operation that answered 200 when healthy answers 200 again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answers = _round(api, keys, operations)
        if all(answers[t].status == 200 for t in ok):
            return True
        time.sleep(0.5)
    return False


# --- 9. hostile input through the real broker -------------------------------------------------

MAX_PACKET_SIZE = 1_048_576
"""The broker's ``max_packet_size`` (deploy/ and the local stack)."""
COLLECTOR_MAX_BYTES = 256 * 1024
"""The collector's own payload limit (``too_large`` above it)."""

INJECTIONS = (
    '"',
    "'",
    ",",
    " ",
    "=",
    "\\",
    "\n",
    "\r\n",
    "\t",
    "\x00",
    "\x7f",
    '" OR 1=1 --',
    "'; DROP DATABASE ioc_faults; --",
    "x\nair,source=evil pm25=1 0",
    'a,province=99 value="x"',
    "DROP SERIES FROM air",
    "$SYS/#",
    "../../etc/passwd%00",
    "=SUM(A1)",
    "\u202e\u0000\ufeff",
    "é\u0301🙂",
)
"""Metacharacters of line protocol, InfluxQL, JSON, CSV, topics and text, and injection attempts:
each hostile id or tag holds at least one."""

RAW_VALUES = (
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e999",
    b"-1e999",
    b"1" + b"0" * 400,
    b"-1e308",
    b"9007199254740993",
    b'"12.5"',
    b"null",
    b"[]",
    b"{}",
    b'{"value": {"value": 1}}',
    b"0x10",
    b"+1",
    b".5",
    b"1_000",
)
"""JSON value tokens a metric must not be stored with (raw bytes: some are not JSON at all)."""


@dataclass(frozen=True, slots=True)
class Form:
    """One topic form the collector reads, with a template document for it."""

    name: str
    registered: str
    unregistered: str
    template: bytes
    """JSON with ``@ID@`` (the id the payload names), ``@METRIC@``, ``@VALUE@`` and ``@TIME@``."""
    device: str
    metric: str


def _forms() -> list[Form]:
    return [
        Form(
            "ioc-json",
            "ioc/v1/01/01-air-cau-giay/air",
            "ioc/v1/01/01-air-nowhere/air",
            b'{"v": 1, "source": @ID@, "time_ms": @TIME@, "metrics": {@METRIC@: @VALUE@}}',
            "01-air-cau-giay",
            "pm25",
        ),
        Form(
            "senml",
            "ioc/v1/01/01-air-long-bien/air/senml",
            "ioc/v1/01/01-air-nowhere/air/senml",
            b'[{"bn": @ID@, "n": @METRIC@, "u": "ug/m3", "v": @VALUE@, "bt": @TIME@}]',
            "urn:dev:ow:10e2073a01080063:",
            "pm25",
        ),
        Form(
            "the-things-stack",
            "v3/ioc@ttn/devices/hn-aqi-hoankiem/up",
            "v3/ioc@ttn/devices/nobody-here/up",
            b'{"end_device_ids": {"device_id": @ID@}, "received_at": "@ISO@", '
            b'"uplink_message": {"decoded_payload": {@METRIC@: @VALUE@}}}',
            "hn-aqi-hoankiem",
            "pm25",
        ),
        Form(
            "chirpstack",
            "application/7/device/70b3d57ed0051c02/event/up",
            "application/7/device/00000000000000ba/event/up",
            b'{"deviceInfo": {"devEui": @ID@}, "time": "@ISO@", "object": {@METRIC@: @VALUE@}}',
            "70b3d57ed0051c02",
            "water_level",
        ),
    ]


FORMS = _forms()


def json_text(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False).encode("utf-8", errors="surrogatepass")


def render(form: Form, *, ident: bytes, metric: bytes, value: bytes, now_ms: int) -> bytes:
    """The form's document with these raw JSON tokens in place."""
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now_ms / 1000)) + "Z"
    when = str(now_ms if form.name == "ioc-json" else now_ms / 1000).encode()
    return (
        form.template.replace(b"@ID@", ident)
        .replace(b"@METRIC@", metric)
        .replace(b"@VALUE@", value)
        .replace(b"@TIME@", when)
        .replace(b"@ISO@", iso.encode())
    )


@dataclass(frozen=True, slots=True)
class Hostile:
    """One hostile message; ``refused`` when the broker itself must refuse it (and disconnect)."""

    what: str
    topic: str
    payload: bytes
    refused: bool = False

    @property
    def excerpt(self) -> str:
        """The dead letter's excerpt of this payload (as ``ingest.deadletter`` makes it)."""
        text = self.payload[:EXCERPT_BYTES].decode("utf-8", errors="backslashreplace")
        if len(self.payload) > EXCERPT_BYTES:
            text += f"... ({len(self.payload)} bytes)"
        return text


def mutate(form: Form, kind: str, hostile: bytes, *, registered: bool, now_ms: int) -> Hostile:
    """The form's good document with one part made hostile: ``kind`` says which."""
    good = {
        "ident": json_text(form.device),
        "metric": json_text(form.metric),
        "value": b"12.5",
        "now_ms": now_ms,
    }
    topic = form.registered if registered else form.unregistered
    if kind in ("ident", "metric", "value"):
        payload = render(form, **{**good, kind: hostile})  # type: ignore[arg-type]
    elif kind == "bytes":  # non-UTF-8 (or a BOM, or truncation) in an otherwise good document
        base = render(form, **good)  # type: ignore[arg-type]
        cut = len(base) // 2
        payload = base[:cut] + hostile + base[cut:]
    elif kind == "deep":
        depth = int(hostile)
        payload = render(form, **{**good, "value": b"[" * depth + b"1" + b"]" * depth})  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown mutation {kind!r}")
    return Hostile(f"{form.name}/{kind}{'' if registered else '/unregistered'}", topic, payload)


def _topic_safe(text: str) -> bool:
    """True if the broker accepts ``text`` in a topic level (no control character, no wildcard)."""
    return not any(c in text for c in "#+") and all(ord(c) >= 0x20 and c != "\x7f" for c in text)


def corpus(now_ms: int) -> list[Hostile]:
    """The fixed corpus: every raw value and injection on every form, and the special cases."""
    found: list[Hostile] = []
    for form in FORMS:
        for value in RAW_VALUES:
            found.append(mutate(form, "value", value, registered=True, now_ms=now_ms))
        for text in INJECTIONS:
            for kind in ("ident", "metric"):
                found.append(mutate(form, kind, json_text(text), registered=True, now_ms=now_ms))
        for kind, hostile in (("value", b"NaN"), ("metric", json_text('a"b')), ("deep", b"2000")):
            found.append(mutate(form, kind, hostile, registered=False, now_ms=now_ms))
        for raw in (b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xef\xbb\xbf"):
            found.append(mutate(form, "bytes", raw, registered=True, now_ms=now_ms))
        # deeper than orjson allows (too_deep), and just within it: deeper than Python's repr
        # can walk (the recursion limit, 1000), which an error message must survive
        for depth in (b"1100", b"1000"):
            found.append(mutate(form, "deep", depth, registered=True, now_ms=now_ms))
        topic = form.registered
        for what, payload in (
            ("empty", b""),
            ("truncated", b'{"v": 1, "source": "'),
            ("bom", b"\xef\xbb\xbf{}"),
            ("json string", b'"hello"'),
            ("empty array", b"[]"),
            ("not json", b"\xff\xfe\x00\x01 binary"),
            ("too large for the collector", b"[" + b" " * (COLLECTOR_MAX_BYTES + 10) + b"]"),
            ("too deep", b"[" * 100_000 + b"]" * 100_000),
        ):
            found.append(Hostile(f"{form.name}/{what}", topic, payload))
    for text in INJECTIONS:
        if _topic_safe(text):
            for topic in (f"ioc/v1/01/{text}/air", f"ioc/v1/{text}/01-air-cau-giay/air"):
                found.append(Hostile("topic injection", topic, b'{"v": 1}'))
    found.append(Hostile("unknown topic", "ioc/v1/01/01-air-cau-giay", b"{}"))
    found.append(Hostile("unknown format", "ioc/v1/01/01-air-cau-giay/air/csv", b"pm25,1"))
    # what the broker itself refuses (and disconnects the client for)
    big = b"x" * (MAX_PACKET_SIZE + 1)
    found.append(Hostile("oversize packet", FORMS[0].registered, big, refused=True))
    found.append(Hostile("control character in topic", FORMS[0].registered + "\x01", b"{}", True))
    found.append(Hostile("NUL in topic", "ioc/v1/01/\x00/air", b"{}", refused=True))
    return found


def generated(seed: int, count: int, now_ms: int) -> list[Hostile]:
    """``count`` hostile messages drawn by hypothesis from ``seed``.

    Outside pytest, hypothesis runs an inner ``@given`` function with ``@seed`` (reproducible),
    ``database=None`` (no example database written) and only the generate phase (no shrinking:
    nothing fails inside it); the function merely collects what it is given.
    """
    from hypothesis import HealthCheck, Phase, given, settings  # noqa: PLC0415
    from hypothesis import seed as seeded  # noqa: PLC0415
    from hypothesis import strategies as st  # noqa: PLC0415

    hostile_text = st.builds(
        lambda a, m, b: a + m + b,
        st.text(max_size=12),
        st.sampled_from(INJECTIONS),
        st.text(max_size=12),
    )
    huge = st.one_of(
        st.integers(min_value=2**53 + 1, max_value=10**400).map(lambda n: str(n).encode()),
        st.integers(min_value=-(10**400), max_value=-(2**53) - 1).map(lambda n: str(n).encode()),
        st.floats(min_value=1e7, allow_infinity=False).map(lambda f: repr(f).encode()),
        st.floats(max_value=-1e7, allow_infinity=False).map(lambda f: repr(f).encode()),
    )
    not_utf8 = st.binary(min_size=1, max_size=8).filter(lambda b: not _is_utf8(b))
    part = st.one_of(
        st.tuples(st.just("ident"), hostile_text.map(json_text)),
        st.tuples(st.just("metric"), hostile_text.map(json_text)),
        st.tuples(st.just("value"), st.one_of(st.sampled_from(RAW_VALUES), huge)),
        st.tuples(st.just("bytes"), not_utf8),
        st.tuples(
            st.just("deep"), st.integers(min_value=500, max_value=3000).map(str).map(str.encode)
        ),
    )
    messages = st.builds(
        lambda form, registered, kind_value: mutate(
            form, kind_value[0], kind_value[1], registered=registered, now_ms=now_ms
        ),
        st.sampled_from(FORMS),
        st.booleans(),
        part,
    )
    out: list[Hostile] = []

    @seeded(seed)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(messages)
    def collect(message: Hostile) -> None:
        out.append(message)

    collect()
    return out


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class HostilePublisher:
    """One MQTT 5 client publishing hostile messages at QoS 1, recording each PUBACK code."""

    def __init__(self, settings: Settings) -> None:
        self.client = make_client(settings, f"faults-hostile-{uuid.uuid4().hex[:8]}")
        self.client.max_inflight_messages_set(100)
        self._lock = threading.Condition()
        self._codes: dict[int, int] = {}
        self.disconnects = 0
        self.client.on_publish = self._on_publish
        self.client.on_disconnect = self._on_disconnect
        self.client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=10)
        self.client.loop_start()

    def _on_publish(self, _c: Any, _u: object, mid: int, reason: Any, _p: object) -> None:
        with self._lock:
            self._codes[mid] = int(getattr(reason, "value", 0) or 0)
            self._lock.notify_all()

    def _on_disconnect(self, *_args: object) -> None:
        self.disconnects += 1

    def publish_all(self, messages: list[Hostile], timeout: float = 60.0) -> dict[int, int]:
        """Publish every message; the PUBACK reason code of each (by index), when one came."""
        mids = [self.client.publish(m.topic, m.payload, qos=1).mid for m in messages]
        with self._lock:
            self._lock.wait_for(lambda: all(mid in self._codes for mid in mids), timeout)
            return {i: self._codes[mid] for i, mid in enumerate(mids) if mid in self._codes}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def refused_by_broker(
    settings: Settings, message: Hostile, client_id: str = ""
) -> tuple[str, bool]:
    """Publish ``message`` from a fresh client; its client id and whether the broker cut it off
    (disconnected without a PUBACK)."""
    client_id = client_id or f"faults-refused-{uuid.uuid4().hex[:8]}"
    client = make_client(settings, client_id)
    client.reconnect_delay_set(60, 120)  # no reconnect within the wait
    connected, gone, acked = threading.Event(), threading.Event(), threading.Event()
    client.on_connect = lambda *_a: connected.set()
    client.on_disconnect = lambda *_a: gone.set()
    client.on_publish = lambda *_a: acked.set()
    client.connect(settings.mqtt_host, settings.mqtt_port, keepalive=10)
    client.loop_start()
    try:
        if not connected.wait(10):
            return client_id, False
        with contextlib.suppress(ValueError, OSError):
            client.publish(message.topic, message.payload, qos=1)
        cut = gone.wait(10) and not acked.is_set()
    finally:
        client.disconnect()
        client.loop_stop()
    return client_id, cut


def series_keys(store: Store) -> set[str]:
    """Every series key of the database (``SHOW SERIES``: measurement and tag set)."""
    keys: set[str] = set()
    for series in store.query("SHOW SERIES", epoch=None):
        keys.update(str(row[0]) for row in series.values)
    return keys


_DEAD_LETTER_SERIES = re.compile(
    r"dead_letter(,collector=[A-Za-z0-9_.-]+)?(,province=\d{2})?,reason=[a-z0-9_]+"
)


def _unexplained_series(new: set[str], provinces: set[str], collectors: set[str]) -> list[str]:
    """New series that are neither dead letters with known tags (a registered province) nor a
    collector's own metrics (tagged with its id alone)."""
    bad = []
    for key in sorted(new):
        tags = key.partition(",")[2]
        if tags.startswith("collector=") and tags.removeprefix("collector=") in collectors:
            continue
        match = _DEAD_LETTER_SERIES.fullmatch(key)
        province = re.search(r",province=(\d{2})", key)
        if match is None or (province is not None and province.group(1) not in provinces):
            bad.append(key)
    return bad


def dead_letters(store: Store, since_ms: int) -> list[dict[str, Any]]:
    """Every dead letter stored since ``since_ms``."""
    rows: list[dict[str, Any]] = []
    for series in store.query(
        'SELECT "topic", "excerpt", "client_id", "reason" FROM "ops"."dead_letter" '
        f"WHERE time >= {since_ms}ms",
        epoch="ns",
    ):
        rows.extend(series.rows())
    return rows


def hostile_input(profile: Profile, rng: Random, workdir: Path) -> ScenarioResult:
    """A fixed corpus and hypothesis-generated payloads through the real broker, with numbered
    good traffic alongside: no crash, good traffic all stored, no new series, and every hostile
    message counted and findable (a dead letter, or a broker refusal)."""
    totals: dict[str, int] = {"hostile": 0, "refused": 0, "dead letters": 0}

    def trial(rng: Random, workdir: Path) -> Trial:
        with Harness(workdir) as h:
            return _hostile_trial(h, rng, totals)

    trials = run_trials(profile, rng, workdir, trial)
    figures = {
        "hostile messages sent": str(totals["hostile"]),
        "refused by the broker": str(totals["refused"]),
        "dead letters stored": str(totals["dead letters"]),
    }
    return ScenarioResult(9, "hostile input", trials, figures=figures)


GENERATED = 120
"""Hypothesis-generated messages per trial (on top of the fixed corpus)."""
OVERSIZE_CLIENT = "01-air-cau-giay"
"""The client id of the oversize packet: a registered source."""


def _messages(rng: Random, now_ms: int) -> list[Hostile]:
    """The corpus and this trial's generated messages, one per (topic, excerpt), shuffled."""
    unique: dict[tuple[str, str], Hostile] = {}
    for m in corpus(now_ms) + generated(rng.getrandbits(32), GENERATED, now_ms):
        unique.setdefault((m.topic, m.excerpt), m)  # a dead letter is found by these two
    messages = list(unique.values())
    rng.shuffle(messages)
    return messages


def _hostile_trial(h: Harness, rng: Random, totals: dict[str, int]) -> Trial:
    result = Trial()
    h.up()
    collector = h.collector()
    collector.start()
    store = h.store()
    good = h.publisher(3000)
    good.stream(600, stop=300)  # a warm-up: the good series exist before the baseline
    good.join()
    wait_for(lambda: len(stored_readings(store, good)) >= 100, 60, "warm-up readings")
    before = series_keys(store)
    since_ms = time.time_ns() // 10**6 - 1000
    messages = _messages(rng, time.time_ns() // 10**6)
    accepted = [m for m in messages if not m.refused]
    refused = [m for m in messages if m.refused]
    good.stream(600, start=300)  # good traffic alongside the hostile input
    hostile = HostilePublisher(h.settings)
    try:
        codes = hostile.publish_all(accepted)
    finally:
        hostile.close()
    # the oversize packet comes from a client id the registry knows: the broker's refusal is
    # then attributed to that device on /health/feeds (the local stack's clients are anonymous)
    cut = [
        refused_by_broker(h.settings, m, OVERSIZE_CLIENT if m.what == "oversize packet" else "")
        for m in refused
    ]
    good.join()
    good.settle()
    count, recovery = wait_until_stored(store, good, since=time.monotonic(), timeout=120)
    fill(result, count, recovery)
    acked = [m for i, m in enumerate(accepted) if codes.get(i, 0x80) < 0x80]
    refused_ids = {client_id for client_id, was_cut in cut if was_cut}
    result.checks["every hostile message acknowledged or refused by the broker"] = len(
        acked
    ) == len(accepted) and len(refused_ids) == len(refused)
    letters = _check_letters(store, since_ms, acked, refused_ids, result)
    _check_api(h, letters, acked, refused_ids, result)
    provinces = {s.province for s in get_catalog(h.settings.registry_file).registry.sources}
    unexplained = _unexplained_series(series_keys(store) - before, provinces, {collector.ingest_id})
    result.checks["no new series beyond dead letters"] = not unexplained
    result.checks["collector alive, never restarted"] = collector.alive() and collector.starts == 1
    internal = collector.log_text().count("Traceback")
    result.checks["no internal error in the collector"] = internal == 0
    if internal:
        result.notes += f" {internal} internal errors (tracebacks) in {collector.log_file}."
    result.broker_dropped = len(refused_ids)
    result.unexpected += len(unexplained)
    result.notes += (
        f" {len(messages)} hostile messages ({len(accepted)} to the collector, "
        f"{len(refused)} for the broker to refuse): {len(acked)} acknowledged, "
        f"{len(refused_ids)} refused; {len(letters)} dead letters."
    )
    if unexplained:
        result.notes += f" new series: {unexplained[:5]}."
    totals["hostile"] += len(messages)
    totals["refused"] += len(refused_ids)
    totals["dead letters"] += len(letters)
    return result


def _check_letters(
    store: Store, since_ms: int, acked: list[Hostile], refused_ids: set[str], result: Trial
) -> list[dict[str, Any]]:
    """Wait for, then check, a dead letter per acknowledged message and per broker refusal."""
    wanted = {(m.topic, m.excerpt) for m in acked}
    letters: list[dict[str, Any]] = []

    def all_found() -> bool:
        letters[:] = dead_letters(store, since_ms)
        found = {(r["topic"], r["excerpt"]) for r in letters}
        broker = {r["client_id"] for r in letters if r["reason"] == "broker_refused"}
        return wanted <= found and refused_ids <= broker

    with contextlib.suppress(TimeoutError):
        wait_for(all_found, 60, "every hostile message's dead letter")
    found = {(r["topic"], r["excerpt"]) for r in letters if r["reason"] != "broker_refused"}
    broker = {r["client_id"] for r in letters if r["reason"] == "broker_refused"}
    missing = sorted(wanted - found)
    stray = sorted(found - wanted)
    result.checks["every acknowledged hostile message has a dead letter"] = not missing
    result.checks["every broker refusal has a broker_refused dead letter"] = refused_ids <= broker
    result.checks["dead letters + broker refusals = hostile messages"] = (
        len(found & wanted) + len(broker & refused_ids) == len(acked) + len(refused_ids)
        and not stray
    )
    if missing:
        result.notes += f" no dead letter for (first): {missing[:3]}."
    if stray:
        result.notes += f" dead letters of no hostile message (first): {stray[:3]}."
    return letters


def _check_api(
    h: Harness,
    letters: list[dict[str, Any]],
    acked: list[Hostile],
    refused_ids: set[str],
    result: Trial,
) -> None:
    """``GET /api/v1/dead-letters`` lists every dead letter InfluxDB holds, as stored, and
    ``/health/feeds`` counts every broker refusal, the oversize packet against its device."""
    api, keys = start_api(h, {"ops": "operator"})
    with api:
        answer = api.get("/dead-letters", {"since": "1h", "limit": "1000"}, key=keys["ops"])
        health = api.get("/health/feeds", {"since": "1h"}, key=keys["ops"]).json() or {}
    attributed = {item.get("source"): item.get("refused") for item in health.get("sources", ())}
    result.checks["/health/feeds counts every broker refusal"] = health.get("refused") == len(
        refused_ids
    ) and bool(attributed.get(OVERSIZE_CLIENT))
    if health.get("refused") != len(refused_ids):
        result.notes += f" /health/feeds: {health}."
    body = answer.json() if answer.status == 200 else None
    items = body.get("items", []) if isinstance(body, dict) else []
    listed_letters = {(i.get("topic"), i.get("excerpt")) for i in items}
    wanted = {(m.topic, m.excerpt) for m in acked}
    result.checks["/api/v1/dead-letters lists every dead letter"] = (
        answer.status == 200 and len(items) == len(letters) and wanted <= listed_letters
    )
    if answer.status != 200 or len(items) != len(letters):
        result.notes += f" /dead-letters: {answer.status}, {len(items)} items."


# --- 10. ACL abuse against deploy/'s Mosquitto ------------------------------------------------

NOT_AUTHORIZED = 0x87
DEPLOY_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf"
WATCHED = SUBSCRIPTIONS
"""What a collector subscribes to: a second subscriber in its name watches the same."""


class Session:
    """An MQTT 5 client of one user: its CONNACK code, PUBACK codes, and what it received."""

    def __init__(self, port: int, user: str | None, password: str | None) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"faults-acl-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
            reconnect_on_failure=False,
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.connack: int | None = None
        self.acks: dict[int, int] = {}
        self.received: list[tuple[str, bytes]] = []
        self._cond = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self._subscribed: list[int] = []
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()
        with self._cond:
            self._cond.wait_for(lambda: self.connack is not None, 10)

    def _on_connect(self, _c: object, _u: object, _f: object, rc: Any, _p: object) -> None:
        with self._cond:
            self.connack = int(rc.value)
            self._cond.notify_all()

    def _on_publish(self, _c: object, _u: object, mid: int, rc: Any, _p: object) -> None:
        with self._cond:
            self.acks[mid] = int(rc.value)
            self._cond.notify_all()

    def _on_subscribe(self, _c: object, _u: object, mid: int, _rc: object, _p: object) -> None:
        with self._cond:
            self._subscribed.append(mid)
            self._cond.notify_all()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.received.append((message.topic, bytes(message.payload)))

    @property
    def connected(self) -> bool:
        return self.connack == 0

    def publish(self, topic: str, payload: bytes) -> int | None:
        """Publish at QoS 1; the PUBACK reason code (None if none came)."""
        mid = self.client.publish(topic, payload, qos=1).mid
        with self._cond:
            self._cond.wait_for(lambda: mid in self.acks, 10)
            return self.acks.get(mid)

    def subscribe(self, *filters: str) -> None:
        _, mid = self.client.subscribe([(f, 1) for f in filters])
        with self._cond:
            self._cond.wait_for(lambda: mid in self._subscribed, 10)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()


def render_deploy_config(workdir: Path, port: int, passwd: Path, acl: Path) -> Path:
    """deploy/'s mosquitto.conf with its paths, listener and user moved into ``workdir``."""
    text = DEPLOY_CONFIG.read_text()
    replacements = {
        r"^password_file .*$": f"password_file {passwd}",
        r"^acl_file .*$": f"acl_file {acl}",
        r"^persistence_location .*$": f"persistence_location {workdir}/mosquitto-data/",
        r"^listener 1883$": f"listener {port} 127.0.0.1\nuser {getpass.getuser()}",
    }
    for pattern, new in replacements.items():
        text, count = re.subn(pattern, new, text, flags=re.MULTILINE)
        if count != 1:
            raise RuntimeError(f"{DEPLOY_CONFIG}: expected one line matching {pattern}")
    (workdir / "mosquitto-data").mkdir(exist_ok=True)
    config = workdir / "mosquitto.conf"
    config.write_text(text)
    return config


def _broker_files(h: Harness) -> dict[str, str]:
    """``ioc devices acl`` and ``ioc devices passwd`` (the real CLI) into the workdir; the
    cleartext passwords by user."""
    auth = h.workdir / "auth"
    auth.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **h.env}
    for argv in (
        ["acl", "--output", str(auth / "acl")],
        ["passwd", "--output", str(auth / "passwd"), "--secrets", str(auth / "secrets.tsv")],
    ):
        subprocess.run(
            [sys.executable, "-m", "ioc.cli", "devices", *argv],
            env=env,
            check=True,
            capture_output=True,
        )
    lines = (auth / "secrets.tsv").read_text().splitlines()
    return dict(line.split("\t", 1) for line in lines if line and not line.startswith("#"))


def _reading(source: str, time_ms: int, value: float) -> bytes:
    return json.dumps(
        {"v": 1, "source": source, "time_ms": time_ms, "metrics": {"pm25": value}}
    ).encode()


def _tts_reading(device: str, time_ms: int, value: float) -> bytes:
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time_ms / 1000))
    return json.dumps(
        {
            "end_device_ids": {"device_id": device},
            "received_at": f"{iso}.{time_ms % 1000:03d}Z",
            "uplink_message": {"decoded_payload": {"pm25": value}},
        }
    ).encode()


def acl_abuse(profile: Profile, rng: Random, workdir: Path) -> ScenarioResult:
    """deploy/'s Mosquitto with the generated password and ACL files: every abuse (another
    device's topic, impersonating a network server, readers publishing, subscribing to ``#`` and
    ``$SYS/#``, a wrong password, an unknown user, anonymous) is denied, checked by effect."""

    def trial(rng: Random, workdir: Path) -> Trial:
        with Harness(workdir) as h:
            return _acl_trial(h, rng)

    trials = run_trials(profile, rng, workdir, trial)
    return ScenarioResult(10, "ACL abuse", trials)


def _acl_trial(h: Harness, rng: Random) -> Trial:
    result = Trial()
    passwords = _broker_files(h)
    auth = h.workdir / "auth"
    port = h.settings.mqtt_port
    config = render_deploy_config(h.workdir, port, auth / "passwd", auth / "acl")
    h.up(("influxdb",))
    with (h.workdir / "mosquitto-deploy.log").open("ab") as out:
        broker = subprocess.Popen(
            [find_binary("mosquitto"), "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=terminate_with_parent,  # noqa: PLW1509
        )
    sessions: list[Session] = []
    try:
        wait_for(lambda: _listening(port, broker), 15, "deploy/'s mosquitto")
        collector = h.collector(
            IOC_MQTT_USERNAME="ioc-ingest", IOC_MQTT_PASSWORD=passwords["ioc-ingest"]
        )
        collector.start()
        _abuse(h, rng, result, passwords, sessions)
        result.checks["collector alive"] = collector.alive()
    finally:
        for session in sessions:
            session.close()
        broker.terminate()
        broker.wait(timeout=20)
    return result


def _listening(port: int, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"mosquitto exited with {process.returncode}")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _abuse(
    h: Harness, rng: Random, result: Trial, passwords: dict[str, str], sessions: list[Session]
) -> None:
    """Every abuse in a random order, then the controls; checked by what arrived and was stored."""
    port = h.settings.mqtt_port

    def session(user: str | None, password: str | None = None) -> Session:
        opened = Session(port, user, passwords.get(user or "") if password is None else password)
        sessions.append(opened)
        return opened

    watcher = session("ioc-ingest")  # a second collector's view, in a group of its own
    watcher.subscribe(*(f"$share/faults-watch/{topic}" for topic in WATCHED))
    spy = session(DEVICE)
    spy.subscribe("#", "$SYS/#", "$SYS/broker/log/N", "ioc/v1/#")
    first_ms = time.time_ns() // 10**6 - 120_000
    clock = iter(range(first_ms, first_ms + 100_000, 1000))

    def refused_publish(user: str, topic: str, payload: bytes) -> bool:
        client = session(user)
        return client.connected and client.publish(topic, payload) == NOT_AUTHORIZED

    def reading(source: str) -> bytes:
        return _reading(source, next(clock), round(rng.uniform(1, 300), 1))

    abuses = {
        "publish on another device's topic": lambda: refused_publish(
            DEVICE, OWN_TOPIC[VICTIM], reading(VICTIM)
        ),
        "publish its own id in another province": lambda: refused_publish(
            DEVICE, "ioc/v1/46/01-air-long-bien/air", reading(DEVICE)
        ),
        "publish as a network server": lambda: refused_publish(
            DEVICE,
            "v3/ioc@ttn/devices/hn-aqi-hoankiem/up",
            _tts_reading("hn-aqi-hoankiem", next(clock), 42.0),
        ),
        "a reader (alerts-reader) publishes": lambda: refused_publish(
            "alerts-reader", OWN_TOPIC[DEVICE], reading(DEVICE)
        ),
        "the health user publishes": lambda: refused_publish(
            "ioc-health", OWN_TOPIC[DEVICE], reading(DEVICE)
        ),
        "the collectors' user publishes": lambda: refused_publish(
            "ioc-ingest", OWN_TOPIC[DEVICE], reading(DEVICE)
        ),
        "wrong password": lambda: not session(VICTIM, "not-the-password").connected,
        "empty password": lambda: not session("ioc-ingest", "").connected,
        "unknown user": lambda: not session("no-such-device", "x").connected,
        "anonymous": lambda: not session(None).connected,
    }
    order = list(abuses)
    rng.shuffle(order)
    for name in order:
        result.checks[f"denied: {name}"] = abuses[name]()
    # the controls: each device's own topic is delivered and stored
    controls = {}
    for source in (DEVICE, VICTIM):
        payload = reading(source)
        controls[payload] = session(source).publish(OWN_TOPIC[source], payload)
    result.acknowledged = sum(code == 0 for code in controls.values())
    result.checks["controls acknowledged"] = result.acknowledged == len(controls)
    store = h.store()
    last_ms = first_ms + 100_000

    def stored() -> set[int]:
        answer = store.query(
            f'SELECT "pm25" FROM "raw"."air" WHERE time >= {first_ms}ms AND time < {last_ms}ms '
            "GROUP BY *",
            epoch="ms",
        )
        return {int(row[0]) for series in answer for row in series.values}

    with contextlib.suppress(TimeoutError):
        wait_for(lambda: len(stored()) >= len(controls), 60, "the controls to be stored")
    time.sleep(1.0)  # anything forged published before the controls had time to arrive too
    control_times = {json.loads(p)["time_ms"] for p in controls}
    times = stored()
    result.stored = len(times)
    result.unexpected = len(times - control_times)
    result.checks["only the controls stored"] = times == control_times
    delivered = {payload for _, payload in watcher.received}
    result.checks["only the controls delivered to a subscriber"] = delivered == set(controls)
    result.checks["denied: subscribe to # and $SYS/# (nothing delivered)"] = not spy.received
    if spy.received:
        result.notes += f" the spy received: {sorted({t for t, _ in spy.received})[:5]}."
    if times != control_times:
        result.notes += f" stored beyond the controls: {sorted(times - control_times)}."
