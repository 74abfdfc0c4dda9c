"""Hot reload: added, changed and removed files; a broken edit keeps the previous version."""

import os

from engine.rule_files.reload import RuleWatcher
from tests.rulekit import FACILITY, rule_text


def write(path, text):
    path.write_text(text, encoding="utf-8")
    # Make the change visible even within one filesystem timestamp tick.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def level_rule(limit: int, **extra) -> str:
    return rule_text(id="test.tank.level", source=FACILITY, kind="threshold",
                     condition=f"level_pct >= {limit}", **extra)


def test_add_change_break_and_remove(tmp_path):
    watcher = RuleWatcher([tmp_path])
    write(tmp_path / "level.yaml", level_rule(90))
    first = watcher.load()
    assert [r.id for r in first.rules] == ["test.tank.level"]
    assert watcher.poll() is None

    write(tmp_path / "gas.yaml", rule_text(id="test.tank.gas", source=FACILITY,
                                           kind="threshold", condition="lel_pct >= 25"))
    report = watcher.poll()
    assert report is not None
    assert (report.added, report.changed, report.removed) == (["test.tank.gas"], [], [])

    write(tmp_path / "level.yaml", level_rule(95))
    report = watcher.poll()
    assert report is not None and report.changed == ["test.tank.level"]
    (level,) = [r for r in report.rules if r.id == "test.tank.level"]
    assert level.model.condition.source == "level_pct >= 95"

    write(tmp_path / "level.yaml", level_rule(95).replace("kind: threshold", "kind: nope"))
    report = watcher.poll()
    assert report is not None
    assert [str(e).split(": ", 1)[1] for e in report.errors] == [
        "kind: unknown kind 'nope'; known: " + str(report.errors[0]).split("known: ")[1]]
    assert report.kept == [tmp_path / "level.yaml"]
    (level,) = [r for r in report.rules if r.id == "test.tank.level"]
    assert level.model.condition.source == "level_pct >= 95"   # the previous version

    (tmp_path / "gas.yaml").unlink()
    report = watcher.poll()
    assert report is not None and report.removed == ["test.tank.gas"]
    assert [r.id for r in report.rules] == ["test.tank.level"]
