"""``ioc devices``: the broker's users, passwords and topic ACLs, generated from the registry.

Who may do what on the production Mosquitto (``deploy/mosquitto/``) follows from the registry
(``IOC_REGISTRY_FILE``) and nothing else:

* a device or departmental feed that speaks MQTT itself (IOC JSON or SenML) is a user named by
  its source id, allowed to write ``ioc/v1/<province>/<id>/<kind>`` and ``.../<kind>/senml``;
* LoRaWAN end devices never speak MQTT: their network server's integration does. ``lns-tts``
  may write ``v3/+/devices/<device_id>/up`` for each registered The Things Stack device id,
  ``lns-chirpstack`` ``application/+/device/<dev_eui>/event/+`` for each registered DevEUI;
* ``ioc-probe`` writes the topics of the registry's probe sources;
* ``ioc-ingest`` (every collector) reads the collectors' subscriptions and the broker's NOTICE
  log ``$SYS/broker/log/N`` (what the broker refused, with client ids, user names and
  addresses: nobody else reads it), and writes the dead-letter topic when one is configured;
  ``ioc-health`` reads ``$SYS/broker/uptime`` (health checks);
* ``ioc-alerts`` (the alert evaluator) writes the retained alert states under
  ``<IOC_ALERTS_TOPIC>/#``; ``alerts-reader`` (displays, sirens) may only read them;
* nobody else may do anything: no anonymous access, no ``pattern`` lines.

Every grant is an explicit ``topic`` line under its ``user`` line, so the file can be audited by
reading it (a ``pattern ... %u`` rule would be shorter but hides which users exist). A registry
device reference is taken as a LoRaWAN identifier by its form (see :func:`lorawan_ref`).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import logging
import os
import re
import secrets
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ioc.errors import IocError

if TYPE_CHECKING:
    from ioc.catalog import Catalog, Source
    from ioc.settings import Settings

log = logging.getLogger(__name__)

HELP = "Mosquitto password file and per-device ACLs generated from the source registry"

INGEST_USER = "ioc-ingest"
PROBE_USER = "ioc-probe"
HEALTH_USER = "ioc-health"
ALERTS_USER = "ioc-alerts"
ALERTS_READER_USER = "alerts-reader"
TTS_USER = "lns-tts"
CHIRPSTACK_USER = "lns-chirpstack"
SERVICE_USERS = (
    INGEST_USER,
    PROBE_USER,
    HEALTH_USER,
    ALERTS_USER,
    ALERTS_READER_USER,
    TTS_USER,
    CHIRPSTACK_USER,
)

HEALTH_TOPIC = "$SYS/broker/uptime"
BROKER_LOG_TOPIC = "$SYS/broker/log/N"
"""The broker's NOTICE log lines, which collectors read to count what the broker refused
(``ingest.brokerlog.BROKER_LOG_TOPIC``; a test keeps the two equal)."""
COLLECTOR_TOPICS = (
    "ioc/v1/#",
    "v3/+/devices/+/up",
    "application/+/device/+/event/+",
)
"""What collectors read: ``ingest.router.SUBSCRIPTIONS`` (a test keeps the two equal). Mosquitto
2.0 checks a ``$share/<group>/<filter>`` subscription, and each delivery, against ``<filter>``
without the prefix, so these grants cover shared subscriptions too."""

PBKDF2_ITERATIONS = 101
"""Mosquitto's own default for ``$7$`` hashes. The passwords are random 192-bit tokens, so a
slower hash adds no protection, while the single-threaded broker pays it on every CONNECT (all
devices reconnect at once after a restart)."""
_SALT_BYTES = 12

_DEV_EUI = re.compile(r"[0-9A-Fa-f]{16}")
_TTS_DEVICE_ID = re.compile(r"[a-z0-9](?:-?[a-z0-9]){2,35}")

Network = Literal["tts", "chirpstack"]
Access = Literal["read", "write"]


class DevicesError(IocError):
    """The registry cannot be expressed as Mosquitto users (names the source and why)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """One ``topic <access> <filter>`` line of the ACL file."""

    access: Access
    topic: str


@dataclass(frozen=True, slots=True)
class BrokerUser:
    """An MQTT user name and everything it may do."""

    name: str
    role: str
    grants: tuple[Grant, ...]


def lorawan_ref(ref: str) -> Network | None:
    """Which network server a registry ``device_refs`` entry names, if any, by its form.

    16 hex digits are a DevEUI (ChirpStack v4 puts it, lower case, in its topics); a lower-case
    id of letters, digits and single dashes, 3-36 characters, is a The Things Stack device id;
    anything else (``urn:dev:...``, dots, colons, upper case) is a SenML base name.
    """
    if _DEV_EUI.fullmatch(ref):
        return "chirpstack"
    if _TTS_DEVICE_ID.fullmatch(ref):
        return "tts"
    return None


