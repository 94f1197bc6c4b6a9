"""``ioc dashboards build|check|push``: the Grafana walls generated from the catalog."""

from __future__ import annotations

import argparse
import sys

from ioc.settings import Settings

HELP = "Grafana dashboards from the catalog: build, check (stale files), push"


def configure(parser: argparse.ArgumentParser) -> None:
    """The subcommand's arguments."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "build", help="write deploy/grafana/dashboards/ and the dashboard provider file"
    )
    actions.add_parser(
        "check", help="exit 1 if the committed dashboard files differ from what build writes"
    )
    push = actions.add_parser("push", help="push boards and playlists to a running Grafana")
    from dashboards.push import configure_push  # noqa: PLC0415 - cheap, and only here

    configure_push(push)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run one action; 0 when done (check: when nothing is stale)."""
    from dashboards.build import DASHBOARDS_DIR, build_boards, check, write  # noqa: PLC0415
    from ioc.catalog import get_catalog  # noqa: PLC0415

    catalog = get_catalog(settings.registry_file)
    if args.action == "push":
        from dashboards.push import run_push  # noqa: PLC0415

        return run_push(settings, args)
    boards = build_boards(catalog, settings.influx_db)
    if args.action == "build":
        written = write(boards)
        print(f"{len(boards)} boards; {len(written)} files written under {DASHBOARDS_DIR}")
        return 0
    staleness = check(boards)
    if not staleness.stale:
        print(f"{len(boards)} boards up to date in {DASHBOARDS_DIR}")
        return 0
    for label, paths in (
        ("changed", staleness.changed),
        ("missing", staleness.missing),
        ("not generated any more", staleness.extra),
    ):
        for path in paths:
            print(f"stale: {path} ({label})", file=sys.stderr)
    print("run `ioc dashboards build` and commit the result", file=sys.stderr)
    return 1
