"""API keys: who may call the indicator API, for which provinces, until when; and ``ioc keys``.

Scope model (one scope per key)::

    read             read every indicator resource, every province
    read:provinces   read only the provinces listed on the key (official 2-digit codes); a
                     place of another province answers 404, exactly like a place that does
                     not exist, so a key cannot learn what other provinces hold
    operator         everything ``read`` may, plus operator resources (dead letters, feed
                     health details), and pushing readings for any source
    feed             only ``POST /api/v1/feeds/{source}/readings`` for the sources listed on
                     the key (a departmental system that cannot speak MQTT); reads nothing

Key format: ``ioc_<key_id>_<secret>``. ``key_id`` is 12 random hex digits, shown by
``ioc keys list`` and written in logs; it only finds the stored entry and is not secret.
``secret`` is ``secrets.token_urlsafe(32)`` (32 random bytes, 43 characters). Clients send the
key in the ``X-API-Key`` header, or as ``Authorization: Bearer <key>`` for tools that only speak
bearer tokens (``X-API-Key`` wins when both are present).

Storage: a JSON file (``settings.api_keys_path``, mode 0600 in a 0700 folder) holding, per key,
its metadata and ``sha256:<hex>`` of the key id and secret, never the secret. A plain SHA-256 is
enough because the secret has 256 bits of entropy: nothing can be guessed offline, so a slow KDF
(scrypt, argon2) would add no protection and cost milliseconds of CPU on every request, and a
pepper (HMAC) would add a second secret to manage for nothing. Digests are compared with
:func:`hmac.compare_digest`. Writers (``ioc keys``) take an ``fcntl`` lock and replace the file
atomically (temp file, fsync, ``os.replace``); API workers never lock, they re-stat the file at
most once a second and reload it when its inode, size or mtime changed, so a key created or
revoked from the command line takes effect within about a second in every worker.

Keys expire ``DEFAULT_LIFETIME`` (365 days) after creation unless ``--expires``,
``--expires-at`` or ``--no-expiry`` says otherwise: a forgotten key stops working by itself.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol

from ioc.errors import ApiKeyError
from ioc.settings import Settings

log = logging.getLogger(__name__)

HELP = "API keys of the indicator API: create, list, revoke"

HEADER = "X-API-Key"
EXAMPLE_PATH = "/api/v1/indicators"
"""The resource the usage line printed by ``ioc keys create`` points at."""
DEFAULT_LIFETIME = timedelta(days=365)
RECHECK_SECONDS = 1.0
"""How often (at most) a KeyStore re-stats its file to see changes made by another process."""

_PREFIX = "ioc"
_KEY_ID_BYTES = 6
_SECRET_BYTES = 32
_KEY_PATTERN = re.compile(r"ioc_([0-9a-f]{12})_([A-Za-z0-9_-]{43,128})")
_MAX_PRESENTED = 200
_HASH_PREFIX = "sha256:"
_FILE_VERSION = 1
_NAME_MAX = 64
_DURATION = re.compile(r"([1-9][0-9]{0,5})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

KeyStatus = Literal["active", "expired", "revoked"]
Refusal = Literal["malformed", "unknown_key", "wrong_secret", "revoked", "expired"]


class Scope(StrEnum):
    """What a key may read; see the module docstring."""

    READ = "read"
    READ_PROVINCES = "read:provinces"
    OPERATOR = "operator"
    FEED = "feed"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One stored key: its metadata and the digest of its secret (never the secret)."""

    key_id: str
    name: str
    scope: Scope
    provinces: tuple[str, ...]
    created: datetime
    expires: datetime | None
    revoked: datetime | None
    secret_hash: str
    sources: tuple[str, ...] = ()

    def status(self, now: datetime) -> KeyStatus:
        """``revoked`` wins over ``expired``; a key is expired from its expiry instant on."""
        if self.revoked is not None:
            return "revoked"
        if self.expires is not None and now >= self.expires:
            return "expired"
        return "active"

    def principal(self) -> Principal:
        """What a request authenticated with this key may do."""
        provinces: frozenset[str] | None = None
        if self.scope is Scope.READ_PROVINCES:
            provinces = frozenset(self.provinces)
        elif self.scope is Scope.FEED:
            provinces = frozenset()  # a feed key reads no province
        return Principal(self.key_id, self.name, self.scope, provinces, frozenset(self.sources))

    def describe(self) -> dict[str, Any]:
        """Everything shown to an operator (no digest): for ``ioc keys list --json``."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scope": str(self.scope),
            "provinces": list(self.provinces),
            "sources": list(self.sources),
            "created": _text(self.created),
            "expires": _text(self.expires),
            "revoked": _text(self.revoked),
        }


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request, as its key allows: ``provinces`` is None for every province."""

    key_id: str
    name: str
    scope: Scope
    provinces: frozenset[str] | None
    sources: frozenset[str] = frozenset()

    def can_read_province(self, code: str) -> bool:
        """May this caller see places and values of the province with this code?"""
        return self.provinces is None or code in self.provinces

    def can_push(self, source_id: str) -> bool:
        """May this caller push readings for this source (operator, or a feed key naming it)?"""
        return self.scope is Scope.OPERATOR or (
            self.scope is Scope.FEED and source_id in self.sources
        )

    @property
    def reads(self) -> bool:
        """May this caller read indicator resources at all (every scope but ``feed``)?"""
        return self.scope is not Scope.FEED

    @property
    def is_operator(self) -> bool:
        """May this caller read operator resources (dead letters, feed health details)?"""
        return self.scope is Scope.OPERATOR


