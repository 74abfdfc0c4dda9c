"""Warning-model kinds: each scores events for one kind of condition, behind one interface.

Every module of this package that defines a ``WarningModel`` subclass with a ``kind`` is a kind;
``KINDS`` maps the ``kind:`` of a rule file to its class. Adding a kind is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil

from models.base import Reading, Verdict, WarningModel


def _discover() -> dict[str, type[WarningModel]]:
    found: dict[str, type[WarningModel]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, WarningModel)
                    and value.__module__ == module.__name__ and "kind" in vars(value)):
                found[value.kind] = value
    return found


KINDS: dict[str, type[WarningModel]] = _discover()

__all__ = ["KINDS", "Reading", "Verdict", "WarningModel"]
