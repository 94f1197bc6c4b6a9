"""``ioc devices``: broker users from the registry, the ACL text, the password file."""

from __future__ import annotations

import base64
import hashlib
import stat
import subprocess
from pathlib import Path

import pytest

from ingest import brokerlog
from ingest.router import SUBSCRIPTIONS
from ioc.catalog import Catalog
from ioc.cli import main
from ioc.devices import (
    BROKER_LOG_TOPIC,
    COLLECTOR_TOPICS,
    DevicesError,
    Grant,
    broker_users,
    hash_password,
    lorawan_ref,
    password_entries,
    read_password_file,
    render_acl,
)


def test_the_collectors_grants_are_exactly_their_subscriptions() -> None:
    assert COLLECTOR_TOPICS == SUBSCRIPTIONS
    assert BROKER_LOG_TOPIC == brokerlog.BROKER_LOG_TOPIC


@pytest.mark.parametrize(
    ("ref", "network"),
    [
        ("0004a30b001c1234", "chirpstack"),
        ("0004A30B001C1234", "chirpstack"),
        ("tts-air-1", "tts"),
        ("eui-70b3d57ed0051a01", "tts"),
        ("urn:dev:ow:10e2073a01080063:", None),
        ("Station.1", None),
        ("ab", None),
        ("a--b", None),
    ],
)
def test_lorawan_refs_are_recognised_by_their_form(ref: str, network: str | None) -> None:
    assert lorawan_ref(ref) == network


def test_users_and_grants_of_the_sample_registry(sample_catalog: Catalog) -> None:
    found = broker_users(sample_catalog, dead_letter_topic="ioc/dl/", alerts_topic="ioc/alerts/v1")
    users = {u.name: u.grants for u in found}
    assert users == {
        "ioc-ingest": (
            Grant("read", "ioc/v1/#"),
            Grant("read", "v3/+/devices/+/up"),
            Grant("read", "application/+/device/+/event/+"),
            Grant("read", "$SYS/broker/log/N"),
            Grant("write", "ioc/dl/#"),
        ),
        "ioc-probe": (Grant("write", "ioc/v1/01/01-portal-probe/probe"),),
        "ioc-health": (Grant("read", "$SYS/broker/uptime"),),
        "ioc-alerts": (Grant("write", "ioc/alerts/v1/#"),),
        "alerts-reader": (Grant("read", "ioc/alerts/v1/#"),),
        "lns-tts": (Grant("write", "v3/+/devices/tts-air-1/up"),),
        "lns-chirpstack": (Grant("write", "application/+/device/0004a30b001c1234/event/+"),),
        "01-air-a": (
            Grant("write", "ioc/v1/01/01-air-a/air"),
            Grant("write", "ioc/v1/01/01-air-a/air/senml"),
        ),
        "46-dvc": (
            Grant("write", "ioc/v1/46/46-dvc/service"),
            Grant("write", "ioc/v1/46/46-dvc/service/senml"),
        ),
        "01-air-senml": (
            Grant("write", "ioc/v1/01/01-air-senml/air"),
            Grant("write", "ioc/v1/01/01-air-senml/air/senml"),
        ),
    }


def test_without_a_dead_letter_topic_collectors_write_nothing(sample_catalog: Catalog) -> None:
    ingest = broker_users(sample_catalog, dead_letter_topic=None, alerts_topic="ioc/alerts/v1")[0]
    assert {g.access for g in ingest.grants} == {"read"}


def test_the_alert_users_follow_the_alerts_topic_setting(sample_catalog: Catalog) -> None:
    users = {
        u.name: u.grants
        for u in broker_users(sample_catalog, dead_letter_topic=None, alerts_topic="hue/a")
    }
    assert users["ioc-alerts"] == (Grant("write", "hue/a/#"),)
    assert users["alerts-reader"] == (Grant("read", "hue/a/#"),)
    for beside in ("ioc/alerts/v1", "ioc/v2", "v3/app/devices/x/down", "application/7/dev"):
        alerts = broker_users(sample_catalog, dead_letter_topic=None, alerts_topic=beside)[3]
        assert alerts.grants == (Grant("write", f"{beside}/#"),)


