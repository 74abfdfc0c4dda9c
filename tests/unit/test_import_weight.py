"""The pure layers import no Kafka client and no learned-model library.

Replay, the scoring core, dispatch and tracking must start quickly and run without a broker, so
each check imports modules in a fresh interpreter and lists the heavy ones that came along.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KAFKA = ("aiokafka", "faust", "mode")
LEARNED = ("river", "scipy")


def loaded_after(*modules: str, watched: tuple[str, ...]) -> list[str]:
    """Those of ``watched`` in ``sys.modules`` after a fresh interpreter imports ``modules``."""
    code = (f"import sys\nimport {', '.join(modules)}\n"
            f"print(__import__('json').dumps([m for m in {list(watched)!r} if m in sys.modules]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_scoring_core_and_replay_import_no_kafka_client():
    assert loaded_after("engine.core", "engine.offline.replay", watched=KAFKA) == []


@pytest.mark.parametrize("module", ["engine.dispatch.core", "engine.tracking.scores",
                                    "engine.tracking.store", "models.durations", "models.base",
                                    "topics.registry", "topics.codec"])
def test_light_layers_import_neither_kafka_nor_river(module):
    assert loaded_after(module, watched=KAFKA + LEARNED) == []


def test_kinds_load_on_first_use_and_the_registry_names_every_kind_module():
    # Every module of models/ that defines a kind is in the registry, under the kind's name.
    code = """
import importlib, pkgutil, sys
import models
assert 'river' not in sys.modules and not any(f'models.{k}' in sys.modules for k in models.KINDS)
from models.base import WarningModel
defined = {}
for info in pkgutil.iter_modules(models.__path__):
    module = importlib.import_module(f'models.{info.name}')
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, WarningModel)
                and value.__module__ == module.__name__ and 'kind' in vars(value)):
            defined[value.kind] = value
assert sorted(defined) == list(models.KINDS), (sorted(defined), list(models.KINDS))
assert all(models.KINDS[kind] is cls for kind, cls in defined.items())
print('ok')
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.stdout.strip() == "ok", result.stderr
