"""What the generator produces and what provisioning and push consume: boards and playlists."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["DATASOURCE_UID", "Board", "Folder", "Playlist"]

DATASOURCE_UID = "ioc-influxdb"
"""The uid every panel's datasource refers to (deploy/grafana/provisioning/datasources/)."""


@dataclass(frozen=True, slots=True)
class Folder:
    """A Grafana folder: one per board family (national, province, domain, operations)."""

    uid: str
    title: str
    path: str  # the sub-folder of deploy/grafana/dashboards/ its files are written to


@dataclass(frozen=True, slots=True)
class Board:
    """One generated dashboard: its identity, folder and JSON model (Grafana's dashboard JSON).

    ``province`` is set when the board shows one province only (the boards generated for a
    province's own organisation); None for boards that take the province as a template variable
    or show the whole country.
    """

    key: str
    uid: str
    title: str
    folder: Folder
    model: Mapping[str, Any]
    province: str | None = None

    @property
    def file_name(self) -> str:
        """The file the board is written to, relative to the dashboards folder."""
        return f"{self.folder.path}/{self.key}.json"


@dataclass(frozen=True, slots=True)
class Playlist:
    """A wall rotation: boards shown one after the other (playlists exist only through the API)."""

    uid: str
    name: str
    interval: str  # Grafana duration, e.g. "2m"
    board_uids: tuple[str, ...]
    province: str | None = None
