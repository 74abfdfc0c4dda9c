"""What a console user is shown: the snapshot, one change, one incident's or alert's story,
the scorecards — each filtered by what the user may see (``ConsoleUser``). Plain functions of
the ``Feed``, no web server, so they are tested as they are."""

from __future__ import annotations

import time
from typing import Any

from engine.console.access import ConsoleUser
from engine.console.feed import Change, Feed
from topics.records import WorkOrder

RECENT_S = 24 * 3600.0
"""Closed orders, resolved alerts and closed incidents stay on the wall this long."""
MOST_SHOWN = 2000
"""Items of a kind a snapshot holds at most (the newest)."""


def _json(record: Any) -> dict[str, Any]:
    return record.model_dump(mode="json")


def _newest(items: list[dict[str, Any]], field: str) -> list[dict[str, Any]]:
    return sorted(items, key=lambda i: i.get(field) or 0, reverse=True)[:MOST_SHOWN]


def snapshot(feed: Feed, user: ConsoleUser, now: float | None = None) -> dict[str, Any]:
    """Everything the wall, the board and the map start from, with the cursor it is as of."""
    now = time.time() if now is None else now
    since = now - RECENT_S
    alerts = {a.alert_id: _json(a) for a in feed.latest_alerts().values()}
    shown_alerts = [a for a in alerts.values() if user.sees_alert(a) and (
        a["state"] != "resolved" or (a.get("emitted_at") or a["last_ts"]) >= since)]
    incidents = [_json(i) for i in feed.incidents().values()]
    shown_incidents = [i for i in incidents if user.sees_incident(i, alerts) and (
        i["state"] == "open" or i["updated_at"] >= since)]
    orders = [_json(o) for o in feed.orders().values()]
    shown_orders = [o for o in orders if user.sees_order(o) and (
        o["state"] in ("open", "acknowledged", "on_scene") or o["created_at"] >= since)]
    return {
        "cursor": feed.cursor_text(),
        "user": {"name": user.name, "role": user.role, "area": user.area},
        "alerts": _newest(shown_alerts, "last_ts"),
        "incidents": _newest(shown_incidents, "updated_at"),
        "orders": _newest(shown_orders, "created_at"),
        "silences": [_json(s) for s in feed.silences.values() if s.ends_at > now],
        "scorecards": [_json(c) for c in feed.latest_scorecards()
                       if user.sees_scorecard(_json(c))],
    }


def shown_change(feed: Feed, user: ConsoleUser, change: Change) -> dict[str, Any] | None:
    """``change`` as the user's page takes it; None when it is not theirs to see."""
    data = change.as_json()
    record = data["record"]
    if record is None:
        return data  # a deletion names only a key the page may hold
    allowed = {
        "alert": lambda: user.sees_alert(record),
        "order": lambda: user.sees_order(record),
        "feedback": lambda: _sees_order_id(feed, user, record["order_id"]),
        "incident": lambda: user.sees_incident(record, _alerts_json(feed, record)),
        "scorecard": lambda: user.sees_scorecard(record),
        "silence": lambda: True,
    }[change.kind]
    return data if allowed() else None


def _sees_order_id(feed: Feed, user: ConsoleUser, order_id: str) -> bool:
    order = feed.orders().get(order_id)
    return order is not None and user.sees_order(_json(order))


def _alerts_json(feed: Feed, incident: dict[str, Any]) -> dict[str, dict[str, Any]]:
    latest = feed.latest_alerts()
    return {a: _json(latest[a]) for a in incident.get("alert_ids", ()) if a in latest}


def incident_story(feed: Feed, user: ConsoleUser, incident_id: str,
                   describe: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """An incident with its alerts (every state change), work orders and feedback, and the
    timeline of all of them; None when there is none the user may see."""
    incident = feed.incidents().get(incident_id)
    if incident is None:
        return None
    alerts_now = _alerts_json(feed, _json(incident))
    if not user.sees_incident(_json(incident), alerts_now):
        return None
    ids = set(incident.alert_ids)
    changes = [a for a in feed.life.alerts.values() if a.alert_id in ids]
    orders = [o for o in feed.orders().values() if o.incident_id == incident_id
              and user.sees_order(_json(o))]
    return {"incident": _json(incident), **_story(feed, changes, orders, describe)}


def alert_story(feed: Feed, user: ConsoleUser, alert_id: str,
                describe: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    changes = [a for a in feed.life.alerts.values() if a.alert_id == alert_id]
    if not changes or not user.sees_alert(_json(changes[-1])):
        return None
    orders = [o for o in feed.orders().values() if alert_id in o.alert_ids
              and user.sees_order(_json(o))]
    incidents = [_json(i) for i in feed.incidents().values() if alert_id in i.alert_ids]
    return {"alert": _json(changes[-1]), "incidents": incidents,
            **_story(feed, changes, orders, describe)}


def _story(feed: Feed, changes: list[Any], orders: list[WorkOrder],
           describe: dict[str, dict[str, Any]]) -> dict[str, Any]:
    order_ids = {o.order_id for o in orders}
    feedback = [f for f in feed.feedback() if f.order_id in order_ids]
    timeline: list[dict[str, Any]] = []
    for alert in changes:
        timeline.append({"at": alert.emitted_at or alert.last_ts, "what": f"alert {alert.state}",
                         "detail": alert.summary, "severity": alert.severity.value,
                         "alert_id": alert.alert_id})
    for order in orders:
        for event in order.history:
            timeline.append({"at": event.at, "what": f"order {event.what}",
                             "detail": f"{order.department} ({order.level})",
                             "by": event.by, "note": event.note, "order_id": order.order_id})
    for item in feedback:
        timeline.append({"at": item.at, "what": f"feedback {item.status}",
                         "detail": item.department, "by": item.by, "note": item.note,
                         "order_id": item.order_id})
    models = sorted({a.model_id for a in changes})
    return {
        "changes": [_json(a) for a in changes],
        "orders": [_json(o) for o in orders],
        "feedback": [_json(f) for f in feedback],
        "models": {m: describe.get(m, {"id": m}) for m in models},
        "timeline": sorted(timeline, key=lambda t: t["at"]),
    }


def scorecard_history(feed: Feed, user: ConsoleUser) -> dict[str, list[dict[str, Any]]]:
    """Every version of each scorecard the console has read: the charts over time."""
    return {name: [_json(c) for c in points] for name, points in feed.scorecards.items()
            if points and user.sees_scorecard(_json(points[-1]))}