@pytest.mark.parametrize(
    "topic",
    ["ioc/v1/alerts", "ioc/v1", "ioc", "v3/app/devices/x/up", "application/7/device/x/event"],
)
def test_the_alerts_topic_cannot_lie_inside_the_collectors_topics(
    sample_catalog: Catalog, topic: str
) -> None:
    with pytest.raises(DevicesError, match="IOC_ALERTS_TOPIC"):
        broker_users(sample_catalog, dead_letter_topic=None, alerts_topic=topic)


def test_the_acl_has_explicit_user_blocks_only(sample_catalog: Catalog) -> None:
    users = broker_users(sample_catalog, dead_letter_topic=None, alerts_topic="ioc/alerts/v1")
    text = render_acl(users, "sources.toml")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "user ioc-ingest"  # nothing before it: anonymous clients get nothing
    assert all(line.startswith(("user ", "topic read ", "topic write ")) for line in lines)
    assert "%" not in text and "readwrite" not in text


def test_the_hash_is_mosquittos_pbkdf2_sha512_format() -> None:
    salt = bytes(range(12))
    hashed = hash_password("s3cret", salt=salt)
    kind, iterations, salt_b64, digest_b64 = hashed.split("$")[1:]
    assert (kind, iterations) == ("7", "101")
    assert base64.b64decode(salt_b64) == salt
    assert base64.b64decode(digest_b64) == hashlib.pbkdf2_hmac("sha512", b"s3cret", salt, 101)


def test_hashes_are_kept_new_users_added_removed_users_dropped() -> None:
    hashes, cleartext = password_entries(["a", "b"], {"a": "$7$old", "gone": "$7$x"}, rotate=[])
    assert hashes["a"] == "$7$old" and set(hashes) == {"a", "b"}
    assert set(cleartext) == {"b"}
    hashes, cleartext = password_entries(["a", "b"], {"a": "$7$old", "b": "$7$b"}, rotate=["a"])
    assert set(cleartext) == {"a"} and hashes["a"] != "$7$old" and hashes["b"] == "$7$b"
    assert set(password_entries(["a", "b"], {"a": "x", "b": "y"}, rotate="all")[1]) == {"a", "b"}
    with pytest.raises(DevicesError, match="not broker users"):
        password_entries(["a"], {}, rotate=["zz"])


def test_a_source_id_with_a_colon_cannot_be_a_mosquitto_user() -> None:
    with pytest.raises(DevicesError, match="cannot contain ':'"):
        password_entries(["ok", "bad:id"], {}, rotate=[])


def test_passwd_command_writes_private_files_and_keeps_existing_users(
    sample_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IOC_REGISTRY_FILE", str(sample_registry))
    passwd, secrets = tmp_path / "passwd", tmp_path / "new.tsv"
    assert main(["devices", "passwd", "--output", str(passwd), "--secrets", str(secrets)]) == 0
    for path in (passwd, secrets):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = read_password_file(passwd)
    assert len(first) == 10 and len(secrets.read_text().splitlines()) == 11  # with the header
    secrets.unlink()
    assert main(["devices", "passwd", "--output", str(passwd), "--secrets", str(secrets)]) == 0
    assert read_password_file(passwd) == first and not secrets.exists()
    argv = ["devices", "passwd", "--output", str(passwd), "--secrets", str(secrets)]
    assert main([*argv, "--rotate", "46-dvc"]) == 0
    assert secrets.read_text().splitlines()[1].startswith("46-dvc\t")


@pytest.mark.skipif(
    not Path("/usr/bin/mosquitto_passwd").exists(), reason="mosquitto_passwd not installed"
)
def test_files_updated_by_mosquitto_passwd_stay_readable(tmp_path: Path) -> None:
    passwd = tmp_path / "passwd"
    hashes, _ = password_entries(["ioc-ingest"], {}, rotate=[])
    passwd.write_text("".join(f"{n}:{h}\n" for n, h in hashes.items()))
    subprocess.run(["/usr/bin/mosquitto_passwd", "-b", str(passwd), "extra", "pw"], check=True)
    assert set(read_password_file(passwd)) == {"ioc-ingest", "extra"}