@dataclass(frozen=True, slots=True)
class Verification:
    """The outcome of checking a presented key; ``reason`` is for logs, never for the client."""

    principal: Principal | None
    reason: Refusal | None
    key_id: str | None


class Headers(Protocol):
    """Request headers, looked up case-insensitively (werkzeug's ``Headers``, a dict in tests)."""

    def get(self, key: str, /) -> str | None:
        """The header's value, or None."""


def presented_key(headers: Headers) -> str | None:
    """The key a request carries: ``X-API-Key``, else ``Authorization: Bearer <key>``."""
    value = headers.get(HEADER)
    if value:
        return value.strip()
    scheme, _, token = (headers.get("Authorization") or "").strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _digest(key_id: str, secret: str) -> str:
    # The key id is hashed too, so a digest copied onto another entry matches nothing.
    material = f"ioc-api-key-v1\0{key_id}\0{secret}".encode()
    return _HASH_PREFIX + hashlib.sha256(material).hexdigest()


_DUMMY_DIGEST = _digest("000000000000", "x" * 43)


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def _utc_now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must carry a UTC offset")
    return now


def _validate_provinces(scope: Scope, provinces: Iterable[str]) -> tuple[str, ...]:
    codes = tuple(sorted(set(provinces)))
    if scope is not Scope.READ_PROVINCES:
        if codes:
            raise ApiKeyError(
                f"provinces {', '.join(codes)} given with scope {scope}: only scope "
                f"{Scope.READ_PROVINCES} is limited to provinces"
            )
        return ()
    if not codes:
        raise ApiKeyError(f"scope {Scope.READ_PROVINCES} needs at least one province code")
    from ioc.places import get_places  # noqa: PLC0415 - only key creation needs the index

    places = get_places()
    for code in codes:
        try:
            places.province(code)
        except KeyError:
            known = ", ".join(p.code for p in places.provinces())
            raise ApiKeyError(
                f"unknown province code {code!r}; the {places.province_count} codes are: {known}"
            ) from None
    return codes


def _validate_sources(scope: Scope, sources: Iterable[str]) -> tuple[str, ...]:
    ids = tuple(sorted(set(sources)))
    if scope is not Scope.FEED:
        if ids:
            raise ApiKeyError(
                f"sources {', '.join(ids)} given with scope {scope}: only scope {Scope.FEED} "
                "names sources"
            )
        return ()
    if not ids:
        raise ApiKeyError(f"scope {Scope.FEED} needs at least one --source id")
    for source_id in ids:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}", source_id):
            raise ApiKeyError(f"{source_id!r} is not a source id")
    return ids


def _validate_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > _NAME_MAX or not name.isprintable():
        raise ApiKeyError(
            f"key name {name!r} must be 1-{_NAME_MAX} printable characters (who or what uses it)"
        )
    return name


