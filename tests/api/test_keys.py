"""API keys: storage, verification, scopes, reloading across processes, and ``ioc keys``."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ioc import cli
from ioc.api.keys import (
    DEFAULT_LIFETIME,
    KeyStore,
    Scope,
    presented_key,
)
from ioc.errors import ApiKeyError

T0 = datetime(2025, 11, 1, 8, 0, tzinfo=UTC)
KEY_LINE = re.compile(r"^ioc_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$", re.MULTILINE)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "state" / "keys.json"


@pytest.fixture
def store(key_file: Path) -> KeyStore:
    return KeyStore(key_file)


def test_create_verify_revoke_round_trip(store: KeyStore) -> None:
    key, cleartext = store.create("wall-hanoi", Scope.READ, now=T0)
    assert cleartext.startswith(f"ioc_{key.key_id}_")
    assert key.expires == T0 + DEFAULT_LIFETIME
    principal = store.verify(cleartext, T0 + timedelta(minutes=1))
    assert principal is not None
    assert (principal.key_id, principal.name, principal.scope) == (key.key_id, "wall-hanoi", "read")
    assert principal.provinces is None

    revoked, was_active = store.revoke(key.key_id, now=T0 + timedelta(hours=1))
    assert was_active
    assert revoked.revoked == T0 + timedelta(hours=1)
    assert store.verify(cleartext, T0 + timedelta(hours=2)) is None
    assert store.check(cleartext, T0 + timedelta(hours=2)).reason == "revoked"
    assert store.revoke(key.key_id)[1] is False  # idempotent
    assert [k.status(T0) for k in store.list()] == ["revoked"]


def test_a_key_expires_at_its_expiry_instant(store: KeyStore) -> None:
    key, cleartext = store.create("short", expires=timedelta(days=1), now=T0)
    assert key.expires == T0 + timedelta(days=1)
    assert store.verify(cleartext, T0 + timedelta(days=1, seconds=-1)) is not None
    assert store.verify(cleartext, T0 + timedelta(days=1)) is None
    assert store.check(cleartext, T0 + timedelta(days=1)).reason == "expired"
    assert store.list()[0].status(T0 + timedelta(days=2)) == "expired"


def test_absolute_expiry_is_stored_in_utc_and_none_never_expires(store: KeyStore) -> None:
    at = datetime.fromisoformat("2026-12-31T00:00:00+07:00")
    dated, _ = store.create("dated", expires=at, now=T0)
    assert dated.expires == at
    assert dated.expires is not None and dated.expires.utcoffset() == timedelta(0)
    forever, cleartext = store.create("forever", expires=None, now=T0)
    assert forever.expires is None
    assert store.verify(cleartext, T0 + timedelta(days=36500)) is not None


def test_stored_file_holds_no_secret_and_is_private(store: KeyStore, key_file: Path) -> None:
    _, cleartext = store.create("wall", now=T0)
    secret = cleartext.split("_", 2)[2]
    text = key_file.read_text()
    assert secret not in text
    assert cleartext not in text
    assert json.loads(text)["keys"][0]["hash"].startswith("sha256:")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert [p.name for p in key_file.parent.iterdir() if p.name.startswith(".")] == []


def test_wrong_secret_with_right_id_fails(store: KeyStore) -> None:
    key, cleartext = store.create("wall", now=T0)
    _, other = store.create("other", now=T0)
    forged = f"ioc_{key.key_id}_{other.split('_', 2)[2]}"
    result = store.check(forged, T0)
    assert (result.principal, result.reason, result.key_id) == (None, "wrong_secret", key.key_id)
    last = cleartext[-1]
    tampered = cleartext[:-1] + ("A" if last != "A" else "B")
    assert store.verify(tampered, T0) is None


@pytest.mark.parametrize(
    "presented",
    [
        None,
        "",
        "ioc_",
        "not-a-key",
        "ioc_0123456789ab",
        "ioc_0123456789ab_short",
        "ioc_0123456789AB_" + "a" * 43,  # the id is lower-case hex
        "ioc_0123456789a_" + "a" * 43,
        "xyz_0123456789ab_" + "a" * 43,
        "ioc_0123456789ab_" + "a" * 42 + "!",
        "ioc_0123456789ab_" + "a" * 300,
    ],
)
def test_malformed_keys_fail(store: KeyStore, presented: str | None) -> None:
    store.create("wall", now=T0)
    assert store.check(presented, T0).reason == "malformed"
    assert store.verify(presented, T0) is None


def test_unknown_key_id_fails(store: KeyStore) -> None:
    _, cleartext = store.create("wall", now=T0)
    unknown = "ioc_" + "f" * 12 + "_" + cleartext.split("_", 2)[2]
    assert store.check(unknown, T0).reason == "unknown_key"


def test_province_scope_limits_reading(store: KeyStore) -> None:
    key, cleartext = store.create("hcmc", "read:provinces", ["79", "01", "79"], now=T0)
    assert key.provinces == ("01", "79")
    principal = store.verify(cleartext, T0)
    assert principal is not None
    assert principal.provinces == frozenset({"01", "79"})
    assert principal.can_read_province("79")
    assert principal.can_read_province("01")
    assert not principal.can_read_province("48")
    assert not principal.is_operator


@pytest.mark.parametrize(("scope", "operator"), [("read", False), ("operator", True)])
def test_unscoped_keys_read_every_province(store: KeyStore, scope: str, operator: bool) -> None:
    _, cleartext = store.create("national", scope, now=T0)
    principal = store.verify(cleartext, T0)
    assert principal is not None
    assert all(principal.can_read_province(code) for code in ("01", "48", "79", "96"))
    assert principal.is_operator is operator


@pytest.mark.parametrize(
    ("scope", "provinces", "expires", "message"),
    [
        ("admin", [], DEFAULT_LIFETIME, "unknown scope 'admin'"),
        ("read:provinces", [], DEFAULT_LIFETIME, "needs at least one province"),
        ("read:provinces", ["99"], DEFAULT_LIFETIME, "unknown province code '99'"),
        ("read:provinces", ["1"], DEFAULT_LIFETIME, "unknown province code '1'"),
        ("read", ["01"], DEFAULT_LIFETIME, "only scope read:provinces"),
        ("read", [], T0 - timedelta(seconds=1), "not in the future"),
        ("read", [], datetime(2030, 1, 1), "no UTC offset"),  # noqa: DTZ001
    ],
)
def test_create_rejects_bad_requests(
    store: KeyStore,
    scope: str,
    provinces: list[str],
    expires: timedelta | datetime,
    message: str,
) -> None:
    with pytest.raises(ApiKeyError, match=re.escape(message)):
        store.create("wall", scope, provinces, expires=expires, now=T0)
    assert not store.path.exists()


def test_revoking_an_unknown_key_id_fails(store: KeyStore) -> None:
    store.create("wall", now=T0)
    with pytest.raises(ApiKeyError, match="no API key with id 'abcdefabcdef'"):
        store.revoke("abcdefabcdef")


def test_a_missing_file_is_an_empty_store(store: KeyStore) -> None:
    assert store.list() == ()
    assert store.check("ioc_0123456789ab_" + "a" * 43, T0).reason == "unknown_key"


def test_a_damaged_file_keeps_the_last_good_keys(key_file: Path) -> None:
    clock = FakeClock()
    writer = KeyStore(key_file)
    _, cleartext = writer.create("wall", now=T0)
    reader = KeyStore(key_file, monotonic=clock)
    assert reader.verify(cleartext, T0) is not None
    key_file.write_text('{"version": 1, "keys": [')
    clock.now += 5
    assert reader.verify(cleartext, T0) is not None  # logged, not raised, not locked out
    with pytest.raises(ApiKeyError, match="not valid JSON"):
        reader.list()
    assert KeyStore(key_file).verify(cleartext, T0) is None  # never saw a good file: nobody in


def test_presented_key_reads_the_header_then_a_bearer_token() -> None:
    assert presented_key({"X-API-Key": " ioc_a "}) == "ioc_a"
    assert presented_key({"Authorization": "Bearer ioc_b"}) == "ioc_b"
    assert presented_key({"Authorization": "bearer  ioc_b "}) == "ioc_b"
    assert presented_key({"X-API-Key": "ioc_a", "Authorization": "Bearer ioc_b"}) == "ioc_a"
    assert presented_key({"Authorization": "Basic dXNlcjpwYXNz"}) is None
    assert presented_key({"Authorization": "Bearer "}) is None
    assert presented_key({}) is None


# --- other processes: the CLI and concurrent writers ---


def _env(key_file: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "IOC_VAR_DIR": str(key_file.parent.parent),
        "IOC_API_KEYS_FILE": str(key_file),
    }


def _ioc(key_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ioc.cli", *args],
        env=_env(key_file),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_revocation_by_the_cli_reaches_an_open_store_within_the_recheck(key_file: Path) -> None:
    clock = FakeClock()
    reader = KeyStore(key_file, monotonic=clock)
    key, cleartext = KeyStore(key_file).create("wall")
    assert reader.verify(cleartext) is not None

    result = _ioc(key_file, "keys", "revoke", key.key_id)
    assert result.returncode == 0, result.stderr
    assert f"revoked API key {key.key_id} (wall)" in result.stdout

    clock.now += 0.5
    assert reader.verify(cleartext) is not None  # no stat yet: at most once a second
    clock.now += 0.6
    assert reader.check(cleartext).reason == "revoked"


def test_a_key_created_by_the_cli_is_accepted_by_an_open_store(key_file: Path) -> None:
    clock = FakeClock()
    reader = KeyStore(key_file, monotonic=clock)
    assert reader.list() == ()
    result = _ioc(key_file, "keys", "create", "--name", "late")
    assert result.returncode == 0, result.stderr
    match = KEY_LINE.search(result.stdout)
    assert match is not None
    clock.now += 1.0
    assert reader.verify(match.group(0)) is not None


def _create_keys(path: str, count: int) -> None:
    store = KeyStore(Path(path))
    for n in range(count):
        store.create(f"writer-{os.getpid()}-{n}")


def test_concurrent_writers_lose_no_key(key_file: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_create_keys, args=(str(key_file), 10)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    keys = KeyStore(key_file).list()
    assert len(keys) == 40
    assert len({k.key_id for k in keys}) == 40


# --- ``ioc keys`` output and exit codes (in process) ---


@pytest.fixture
def cli_env(key_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("IOC_"):
            monkeypatch.delenv(name)
    for name, value in _env(key_file).items():
        monkeypatch.setenv(name, value)
    return key_file


def _create(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[str, str]:
    assert cli.main(["keys", "create", *args]) == 0
    out = capsys.readouterr().out
    match = KEY_LINE.search(out)
    assert match is not None, out
    return match.group(0), out


def test_cli_create_prints_the_key_once_with_a_usage_line(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cleartext, out = _create(
        capsys, "--name", "hcmc wall", "--scope", "read:provinces", "--province", "79"
    )
    assert out.count(cleartext) == 2  # the key line and the curl line
    assert f"curl -H 'X-API-Key: {cleartext}' http://127.0.0.1:18080/api/v1/indicators" in out
    assert "scope read:provinces (79)" in out
    principal = KeyStore(cli_env).verify(cleartext)
    assert principal is not None
    assert principal.provinces == frozenset({"79"})


@pytest.mark.parametrize(
    ("options", "lifetime"),
    [
        ([], DEFAULT_LIFETIME),
        (["--expires", "90d"], timedelta(days=90)),
        (["--expires", "12w"], timedelta(weeks=12)),
        (["--expires", "24h"], timedelta(hours=24)),
        (["--no-expiry"], None),
    ],
)
def test_cli_create_expiry_options(
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    lifetime: timedelta | None,
) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    _create(capsys, "--name", "wall", *options)
    (key,) = KeyStore(cli_env).list()
    if lifetime is None:
        assert key.expires is None
    else:
        assert key.expires is not None
        assert key.expires - key.created == lifetime
        assert key.created >= before


def test_cli_create_expires_at(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = _create(capsys, "--name", "wall", "--expires-at", "2099-12-31T00:00:00+07:00")
    assert "expires 2099-12-30T17:00:00+00:00" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "admin"], "invalid choice: 'admin'"),
        (["--expires", "90"], "'90' is not a duration"),
        (["--expires", "0d"], "'0d' is not a duration"),
        (["--expires-at", "2099-01-01T00:00:00"], "has no UTC offset"),
        (["--expires", "1d", "--no-expiry"], "not allowed with argument"),
    ],
)
def test_cli_create_usage_errors_exit_2(
    cli_env: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["keys", "create", "--name", "wall", *args])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert not cli_env.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "read:provinces", "--province", "99"], "unknown province code '99'"),
        (["--scope", "read:provinces"], "needs at least one province code"),
        (["--province", "01"], "only scope read:provinces"),
        (["--expires-at", "2001-01-01T00:00:00Z"], "is not in the future"),
        (["--name", " "], "must be 1-64 printable characters"),
    ],
)
def test_cli_create_invalid_requests_exit_1(
    cli_env: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert cli.main(["keys", "create", "--name", "wall", *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ioc: ")
    assert message in err
    assert not cli_env.exists()


def test_cli_list_shows_status_and_never_secrets(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = KeyStore(cli_env)
    old, old_text = store.create("old", now=T0, expires=timedelta(days=1))
    live, live_text = store.create("live", "operator")
    gone, gone_text = store.create("gone", "read:provinces", ["01", "48"])
    store.revoke(gone.key_id)

    assert cli.main(["keys", "list"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert rows[old.key_id].split()[1] == "expired"
    assert rows[live.key_id].split()[1:3] == ["active", "operator"]
    assert rows[gone.key_id].split()[1] == "revoked"
    assert "read:provinces (01, 48)" in rows[gone.key_id]

    assert cli.main(["keys", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {k["key_id"]: k["status"] for k in listed} == {
        old.key_id: "expired",
        live.key_id: "active",
        gone.key_id: "revoked",
    }
    assert all("hash" not in k for k in listed)
    for text in (out, json.dumps(listed)):
        assert "sha256" not in text
        for cleartext in (old_text, live_text, gone_text):
            assert cleartext.split("_", 2)[2] not in text


def test_cli_list_of_an_empty_store(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["keys", "list"]) == 0
    assert "no API keys in" in capsys.readouterr().out
    assert cli.main(["keys", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cli_revoke(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cleartext, _ = _create(capsys, "--name", "wall")
    key_id = cleartext.split("_")[1]
    assert cli.main(["keys", "revoke", key_id]) == 0
    assert "revoked API key" in capsys.readouterr().out
    assert KeyStore(cli_env).verify(cleartext) is None
    assert cli.main(["keys", "revoke", key_id]) == 0
    assert "was already revoked" in capsys.readouterr().out

    assert cli.main(["keys", "revoke", "0123456789ab"]) == 1
    assert "no API key with id '0123456789ab'" in capsys.readouterr().err


def test_cli_reports_a_damaged_key_file(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli_env.parent.mkdir(parents=True)
    cli_env.write_text("[]")
    assert cli.main(["keys", "list"]) == 1
    assert f"ioc: {cli_env}: expected" in capsys.readouterr().err
    assert cli.main(["keys", "create", "--name", "wall"]) == 1
    assert cli_env.read_text() == "[]"  # not overwritten
