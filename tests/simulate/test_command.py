"""The command line: options, defaults and refusals."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ioc.cli import _parser, main
from ioc.simulate import parse_duration


def test_defaults_are_the_five_provinces_and_26_hours() -> None:
    args = _parser().parse_args(["simulate"])
    assert args.provinces == ("01", "40", "96", "46", "48")
    assert args.history == 26 * 3600
    assert args.mode is None and not args.once and args.duration is None


def test_options_are_parsed() -> None:
    args = _parser().parse_args(
        ["simulate", "--provinces", "01,96", "--history", "2h", "--once", "--seed", "3"]
    )
    assert (args.provinces, args.history, args.once, args.seed) == (("01", "96"), 7200, True, 3)
    load = _parser().parse_args(
        [
            "simulate",
            "load",
            "--devices",
            "50",
            "--metrics",
            "3",
            "--rate",
            "200",
            "--duration",
            "1m",
        ]
    )
    assert (load.mode, load.devices, load.metrics, load.rate, load.load_duration) == (
        "load",
        50,
        3,
        200.0,
        60.0,
    )


@pytest.mark.parametrize(
    ("text", "seconds"), [("26h", 93600), ("1h30m", 5400), ("45s", 45), ("2d", 172800)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "26", "h", "1x", "-1h", "1h 2m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        parse_duration(text)


def test_a_history_beyond_the_collectors_max_age_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["simulate", "--history", "8d", "--once"]) == 2
    assert "IOC_INGEST_MAX_AGE" in capsys.readouterr().out


def test_load_writes_a_registry_and_exits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "load.toml"
    assert main(["simulate", "load", "--devices", "3", "--write-registry", str(path)]) == 0
    assert path.read_text().count("[[source]]") == 3
    assert "IOC_REGISTRY_FILE=" in capsys.readouterr().out


def test_load_creates_the_registrys_folder_and_says_when_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "var" / "load.toml"  # var/ does not exist yet (a fresh checkout)
    assert main(["simulate", "load", "--devices", "2", "--write-registry", str(path)]) == 0
    assert path.read_text().count("[[source]]") == 2
    blocked = tmp_path / "file"
    blocked.write_text("")
    code = main(["simulate", "load", "--devices", "2", "--write-registry", str(blocked / "x.toml")])
    assert code != 0
    assert "cannot write" in capsys.readouterr().out
