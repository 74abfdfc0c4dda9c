"""The worker refuses to start on a faust, mode or aiokafka other than the one its patches of
their internals were written for (engine/worker/faust_internals/versions.py)."""

import re
import tomllib
from importlib.metadata import PackageNotFoundError
from pathlib import Path

import pytest

from engine.worker.faust_internals.versions import (
    WRITTEN_FOR,
    UnsupportedVersionError,
    check_versions,
)


def test_the_pinned_versions_pass():
    check_versions(lambda package: WRITTEN_FOR[package])


def test_another_version_is_refused_with_one_line_naming_it():
    installed = {**WRITTEN_FOR, "mode-streaming": "0.8.0"}
    with pytest.raises(UnsupportedVersionError) as refused:
        check_versions(installed.__getitem__)
    message = str(refused.value)
    assert "\n" not in message
    assert "mode-streaming 0.8.0 is installed" in message
    assert "written for mode-streaming 0.7.1" in message


def test_a_missing_package_is_refused():
    def installed(package: str) -> str:
        if package == "aiokafka":
            raise PackageNotFoundError(package)
        return WRITTEN_FOR[package]

    with pytest.raises(UnsupportedVersionError, match="aiokafka none is installed"):
        check_versions(installed)


def test_the_cli_says_so_and_exits(monkeypatch, capsys):
    from typer.testing import CliRunner

    import engine.worker.faust_internals.versions as versions
    from engine.cli import app

    monkeypatch.setattr(versions, "version",
                        lambda package: "0.16.0" if package == "faust-streaming"
                        else WRITTEN_FOR[package])
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 1
    assert "faust-streaming 0.16.0 is installed" in result.output


def test_the_pins_are_those_of_pyproject():
    project = tomllib.loads(
        (Path(__file__).parents[3] / "pyproject.toml").read_text(encoding="utf-8"))
    pins = dict(re.fullmatch(r"([\w-]+)==([\w.]+)", requirement).groups()
                for requirement in project["project"]["dependencies"] if "==" in requirement)
    assert {package: pins.get(package) for package in WRITTEN_FOR} == WRITTEN_FOR
