"""``ioc bootstrap influxdb2``: organisation, buckets, DBRP mappings and least-privilege tokens.

InfluxDB 2.x keeps data in buckets; the project's InfluxQL names ``"<db>"."<rp>"."<measurement>"``,
so each retention policy of the settings becomes a bucket ``<db>/<rp>`` with the policy's
retention, and an explicit DBRP mapping (database ``<db>``, retention policy ``<rp>``, ``raw`` the
default) makes ``/query`` find it. Each process then gets a token that can do only its job:

======== ================================ =========================================
role     may                              used by
======== ================================ =========================================
ingest   write raw, ops                   ``ioc ingest`` (readings, dead letters, self-metrics)
engine   read raw; write derived, ops     ``ioc engine`` (indicators, its own metrics)
alerts   read raw, derived;               ``ioc alerts run`` (rules over readings and
         write derived, ops               indicators; ``derived.alert`` history, ``ops.alerts``)
api      read raw, derived, ops           ``ioc api``
grafana  read raw, derived, ops           Grafana's InfluxQL data source
======== ================================ =========================================

:func:`plan` is pure (tests check it); :func:`execute` applies it idempotently with
influxdb-client, authenticated by the operator's token in ``IOC_INFLUX_TOKEN`` (the one created
by InfluxDB's initial setup), and returns the new tokens, which are shown once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ioc.errors import IocError

if TYPE_CHECKING:
    from ioc.settings import Settings

log = logging.getLogger(__name__)

HELP = "set up a store: InfluxDB 2.x buckets, DBRP mappings and least-privilege tokens"

DEFAULT_RP = "raw"
TOKEN_PREFIX = "ioc:"  # noqa: S105 - a description prefix, not a secret
"""Tokens are found again by their description, ``ioc:<role>``."""

_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60}
_PART = re.compile(r"(\d+)([wdhm])")
MIN_RETENTION_S = 3600  # InfluxDB 2.x refuses shorter bucket retention


class BootstrapError(IocError):
    """The store cannot be set up as planned (names the setting or object and why)."""


@dataclass(frozen=True, slots=True)
class BucketPlan:
    """A bucket for one retention policy, and its DBRP mapping."""

    name: str
    database: str
    retention_policy: str
    retention: str
    every_seconds: int  # 0: keep forever
    default: bool  # the database's default retention policy for InfluxQL


@dataclass(frozen=True, slots=True)
class TokenPlan:
    """A token for one role: the buckets it may read and write, nothing else."""

    role: str
    variable: str  # the deployment variable that carries it (deploy/compose.yaml)
    read: tuple[str, ...]
    write: tuple[str, ...]

    @property
    def description(self) -> str:
        """How the token is named in InfluxDB (and found again on the next run)."""
        return f"{TOKEN_PREFIX}{self.role}"

    def permissions(self) -> tuple[tuple[str, str], ...]:
        """``(action, bucket name)`` pairs, reads first."""
        return tuple(("read", b) for b in self.read) + tuple(("write", b) for b in self.write)


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything ``execute`` creates or checks."""

    org: str
    database: str
    buckets: tuple[BucketPlan, ...]
    tokens: tuple[TokenPlan, ...]

    def bucket(self, retention_policy: str) -> BucketPlan:
        """The bucket of a retention policy; KeyError naming it otherwise."""
        for bucket in self.buckets:
            if bucket.retention_policy == retention_policy:
                return bucket
        raise KeyError(f"no bucket for retention policy {retention_policy!r}")


def retention_seconds(duration: str) -> int:
    """An InfluxQL duration setting (``400d``, ``12w``, ``1d12h``, ``INF``) in seconds; 0 = INF."""
    if duration == "INF":
        return 0
    parts = _PART.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise BootstrapError(f"retention {duration!r} is not a duration such as 400d or INF")
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)


