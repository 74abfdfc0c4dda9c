"""Hot reload: pick up added, changed and removed rule files without a restart.

``RuleWatcher.changes`` looks at the files' sizes and modification times; when anything changed,
``reload`` loads everything again. A file that now fails is rejected with its ``file:line:
reason`` and its previous good version stays in force; a removed file's rule is dropped. A
reload that would leave no rule in force is refused whole: a worker with no rules would commit
every event unscored.

The worker calls ``reload`` off its event loop (a thread), after a child process has loaded the
same files without crashing or running out of time (``engine.rule_files.sandbox``); when the child
did not, ``reject`` keeps the previous version of every changed file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.rule_files import sandbox as rule_sandbox
from engine.rule_files.loader import CompiledRule, load_rules
from engine.rule_files.yaml_source import RuleError, rule_files
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
    refused: str | None = None
    """Why the whole reload was refused (the previous rules all stay in force)."""
    reference_updates: list[tuple[str, str, Any]] = field(default_factory=list)
    """Records of the reference files, for the caller to put into its reference data."""


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

    def changes(self) -> set[Path]:
        """The files added, changed or removed since the last (re)load."""
        stamp = self._snapshot()
        return {p for p in stamp.keys() | self._stamp.keys()
                if stamp.get(p) != self._stamp.get(p)}

    def poll(self) -> ReloadReport | None:
        """None when no file changed; else the new rule set and what happened (in this thread,
        reference records put at once: for callers with no other thread reading them)."""
        if not self.changes():
            return None
        report = self.reload()
        if self.reference is not None:
            for table, key, record in report.reference_updates:
                self.reference.put(table, key, record)
        return report

    def reload(self) -> ReloadReport:
        """Load everything again and merge it with what is in force."""
        stamp = self._snapshot()
        touched = {p for p, st in stamp.items() if self._stamp.get(p) != st}
        result = load_rules(self.paths, self.reference, defer_reference=True)
        failed = {error.file for error in result.errors}
        fresh = {rule.file: rule for rule in result.rules}
        report = ReloadReport(rules=[], errors=result.errors,
                              reference_updates=result.reference_updates)
        merged: dict[Path, CompiledRule] = {}
        for path in stamp:
            if path in fresh:
                merged[path] = fresh[path]
            elif path in failed and path in self._by_file:
                merged[path] = self._by_file[path]
                report.kept.append(path)
        if not merged and self._by_file:
            return self._refuse(stamp, report, "it would leave no rule in force")
        before = {r.id: r.state_key for r in self._by_file.values()}
        after = {r.id: r.state_key for r in merged.values()}
        report.added = sorted(set(after) - set(before))
        report.removed = sorted(set(before) - set(after))
        report.changed = sorted(r.id for p, r in merged.items()
                                if p in touched and p in fresh and r.id in before)
        self._stamp = stamp
        self._by_file = merged
        report.rules = list(merged.values())
        return report

    def reject(self, why: str) -> ReloadReport:
        """Keep every rule in force: the changed files could not be loaded safely (``why``)."""
        stamp = self._snapshot()
        touched = sorted(p for p in stamp.keys() | self._stamp.keys()
                         if stamp.get(p) != self._stamp.get(p))
        report = ReloadReport(rules=[], errors=[RuleError(p, 1, why) for p in touched])
        return self._refuse(stamp, report, why)

    def _refuse(self, stamp: dict[Path, tuple[int, int]], report: ReloadReport,
                why: str) -> ReloadReport:
        # The new stamps are taken, so the same files are not tried again until they change.
        self._stamp = stamp
        report.rules = list(self._by_file.values())
        report.kept = sorted(self._by_file)
        report.refused = why
        report.added = report.changed = report.removed = []
        return report


async def reload_off_the_loop(watcher: RuleWatcher, timeout: float) -> ReloadReport:
    """``watcher.reload`` for a process that must keep its event loop free: a child process
    loads the files first (one that crashes the compiler, loops or exhausts memory costs the
    child), then a thread compiles them here, within ``timeout``; if either fails, every rule
    in force stays (``RuleWatcher.reject``)."""
    checked = await rule_sandbox.check_in_child(watcher.paths, timeout)
    if checked.outcome != "ok":
        return watcher.reject(f"compiling the changed rule files {checked.detail.rstrip('.')}: "
                              "their previous versions stay in force")
    try:
        return await asyncio.wait_for(asyncio.to_thread(watcher.reload), timeout)
    except TimeoutError:
        # The thread cannot be stopped; its result is dropped when it ends.
        return watcher.reject(f"compiling the changed rule files took longer than "
                              f"{timeout:.0f} s")