def _moment(value: Any, field: str, where: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiKeyError(f"{where}: {field} must be an RFC 3339 string or null, got {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiKeyError(f"{where}: {field} {value!r} is not an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        raise ApiKeyError(f"{where}: {field} {value!r} has no UTC offset")
    return moment


def _entry(raw: Any, path: Path) -> ApiKey:
    where = f"{path}: key {raw.get('key_id') if isinstance(raw, dict) else raw!r}"
    if not isinstance(raw, dict):
        raise ApiKeyError(f"{where}: each key must be an object")
    try:
        key_id, name, scope_text = raw["key_id"], raw["name"], raw["scope"]
        provinces, created, digest = raw["provinces"], raw["created"], raw["hash"]
    except KeyError as exc:
        raise ApiKeyError(f"{where}: missing field {exc.args[0]!r}") from None
    if not (isinstance(key_id, str) and re.fullmatch(r"[0-9a-f]{12}", key_id)):
        raise ApiKeyError(f"{where}: key_id must be 12 hex digits")
    try:
        scope = Scope(scope_text)
    except ValueError:
        raise ApiKeyError(f"{where}: unknown scope {scope_text!r}") from None
    if not (isinstance(provinces, list) and all(isinstance(p, str) for p in provinces)):
        raise ApiKeyError(f"{where}: provinces must be a list of codes")
    sources = raw.get("sources", [])
    if not (isinstance(sources, list) and all(isinstance(x, str) for x in sources)):
        raise ApiKeyError(f"{where}: sources must be a list of source ids")
    if not (isinstance(digest, str) and digest.startswith(_HASH_PREFIX)):
        raise ApiKeyError(f"{where}: hash must start with {_HASH_PREFIX!r}")
    created_at = _moment(created, "created", where)
    if created_at is None or not isinstance(name, str):
        raise ApiKeyError(f"{where}: name and created are required")
    return ApiKey(
        key_id=key_id,
        name=name,
        scope=scope,
        provinces=tuple(provinces),
        created=created_at,
        expires=_moment(raw.get("expires"), "expires", where),
        revoked=_moment(raw.get("revoked"), "revoked", where),
        secret_hash=digest,
        sources=tuple(sources),
    )


def _parse(text: str, path: Path) -> dict[str, ApiKey]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ApiKeyError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ApiKeyError(f'{path}: expected {{"version": 1, "keys": [...]}}')
    if document.get("version") != _FILE_VERSION:
        raise ApiKeyError(f"{path}: unsupported version {document.get('version')!r}")
    keys: dict[str, ApiKey] = {}
    for raw in document["keys"]:
        key = _entry(raw, path)
        if key.key_id in keys:
            raise ApiKeyError(f"{path}: duplicate key_id {key.key_id!r}")
        keys[key.key_id] = key
    return keys


def _serialise(keys: Iterable[ApiKey]) -> str:
    entries = [
        {**key.describe(), "hash": key.secret_hash}
        for key in sorted(keys, key=lambda k: (k.created, k.key_id))
    ]
    return json.dumps({"version": _FILE_VERSION, "keys": entries}, indent=2, sort_keys=True)


_Signature = tuple[int, int, int, int, int]


def _signature(stat: os.stat_result) -> _Signature:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class KeyStore:
    """The key file: created, listed and revoked by ``ioc keys``, read by every API worker."""

    def __init__(
        self,
        path: Path,
        *,
        recheck_s: float = RECHECK_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Nothing is read until first use; a missing file is an empty store."""
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._recheck_s = recheck_s
        self._monotonic = monotonic
        self._keys: dict[str, ApiKey] = {}
        self._signature: _Signature | None = None
        self._loaded = False
        self._checked_at = 0.0
        self._reload_lock = threading.Lock()

    # --- reading (API workers: never raises on a bad file once a good one was seen) ---

    def _read_text(self) -> tuple[str | None, _Signature | None]:
        """The file's text (None if there is no file) and the signature of what was read."""
        try:
            with self.path.open("rb") as file:
                signature = _signature(os.fstat(file.fileno()))
                data = file.read()
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            raise ApiKeyError(f"{self.path}: cannot read: {exc.strerror}") from None
        try:
            return data.decode("utf-8"), signature
        except UnicodeDecodeError:
            return "\ufffd", signature  # reported by _parse as invalid JSON

    def _read(self) -> dict[str, ApiKey]:
        text, _ = self._read_text()
        return {} if text is None else _parse(text, self.path)

    def _stat(self) -> _Signature | None:
        try:
            return _signature(self.path.stat())
        except OSError:
            return None

    def _refresh(self, *, strict: bool) -> dict[str, ApiKey]:
        """The current keys, re-read if the file changed; ``strict`` re-reads, raises if bad."""
        with self._reload_lock:
            self._checked_at = self._monotonic()
            if not strict and self._loaded and self._stat() == self._signature:
                return self._keys
            signature = None
            try:
                text, signature = self._read_text()
                self._keys = {} if text is None else _parse(text, self.path)
            except ApiKeyError as exc:
                if strict:
                    raise
                # Keep the last good keys (none if there never were): a half-edited file must
                # not lock everybody out, nor let anybody in. Logged once per version of the file.
                log.error("API keys not reloaded, keeping the %d known: %s", len(self._keys), exc)
                signature = signature or self._stat()
            self._signature, self._loaded = signature, True
            return self._keys

    def _current(self) -> dict[str, ApiKey]:
        if self._loaded and self._monotonic() - self._checked_at < self._recheck_s:
            return self._keys
        return self._refresh(strict=False)

    def list(self) -> tuple[ApiKey, ...]:
        """Every key (active, expired and revoked), oldest first."""
        keys = self._refresh(strict=True).values()
        return tuple(sorted(keys, key=lambda k: (k.created, k.key_id)))

    def check(self, presented: str | None, now: datetime | None = None) -> Verification:
        """Verify a presented key; the refusal reason is for logs only."""
        now = _utc_now(now)
        text = presented or ""
        match = _KEY_PATTERN.fullmatch(text) if len(text) <= _MAX_PRESENTED else None
        if match is None:
            return Verification(None, "malformed", None)
        key_id, secret = match.groups()
        key = self._current().get(key_id)
        expected = key.secret_hash if key is not None else _DUMMY_DIGEST
        matches = hmac.compare_digest(_digest(key_id, secret), expected)
        if key is None:
            return Verification(None, "unknown_key", key_id)
        if not matches:
            return Verification(None, "wrong_secret", key_id)
        status = key.status(now)
        if status == "revoked":
            return Verification(None, "revoked", key_id)
        if status == "expired":
            return Verification(None, "expired", key_id)
        return Verification(key.principal(), None, key_id)

    def verify(self, presented: str | None, now: datetime | None = None) -> Principal | None:
        """The caller's Principal, or None (malformed, unknown, wrong, revoked or expired)."""
        result = self.check(presented, now)
        if result.principal is None:
            log.info("API key refused: %s (key id %s)", result.reason, result.key_id or "-")
        return result.principal

    # --- writing (``ioc keys``: one writer at a time, atomic replace) ---

    @contextmanager
    def _writing(self) -> Iterator[dict[str, ApiKey]]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            keys = self._read()
            yield keys
            self._write(keys)
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, keys: dict[str, ApiKey]) -> None:
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:  # mkstemp: mode 0600
                file.write(_serialise(keys.values()) + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        with self._reload_lock:
            self._keys, self._signature, self._loaded = dict(keys), self._stat(), True

    def create(
        self,
        name: str,
        scope: Scope | str = Scope.READ,
        provinces: Iterable[str] = (),
        *,
        sources: Iterable[str] = (),
        expires: timedelta | datetime | None = DEFAULT_LIFETIME,
        now: datetime | None = None,
    ) -> tuple[ApiKey, str]:
        """Store a new key; return it and its cleartext (shown once, never stored).

        ``expires`` is a lifetime from now, an absolute instant, or None for a key that never
        expires.
        """
        now = _utc_now(now).replace(microsecond=0)
        try:
            scope = Scope(scope)
        except ValueError:
            allowed = ", ".join(s.value for s in Scope)
            raise ApiKeyError(f"unknown scope {scope!r}; expected one of {allowed}") from None
        codes = _validate_provinces(scope, provinces)
        source_ids = _validate_sources(scope, sources)
        expires_at = now + expires if isinstance(expires, timedelta) else expires
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise ApiKeyError(f"expiry {expires_at.isoformat()} has no UTC offset")
            if expires_at <= now:
                raise ApiKeyError(f"expiry {_text(expires_at)} is not in the future")
            expires_at = expires_at.astimezone(UTC)
        name = _validate_name(name)
        with self._writing() as keys:
            key_id = secrets.token_hex(_KEY_ID_BYTES)
            while key_id in keys:
                key_id = secrets.token_hex(_KEY_ID_BYTES)
            secret = secrets.token_urlsafe(_SECRET_BYTES)
            key = ApiKey(
                key_id,
                name,
                scope,
                codes,
                now,
                expires_at,
                None,
                _digest(key_id, secret),
                source_ids,
            )
            keys[key_id] = key
        log.info("API key %s (%s, scope %s) created", key_id, name, scope)
        return key, f"{_PREFIX}_{key_id}_{secret}"

    def revoke(self, key_id: str, now: datetime | None = None) -> tuple[ApiKey, bool]:
        """Revoke a key for good; return it and whether it was active until now."""
        now = _utc_now(now).replace(microsecond=0)
        with self._writing() as keys:
            key = keys.get(key_id)
            if key is None:
                raise ApiKeyError(f"no API key with id {key_id!r} (see `ioc keys list`)")
            if key.revoked is not None:
                return key, False
            keys[key_id] = key = replace(key, revoked=now)
        log.info("API key %s (%s) revoked", key_id, key.name)
        return key, True


# --- the ``ioc keys`` command ---


def _duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: a number and a unit m, h, d or w (e.g. 90d, 12w)"
        )
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _instant(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 date-time") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no UTC offset (add Z or +07:00)")
    return moment


def configure(parser: argparse.ArgumentParser) -> None:
    """Add ``create``, ``list`` and ``revoke``."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it (only this once)")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument(
        "--scope",
        choices=[s.value for s in Scope],
        default=Scope.READ.value,
        help="read: every province; read:provinces: only --province ones; operator: read "
        "plus dead letters and feed health; feed: push readings for the --source ones "
        "(default: read)",
    )
    create.add_argument(
        "--province",
        action="append",
        default=[],
        metavar="CODE",
        help="a 2-digit province code for scope read:provinces (repeat for several)",
    )
    create.add_argument(
        "--source",
        action="append",
        default=[],
        metavar="ID",
        help="a registered source id for scope feed (repeat for several)",
    )
    expiry = create.add_mutually_exclusive_group()
    expiry.add_argument(
        "--expires",
        type=_duration,
        metavar="DURATION",
        help=f"lifetime such as 90d, 12w, 24h (default {DEFAULT_LIFETIME.days}d)",
    )
    expiry.add_argument(
        "--expires-at", type=_instant, metavar="TIME", help="e.g. 2026-12-31T00:00:00+07:00"
    )
    expiry.add_argument("--no-expiry", action="store_true", help="the key never expires")
    listing = actions.add_parser("list", help="every key with its status (never the secret)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    revoke = actions.add_parser("revoke", help="revoke a key (effective within a second)")
    revoke.add_argument("key_id", metavar="KEY_ID", help="as shown by `ioc keys list`")


def _scope_text(key: ApiKey) -> str:
    listed = key.provinces or key.sources
    return f"{key.scope} ({', '.join(listed)})" if listed else str(key.scope)


def _create(store: KeyStore, settings: Settings, args: argparse.Namespace) -> int:
    expires: timedelta | datetime | None = DEFAULT_LIFETIME
    if args.no_expiry:
        expires = None
    elif args.expires_at is not None:
        expires = args.expires_at
    elif args.expires is not None:
        expires = args.expires
    if args.source:
        from ioc.catalog import get_catalog  # noqa: PLC0415 - only feed keys need the registry

        registry = get_catalog(settings.registry_file).registry
        unknown = [s for s in args.source if registry.get(s) is None]
        if unknown:
            raise ApiKeyError(
                f"source {', '.join(map(repr, unknown))} is not in the registry {registry.path}"
            )
    key, cleartext = store.create(
        args.name, args.scope, args.province, sources=args.source, expires=expires
    )
    print(
        f"created API key {key.key_id} ({key.name}), scope {_scope_text(key)}, "
        f"expires {_text(key.expires) or 'never'}"
    )
    print("The key is shown only this once; store it now:")
    print(cleartext)
    base = f"http://{settings.api_host}:{settings.api_port}"
    print(f"Use it: curl -H '{HEADER}: {cleartext}' {base}{EXAMPLE_PATH}")
    return 0


def _list(store: KeyStore, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    keys = store.list()
    if args.json:
        print(json.dumps([{**k.describe(), "status": k.status(now)} for k in keys], indent=2))
        return 0
    if not keys:
        print(f"no API keys in {store.path} (create one with `ioc keys create --name NAME`)")
        return 0
    print(f"{'KEY_ID':<12}  {'STATUS':<7}  {'SCOPE':<24}  {'EXPIRES':<25}  NAME")
    for k in keys:
        print(
            f"{k.key_id:<12}  {k.status(now):<7}  {_scope_text(k):<24}  "
            f"{_text(k.expires) or 'never':<25}  {k.name}"
        )
    return 0


def _revoke(store: KeyStore, args: argparse.Namespace) -> int:
    key, was_active = store.revoke(args.key_id)
    if was_active:
        print(f"revoked API key {key.key_id} ({key.name}); refused from now on")
    else:
        print(f"API key {key.key_id} ({key.name}) was already revoked at {_text(key.revoked)}")
    return 0


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run ``ioc keys ACTION`` against ``settings.api_keys_path``."""
    store = KeyStore(settings.api_keys_path)
    if args.action == "create":
        return _create(store, settings, args)
    if args.action == "list":
        return _list(store, args)
    if args.action == "revoke":
        return _revoke(store, args)
    print(f"ioc keys: unknown action {args.action!r}", file=sys.stderr)  # pragma: no cover
    return 2  # pragma: no cover