def plan(settings: Settings) -> Plan:
    """What the store must look like for these settings (pure: no I/O)."""
    if not settings.influx_org:
        raise BootstrapError("IOC_INFLUX_ORG='': the organisation to create or use is required")
    db = settings.influx_db
    buckets = []
    for rp, duration in settings.retention_policies().items():
        seconds = retention_seconds(duration)
        if 0 < seconds < MIN_RETENTION_S:
            raise BootstrapError(
                f"IOC_RETENTION_{rp.upper()}={duration!r}: InfluxDB 2.x keeps a bucket at least 1h"
            )
        buckets.append(BucketPlan(f"{db}/{rp}", db, rp, duration, seconds, rp == DEFAULT_RP))
    raw, derived, ops = (f"{db}/{rp}" for rp in ("raw", "derived", "ops"))
    tokens = (
        TokenPlan("ingest", "INGEST_INFLUX_TOKEN", read=(), write=(raw, ops)),
        TokenPlan("engine", "ENGINE_INFLUX_TOKEN", read=(raw,), write=(derived, ops)),
        TokenPlan("alerts", "ALERTS_INFLUX_TOKEN", read=(raw, derived), write=(derived, ops)),
        TokenPlan("api", "API_INFLUX_TOKEN", read=(raw, derived, ops), write=()),
        TokenPlan("grafana", "GRAFANA_INFLUX_TOKEN", read=(raw, derived, ops), write=()),
    )
    return Plan(settings.influx_org, db, tuple(buckets), tokens)


def describe(the_plan: Plan) -> str:
    """The plan as text, for ``--plan`` and the log."""
    lines = [f"organisation {the_plan.org!r}"]
    for b in the_plan.buckets:
        keep = "forever" if b.every_seconds == 0 else f"{b.retention} ({b.every_seconds} s)"
        default = ", default" if b.default else ""
        lines.append(
            f"bucket {b.name!r}: retention {keep}; DBRP {b.database}.{b.retention_policy}{default}"
        )
    for t in the_plan.tokens:
        may = "; ".join(
            f"{action} {', '.join(names)}"
            for action, names in (("read", t.read), ("write", t.write))
            if names
        )
        lines.append(f"token {t.description!r} ({t.variable}): {may}")
    return "\n".join(lines)


# --- execution against a real InfluxDB 2.x (influxdb-client 1.50 APIs) ---------------------------


def _influx() -> Any:
    """The influxdb_client package, imported on use (untyped: its models are generated code)."""
    return importlib.import_module("influxdb_client")


