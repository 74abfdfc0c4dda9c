"""The versions of Faust, mode and aiokafka the worker's patches were written for.

The patches replace or wrap private methods and read private attributes; on another version
they could fail silently (a renamed attribute) or, worse, run a stale copy of a changed loop.
So the worker refuses to start on any other version (the same pins as ``pyproject.toml``,
which ``tests/unit/test_faust_internals_versions.py`` compares)."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

WRITTEN_FOR = {
    "faust-streaming": "0.15.3",
    "mode-streaming": "0.7.1",
    "aiokafka": "0.14.0",
}


class UnsupportedVersionError(RuntimeError):
    """A library the patches reach into is not at the version they were written for."""


def check_versions(installed: Callable[[str], str] | None = None) -> None:
    """Raise ``UnsupportedVersionError`` naming the first package not at its pinned version
    (``installed``: the version lookup, by default ``importlib.metadata.version``)."""
    lookup = installed or version
    for package, pinned in WRITTEN_FOR.items():
        try:
            found = lookup(package)
        except PackageNotFoundError:
            found = "none"
        if found != pinned:
            raise UnsupportedVersionError(
                f"{package} {found} is installed, but the worker's patches of Faust's "
                f"internals were written for {package} {pinned}: install {package}=={pinned}")