def _own_topics(source: Source) -> tuple[str, ...]:
    base = f"ioc/v1/{source.province}/{source.id}/{source.kind}"
    return (base, f"{base}/senml")


def _overlaps(prefix: str, topic_filter: str) -> bool:
    """Whether some topic is both under ``prefix/#`` (``prefix`` itself included) and matched by
    ``topic_filter``."""
    levels, filter_levels = prefix.split("/"), topic_filter.split("/")
    for level, wanted in zip(levels, filter_levels, strict=False):
        if wanted == "#":
            return True
        if wanted not in ("+", level):
            return False
    return len(filter_levels) >= len(levels)


def _alert_states(alerts_topic: str) -> str:
    """The filter of the retained alert states. Refused where it meets what collectors read: the
    evaluator's grant would let it publish readings."""
    prefix = alerts_topic.rstrip("/")
    clashes = [topic for topic in COLLECTOR_TOPICS if _overlaps(prefix, topic)]
    if clashes:
        raise DevicesError(
            f"IOC_ALERTS_TOPIC={alerts_topic!r}: {prefix}/# overlaps the collectors' "
            f"{', '.join(clashes)}, so the alert evaluator could publish readings; "
            "choose a prefix outside them, such as ioc/alerts/v1"
        )
    return f"{prefix}/#"


def broker_users(
    catalog: Catalog, *, dead_letter_topic: str | None, alerts_topic: str
) -> tuple[BrokerUser, ...]:
    """Every broker user with its grants: the service users first, then sources in registry
    order. A source with a LoRaWAN reference is published by its network server's user only."""
    tts: list[Grant] = []
    chirpstack: list[Grant] = []
    probe: list[Grant] = []
    devices: list[BrokerUser] = []
    for source in catalog.registry.sources:
        source_class = catalog.kind(source.kind).source_class.value
        if source_class == "probe":
            base = f"ioc/v1/{source.province}/{source.id}/{source.kind}"
            probe.append(Grant("write", base))
            continue
        networks = {ref: lorawan_ref(ref) for ref in source.device_refs}
        for ref, network in networks.items():
            if network == "tts":
                tts.append(Grant("write", f"v3/+/devices/{ref}/up"))
            elif network == "chirpstack":
                chirpstack.append(Grant("write", f"application/+/device/{ref.lower()}/event/+"))
        if any(networks.values()):
            continue
        if source.id in SERVICE_USERS:
            raise DevicesError(f"source {source.id!r}: the id is a reserved broker user name")
        grants = tuple(Grant("write", topic) for topic in _own_topics(source))
        name = " ".join(source.name.split())
        devices.append(BrokerUser(source.id, f"{source_class}: {name}", grants))

    ingest = [Grant("read", topic) for topic in COLLECTOR_TOPICS]
    ingest.append(Grant("read", BROKER_LOG_TOPIC))
    if dead_letter_topic:
        ingest.append(Grant("write", f"{dead_letter_topic.rstrip('/')}/#"))
    alert_states = _alert_states(alerts_topic)
    services = (
        BrokerUser(INGEST_USER, "collectors (ioc ingest)", tuple(ingest)),
        BrokerUser(PROBE_USER, "probes (ioc probe)", tuple(probe)),
        BrokerUser(HEALTH_USER, "health checks", (Grant("read", HEALTH_TOPIC),)),
        BrokerUser(
            ALERTS_USER, "the alert evaluator (ioc alerts run)", (Grant("write", alert_states),)
        ),
        BrokerUser(ALERTS_READER_USER, "alert displays and sirens", (Grant("read", alert_states),)),
        BrokerUser(TTS_USER, "The Things Stack MQTT integration", tuple(tts)),
        BrokerUser(CHIRPSTACK_USER, "ChirpStack MQTT integration", tuple(chirpstack)),
    )
    return services + tuple(devices)


def render_acl(users: Sequence[BrokerUser], registry_path: str) -> str:
    """The Mosquitto ``acl_file`` text: one ``user`` block per user, explicit topics only."""
    lines = [
        f"# Mosquitto ACL generated by `ioc devices acl` from {registry_path}.",
        "# Do not edit: change the registry and generate it again (docs/deploy.md).",
        "# No line precedes the first `user` line, so anonymous clients may do nothing, and no",
        "# `pattern` line is used: every grant below is explicit and names its user.",
    ]
    for user in users:
        lines += ["", f"# {user.role}", f"user {user.name}"]
        lines += [f"topic {grant.access} {grant.topic}" for grant in user.grants]
    return "\n".join(lines) + "\n"


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Mosquitto's ``$7$`` hash (PBKDF2-HMAC-SHA512), as ``mosquitto_passwd`` writes it."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    encode = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${encode(salt).decode()}${encode(digest).decode()}"


