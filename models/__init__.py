"""Warning-model kinds: each scores events for one kind of condition, behind one interface.

``KINDS`` maps the ``kind:`` of a rule file to its class. A kind lives in the module named after
it and is imported the first time it is asked for, so that importing this package or one of its
helpers (``models.durations``, ``models.base``) loads no kind and none of the libraries the
learned kinds need (river, scipy). Adding a kind is adding its module and its name below.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from models.base import WarningModel

KIND_NAMES: tuple[str, ...] = (
    "absence", "anomaly", "correlation", "deadline", "drift", "flatline", "forecast", "geofence",
    "joined", "lookup", "novelty", "rate", "sequence", "surge", "text", "threshold", "window",
)
"""Every kind, in the order rule-file schemas and messages list them; ``models.<name>`` holds it."""


def kind_class(module: ModuleType, kind: str) -> type[WarningModel]:
    """The ``WarningModel`` subclass ``module`` defines for ``kind``."""
    from models.base import WarningModel

    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, WarningModel)
                and value.__module__ == module.__name__ and vars(value).get("kind") == kind):
            return value
    raise LookupError(f"{module.__name__} defines no model of kind {kind!r}")


class KindRegistry(MutableMapping[str, "type[WarningModel]"]):
    """Kind name → model class, importing a kind's module on first use."""

    def __init__(self, modules: dict[str, str]) -> None:
        self._modules = dict(modules)
        self._classes: dict[str, type[WarningModel]] = {}

    def __getitem__(self, kind: str) -> type[WarningModel]:
        found = self._classes.get(kind)
        if found is None:
            module = importlib.import_module(self._modules[kind])
            found = self._classes[kind] = kind_class(module, kind)
        return found

    def __setitem__(self, kind: str, cls: type[WarningModel]) -> None:
        self._modules[kind] = cls.__module__
        self._classes[kind] = cls

    def __delitem__(self, kind: str) -> None:
        del self._modules[kind]
        self._classes.pop(kind, None)

    def __contains__(self, kind: object) -> bool:
        return kind in self._modules  # without importing the kind

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __repr__(self) -> str:
        return f"KindRegistry({', '.join(self._modules)})"


KINDS: KindRegistry = KindRegistry({kind: f"{__name__}.{kind}" for kind in KIND_NAMES})

__all__ = ["KINDS", "KIND_NAMES", "KindRegistry", "kind_class"]
