"""Building the records of an alert's life for tests, with only the fields a test cares about.

Times are seconds after ``T0`` (2024-06-03 08:00 in Shanghai), so figures read as durations.
"""

from __future__ import annotations

from typing import Any

from topics.records import Alert, Feedback, Incident, OrderEvent, WorkOrder

T0 = 1717372800.0


def alert(alert_id: str, model_id: str = "m.noisy", state: str = "firing", at: float = 0.0,
          **fields: Any) -> Alert:
    values: dict[str, Any] = dict(
        alert_id=alert_id, model_id=model_id, model_version=1, state=state, severity="red",
        departments=["fire"], key=f"key-{alert_id}", sources=["events.hazchem.facility"],
        first_ts=T0 + at, last_ts=T0 + at, summary=f"{model_id} {state}", emitted_at=T0 + at)
    values.update(fields)
    return Alert.model_validate(values)


def order(order_id: str, created: float = 0.0, *, models: tuple[str, ...] = ("m.noisy",),
          department: str = "fire", severity: str = "red", ack: float | None = None,
          resolved: float | None = None, state: str | None = None,
          alert_ids: tuple[str, ...] = (), **fields: Any) -> WorkOrder:
    """An order created ``created`` s after T0; ``ack`` and ``resolved`` are seconds after its
    creation. The state follows from them unless given."""
    created_at = T0 + created
    if state is None:
        state = "resolved" if resolved is not None else "acknowledged" if ack is not None \
            else "open"
    history = [OrderEvent(at=created_at, what="created", by="dispatch")]
    if ack is not None:
        history.append(OrderEvent(at=created_at + ack, what="acknowledged", by="duty"))
    if resolved is not None:
        history.append(OrderEvent(at=created_at + resolved, what="resolved", by="duty"))
    values: dict[str, Any] = dict(
        order_id=order_id, incident_id=f"inc-{order_id}", alert_ids=list(alert_ids),
        model_ids=list(models), department=department, severity=severity, key="k",
        summary=f"order {order_id}", state=state, created_at=created_at,
        ack_due=created_at + 300, history=history,
        acknowledged_at=None if ack is None else created_at + ack,
        resolved_at=None if resolved is None else created_at + resolved)
    values.update(fields)
    return WorkOrder.model_validate(values)


def feedback(order_id: str, status: str, at: float, department: str = "fire",
             **fields: Any) -> Feedback:
    return Feedback.model_validate(dict(order_id=order_id, status=status,
                                        department=department, at=T0 + at, **fields))


def incident(incident_id: str, alert_ids: list[str], model_ids: list[str],
             at: float = 0.0) -> Incident:
    return Incident(incident_id=incident_id, place="grid:G1", alert_ids=alert_ids,
                    model_ids=model_ids, severity="red", grid_id="G1", opened_at=T0 + at,
                    updated_at=T0 + at)
