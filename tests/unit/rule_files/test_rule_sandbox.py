"""Changed rule files are loaded in a child process first: whatever a file does to the compiler
— crash it, loop, exhaust memory — costs the child, and the rules in force stay."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.rule_files.reload import RuleWatcher
from engine.rule_files.sandbox import check_in_child
from engine.worker import Worker, WorkerSettings
from tests.rulekit import FACILITY, rule_text
from tests.unit.rule_files.sandbox_children import aborting_child, hoarding_child, looping_child
from tests.unit.rule_files.test_hostile_rules import HOSTILE


def write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    st = path.stat()  # visible within one filesystem timestamp tick
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def hot(limit: int = 60) -> str:
    return rule_text(id="test.tank.hot", source=FACILITY, kind="threshold",
                     condition=f"temp_c > {limit}")


async def test_the_child_loads_the_rules_and_reports_their_problems(tmp_path):
    write(tmp_path / "hot.yaml", hot())
    write(tmp_path / "bomb.yaml", HOSTILE["billion_laughs"][0])
    verdict = await check_in_child([tmp_path], timeout_s=120)
    assert verdict.outcome == "ok" and verdict.rules == 1
    assert [(Path(f).name, msg.split(" (")[0]) for f, _, msg in verdict.errors] == [
        ("bomb.yaml", "its YAML aliases expand to more than 100000 values")]


@pytest.mark.parametrize(("child", "budget", "outcome", "detail"), [
    (aborting_child, 60, "crashed", "died of signal 6"),
    (looping_child, 3, "timed_out", "took longer than 3 s"),
    (hoarding_child, 60, "crashed", "MemoryError"),
])
async def test_a_child_that_crashes_loops_or_hoards_is_reported(tmp_path, child, budget,
                                                                 outcome, detail):
    verdict = await check_in_child([tmp_path], timeout_s=budget, target=child)
    assert verdict.outcome == outcome
    assert detail in verdict.detail
    assert verdict.seconds < 60


def test_a_reload_leaving_no_rule_is_refused_and_the_rules_stay(tmp_path):
    write(tmp_path / "hot.yaml", hot())
    watcher = RuleWatcher([tmp_path])
    watcher.load()
    (tmp_path / "hot.yaml").unlink()
    report = watcher.reload()
    assert report.refused == "it would leave no rule in force"
    assert [r.id for r in report.rules] == ["test.tank.hot"]
    assert watcher.changes() == set()  # not tried again until a file changes


async def test_a_worker_rejects_a_hostile_reload_and_keeps_its_rules(tmp_path, caplog,
                                                                      monkeypatch):
    rules = tmp_path / "rules"
    rules.mkdir()
    write(rules / "hot.yaml", hot())
    worker = Worker(WorkerSettings(rules=[rules], data_dir=tmp_path / "data"))
    write(rules / "hot.yaml", hot(limit=70))
    write(rules / "parens.yaml", HOSTILE["nested_parentheses"][0].replace(
        "test.tank.hot", "test.tank.parens"))
    await worker.reload_rules()
    (rule,) = worker.core.rules.values()
    assert rule.model.condition.source == "temp_c > 70"  # the good change is taken
    assert "parens.yaml:1: condition: the condition is 200010 characters long" in caplog.text

    write(rules / "hot.yaml", hot(limit=80))
    from engine.rule_files import sandbox as rule_sandbox

    async def crashing(paths, timeout):
        return await check_in_child(paths, timeout, target=aborting_child)

    monkeypatch.setattr(rule_sandbox, "check_in_child", crashing)
    await worker.reload_rules()
    (rule,) = worker.core.rules.values()
    assert rule.model.condition.source == "temp_c > 70"  # kept
    assert "hot.yaml:1: compiling the changed rule files the compiler process died of " \
           "signal 6: their previous versions stay in force" in caplog.text
