"""The engine: rule loading, the scoring core, the Faust worker, alert lifecycle, CLI."""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _package_version


def installed_version() -> str | None:
    """yujing's version as installed (None when it runs from a tree not installed)."""
    try:
        return _package_version("yujing")
    except PackageNotFoundError:
        return None