def new_password() -> str:
    """A random password: 24 bytes, URL-safe base64 (32 characters, no ``:`` or spaces)."""
    return secrets.token_urlsafe(24)


def _check_user_name(name: str) -> None:
    # The password file is ``name:hash`` and Mosquitto splits at the first colon.
    if ":" in name or not name or any(c.isspace() for c in name):
        raise DevicesError(
            f"source {name!r}: a Mosquitto user name cannot contain ':' or spaces; "
            "give the source an id without them"
        )


def read_password_file(path: Path) -> dict[str, str]:
    """``user -> hash`` of an existing Mosquitto password file (empty if there is none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        name, sep, hashed = line.partition(":")
        if not sep or not hashed:
            raise DevicesError(f"{path}:{number}: expected user:hash")
        entries[name] = hashed
    return entries


def password_entries(
    names: Iterable[str], existing: Mapping[str, str], rotate: Iterable[str] | Literal["all"]
) -> tuple[dict[str, str], dict[str, str]]:
    """``(user -> hash, user -> new cleartext)``: existing hashes are kept unless rotated,
    users missing from ``names`` are dropped, new and rotated users get new passwords."""
    names = list(names)
    rotated = set(names) if rotate == "all" else set(rotate)
    unknown = sorted(rotated - set(names))
    if unknown:
        raise DevicesError(f"--rotate: not broker users of this registry: {', '.join(unknown)}")
    hashes: dict[str, str] = {}
    cleartext: dict[str, str] = {}
    for name in names:
        _check_user_name(name)
        if name in existing and name not in rotated:
            hashes[name] = existing[name]
            continue
        password = new_password()
        cleartext[name] = password
        hashes[name] = hash_password(password)
    return hashes, cleartext


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` atomically to a file that is never readable by others, even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    partial.replace(path)


def configure(parser: argparse.ArgumentParser) -> None:
    """Subcommands ``acl`` and ``passwd``."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    acl = actions.add_parser("acl", help="write the Mosquitto acl_file for the registry")
    acl.add_argument("--output", type=Path, help="file to write (default: standard output)")
    passwd = actions.add_parser(
        "passwd",
        help="write the Mosquitto password_file: keep existing users' hashes, add new users",
    )
    passwd.add_argument("--output", type=Path, required=True, help="the password file")
    passwd.add_argument(
        "--secrets",
        default="-",
        help="where the new cleartext passwords go, once: a file created 0600, or - (stdout)",
    )
    passwd.add_argument(
        "--rotate",
        action="append",
        default=[],
        metavar="USER",
        help="give this user a new password (repeatable)",
    )
    passwd.add_argument("--rotate-all", action="store_true", help="new passwords for everyone")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Generate the ACL or password file from the registry."""
    from ioc.catalog import get_catalog  # noqa: PLC0415 - keep `ioc --help` cheap

    catalog = get_catalog(settings.registry_file)
    users = broker_users(
        catalog,
        dead_letter_topic=settings.ingest_dead_letter_topic,
        alerts_topic=settings.alerts_topic,
    )
    if args.action == "acl":
        text = render_acl(users, str(settings.registry_file))
        if args.output is None:
            sys.stdout.write(text)
        else:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(text, encoding="utf-8")
            print(f"{args.output}: {len(users)} users", file=sys.stderr)
        return 0
    existing = read_password_file(args.output)
    rotate: list[str] | Literal["all"] = "all" if args.rotate_all else args.rotate
    hashes, cleartext = password_entries((u.name for u in users), existing, rotate)
    write_private(args.output, "".join(f"{name}:{hashed}\n" for name, hashed in hashes.items()))
    dropped = sorted(set(existing) - set(hashes))
    print(
        f"{args.output}: {len(hashes)} users, {len(cleartext)} new passwords"
        + (f", removed {', '.join(dropped)}" if dropped else ""),
        file=sys.stderr,
    )
    secret_text = "".join(f"{name}\t{password}\n" for name, password in cleartext.items())
    if not cleartext:
        return 0
    header = "# user<TAB>password: shown once; give each to its owner, then delete this file\n"
    if args.secrets == "-":
        sys.stdout.write(header + secret_text)
    else:
        write_private(Path(args.secrets), header + secret_text)
        print(f"{args.secrets}: the new passwords (mode 0600)", file=sys.stderr)
    return 0