def _not_found(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 404


def _organisation(client: Any, name: str) -> Any:
    api_exception = importlib.import_module("influxdb_client.rest").ApiException
    orgs_api = client.organizations_api()
    try:
        found = orgs_api.find_organizations(org=name)
    except api_exception as exc:
        if not _not_found(exc):
            raise
        found = []
    if found:
        return found[0]
    log.info("creating organisation %r", name)
    return orgs_api.create_organization(name=name)


def _rules(bucket: BucketPlan) -> list[Any]:
    if bucket.every_seconds == 0:
        return []
    return [_influx().BucketRetentionRules(type="expire", every_seconds=bucket.every_seconds)]


def _bucket(client: Any, org: Any, wanted: BucketPlan) -> Any:
    buckets_api = client.buckets_api()
    found = buckets_api.find_buckets(org_id=org.id, name=wanted.name).buckets or []
    if not found:
        log.info("creating bucket %r (retention %s)", wanted.name, wanted.retention)
        return buckets_api.create_bucket(
            bucket_name=wanted.name, retention_rules=_rules(wanted), org=org
        )
    bucket = found[0]
    current = max((r.every_seconds or 0 for r in bucket.retention_rules or []), default=0)
    if current != wanted.every_seconds:
        log.info("bucket %r: retention %s s -> %s", wanted.name, current, wanted.retention)
        bucket.retention_rules = _rules(wanted)
        bucket = buckets_api.update_bucket(bucket=bucket)
    return bucket


def _dbrp(client: Any, org: Any, wanted: BucketPlan, bucket_id: str) -> None:
    influx = _influx()
    service = influx.DBRPsService(client.api_client)
    mappings = service.get_dbr_ps(
        org_id=org.id, db=wanted.database, rp=wanted.retention_policy
    ).content
    physical = [m for m in mappings or [] if not getattr(m, "virtual", False)]
    for mapping in physical:
        if mapping.bucket_id != bucket_id:
            log.info(
                "DBRP %s.%s: remapping to bucket %s",
                mapping.database,
                mapping.retention_policy,
                bucket_id,
            )
            service.delete_dbrpid(mapping.id, org_id=org.id)
        elif bool(mapping.default) != wanted.default:
            update = influx.DBRPUpdate(
                retention_policy=wanted.retention_policy, default=wanted.default
            )
            service.patch_dbrpid(mapping.id, update, org_id=org.id)
            return
        else:
            return
    log.info("creating DBRP %s.%s -> %s", wanted.database, wanted.retention_policy, wanted.name)
    service.post_dbrp(
        influx.DBRPCreate(
            org_id=org.id,
            bucket_id=bucket_id,
            database=wanted.database,
            retention_policy=wanted.retention_policy,
            default=wanted.default,
        )
    )


def _permissions(token: TokenPlan, org_id: str, bucket_ids: dict[str, str]) -> list[Any]:
    influx = _influx()
    return [
        influx.Permission(
            action=action,
            resource=influx.PermissionResource(type="buckets", id=bucket_ids[name], org_id=org_id),
        )
        for action, name in token.permissions()
    ]


def _granted(authorization: Any) -> set[tuple[str, str]]:
    return {
        (p.action, p.resource.id)
        for p in authorization.permissions or []
        if p.resource is not None and p.resource.type == "buckets"
    }


def execute(settings: Settings, the_plan: Plan, *, rotate: bool = False) -> dict[str, str]:
    """Create or check everything in ``the_plan``; return ``variable -> token`` of new tokens."""
    influx = _influx()
    if not settings.influx_token:
        raise BootstrapError("IOC_INFLUX_TOKEN='': the operator (all-access) token is required")
    created: dict[str, str] = {}
    with influx.InfluxDBClient(
        url=settings.influx_url,
        token=settings.influx_token,
        org=the_plan.org,
        timeout=int(settings.influx_timeout * 1000),
    ) as client:
        org = _organisation(client, the_plan.org)
        bucket_ids: dict[str, str] = {}
        for wanted in the_plan.buckets:
            bucket = _bucket(client, org, wanted)
            bucket_ids[wanted.name] = bucket.id
            _dbrp(client, org, wanted, bucket.id)
        auth_api = client.authorizations_api()
        existing = {a.description: a for a in auth_api.find_authorizations(org_id=org.id)}
        for token in the_plan.tokens:
            permissions = _permissions(token, org.id, bucket_ids)
            current = existing.get(token.description)
            if current is not None and not rotate:
                if _granted(current) != {(p.action, p.resource.id) for p in permissions}:
                    log.warning(
                        "token %r exists with other permissions; run again with --rotate",
                        token.description,
                    )
                else:
                    log.info("token %r exists (not shown again)", token.description)
                continue
            if current is not None:
                auth_api.delete_authorization(current)
            authorization = influx.Authorization(
                org_id=org.id, permissions=permissions, description=token.description
            )
            made = auth_api.create_authorization(authorization=authorization)
            created[token.variable] = made.token
    return created


def configure(parser: argparse.ArgumentParser) -> None:
    """Subcommand ``influxdb2``."""
    stores = parser.add_subparsers(dest="store", required=True, metavar="STORE")
    influx = stores.add_parser(
        "influxdb2", help="org, buckets <db>/<rp>, DBRP mappings, per-role tokens (idempotent)"
    )
    influx.add_argument("--plan", action="store_true", help="print the plan, change nothing")
    influx.add_argument(
        "--rotate", action="store_true", help="replace the role tokens (the old ones stop working)"
    )
    influx.add_argument(
        "--output",
        default="-",
        help="where new tokens go as VARIABLE=token lines: a file created 0600, or - (stdout)",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Print the plan, or apply it and show the new tokens once."""
    the_plan = plan(settings)
    if args.plan:
        print(describe(the_plan))
        return 0
    log.info("bootstrapping InfluxDB at %s:\n%s", settings.influx_url, describe(the_plan))
    created = execute(settings, the_plan, rotate=args.rotate)
    if not created:
        print("nothing new: every bucket, mapping and token was already there", file=sys.stderr)
        return 0
    text = "# InfluxDB tokens, shown once: put them into deploy/.env, then delete this\n"
    text += "".join(f"{variable}={token}\n" for variable, token in created.items())
    if args.output == "-":
        sys.stdout.write(text)
    else:
        from ioc.devices import write_private  # noqa: PLC0415

        write_private(Path(args.output), text)
        print(f"{args.output}: {len(created)} new tokens (mode 0600)", file=sys.stderr)
    return 0
