"""``yujing console``: the command centre's web console (the live wall, the map, incidents,
the work-order board, scorecards, silences), served by yujing itself on 127.0.0.1 by default.

``feed`` keeps what the topics say, ``views`` what a user is shown, ``access`` who may see and
do what, ``sessions`` the login; ``service`` is the Kafka side and ``web`` the HTTP side.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from engine.console.access import ConsoleUser

log = logging.getLogger("yujing.console")


def model_descriptions(rules: list[Path]) -> tuple[dict[str, dict[str, Any]], Any]:
    """What the console says of each model (its name, description, condition as written),
    and the reference data of the rule set (for the map)."""
    from engine.rule_files.loader import load_rules

    loaded = load_rules(rules)
    described = {}
    for rule in loaded.rules:
        spec = rule.spec
        described[spec.id] = {
            "id": spec.id, "name": spec.name.zh, "name_en": spec.name.en,
            "description": spec.description, "severity": spec.severity.value,
            "departments": spec.departments, "kind": spec.kind,
            "condition": rule.model.describe(), "file": str(rule.file),
        }
    return described, loaded.env.reference


def run_console(bootstrap: str, users: list[ConsoleUser], rules: list[Path],
                host: str = "127.0.0.1", port: int = 8080,
                sessions_file: Path | None = None) -> None:
    from aiohttp import web

    from engine.console.city_map import city_map
    from engine.console.service import ConsoleService
    from engine.console.sessions import SessionBook
    from engine.console.web import build_app

    models, reference = model_descriptions(rules)
    sessions = SessionBook({u.name: u for u in users}, kept_in=sessions_file)
    app = build_app(ConsoleService(bootstrap), sessions, models, city_map(reference))
    log.info("console on http://%s:%d/ (%d users, %d models)", host, port, len(users),
             len(models))
    web.run_app(app, host=host, port=port, print=None, access_log=None,
                handle_signals=True)
