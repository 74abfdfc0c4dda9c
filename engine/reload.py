"""Hot reload: pick up added, changed and removed rule files without a restart.

``RuleWatcher.poll`` looks at the files' sizes and modification times; when anything changed it
loads everything again. A file that now fails is rejected with its ``file:line: reason`` and its
previous good version stays in force; a removed file's rule is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from engine.loader import CompiledRule, RuleError, load_rules, rule_files
from models.refdata import ReferenceData


@dataclass(slots=True)
class ReloadReport:
    rules: list[CompiledRule]
    """What is in force now."""
    errors: list[RuleError] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    """Files that failed and whose previous version stays in force."""
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class RuleWatcher:
    def __init__(self, paths: Iterable[Path], reference: ReferenceData | None = None) -> None:
        self.paths = list(paths)
        self.reference = reference
        self._stamp: dict[Path, tuple[int, int]] = {}
        self._by_file: dict[Path, CompiledRule] = {}

    def _snapshot(self) -> dict[Path, tuple[int, int]]:
        stamp = {}
        for path in rule_files(self.paths):
            try:
                info = path.stat()
            except OSError:
                continue
            stamp[path] = (info.st_mtime_ns, info.st_size)
        return stamp

    def load(self) -> ReloadReport:
        """The first load: what is valid is in force, the rest is reported."""
        self._stamp = self._snapshot()
        result = load_rules(self.paths, self.reference)
        self._by_file = {rule.file: rule for rule in result.rules}
        return ReloadReport(rules=list(self._by_file.values()), errors=result.errors,
                            added=sorted(r.id for r in result.rules))

    def poll(self) -> ReloadReport | None:
        """None when no file changed; else the new rule set and what happened."""
        stamp = self._snapshot()
        if stamp == self._stamp:
            return None
        touched = {p for p, st in stamp.items() if self._stamp.get(p) != st}
        self._stamp = stamp
        result = load_rules(self.paths, self.reference)
        failed = {error.file for error in result.errors}
        fresh = {rule.file: rule for rule in result.rules}
        report = ReloadReport(rules=[], errors=result.errors)
        merged: dict[Path, CompiledRule] = {}
        for path in stamp:
            if path in fresh:
                merged[path] = fresh[path]
            elif path in failed and path in self._by_file:
                merged[path] = self._by_file[path]
                report.kept.append(path)
        before = {r.id: r.state_key for r in self._by_file.values()}
        after = {r.id: r.state_key for r in merged.values()}
        report.added = sorted(set(after) - set(before))
        report.removed = sorted(set(before) - set(after))
        report.changed = sorted(r.id for p, r in merged.items()
                                if p in touched and p in fresh and r.id in before)
        self._by_file = merged
        report.rules = list(merged.values())
        return report

