"""Alerts, routing files and feedback for the dispatch unit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.dispatch.routing import Routing, parse_routing
from topics.records import Alert, Feedback

ROUTES = """\
defaults:
  ack_within: {red: 5m, orange: 15m, yellow: 1h, blue: 4h}
  group_within: 30m
route:
  routes:
    - name: red to the command centre too
      match: {severity: red}
      departments: [command_center]
      continue: true
    - name: tanks
      match: {model_id: "hazchem.tank.*"}
      departments: [$alert, fire_rescue]
      ack_within: {orange: 10m}
    - name: own departments
"""


def routing(text: str = ROUTES) -> Routing:
    parsed, errors = parse_routing(text, Path("routes.yaml"))
    assert errors == [], errors
    assert parsed is not None
    return parsed


def alert(alert_id: str = "a1", state: str = "firing", severity: str = "orange",
          **fields: Any) -> Alert:
    values: dict[str, Any] = {
        "alert_id": alert_id, "model_id": "hazchem.tank.level_high", "model_version": 1,
        "state": state, "severity": severity, "departments": ["emergency_management"],
        "key": "T1", "sources": ["events.hazchem.facility"], "grid_id": "G1",
        "district": "xihu", "first_ts": 100.0, "last_ts": 100.0,
        "summary": f"{alert_id} {state} {severity}"}
    return Alert.model_validate({**values, **fields})


def feedback(order_id: str, status: str, at: float, department: str = "emergency_management",
             **fields: Any) -> Feedback:
    return Feedback(order_id=order_id, status=status, department=department, at=at, **fields)
