"""Who sees and does what in the console: the command centre everything; a district or town
desk its own area; a department desk its own work orders (and the alerts that name it).

Users come from the configuration file (``[[users]]``), their passwords as argon2 hashes
(``yujing console hash-password``). The same rules filter the snapshot, the live stream and
every action, so a desk refused in the page is refused by the API too.

>>> desk = ConsoleUser(name="fire", password_hash="x", role="department", area="fire_rescue")
>>> desk.sees_order({"department": "fire_rescue", "district": "xihu"})
True
>>> desk.sees_order({"department": "transport", "district": "xihu"})
False
>>> ConsoleUser(name="xihu", password_hash="x", role="district")
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ConsoleUser
  Value error, a district desk needs its area (the district, town or department it is for) [...]
...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

Role = Literal["command", "district", "town", "department"]


class ConsoleUser(BaseModel):
    """A console user (``[[users]]`` in the configuration file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    password_hash: str
    """argon2 (``yujing console hash-password``): the password itself is never stored."""
    role: Role = "command"
    area: str | None = None
    """The district, town or department a desk is for (the command centre has none)."""

    @model_validator(mode="after")
    def _area(self) -> ConsoleUser:
        if self.role != "command" and not self.area:
            raise ValueError(f"a {self.role} desk needs its area (the district, town or "
                             "department it is for)")
        return self

    @property
    def commands(self) -> bool:
        return self.role == "command"

    def sees_alert(self, alert: Mapping[str, Any]) -> bool:
        if self.role == "command":
            return True
        if self.role == "department":
            return self.area in (alert.get("departments") or ())
        return alert.get(self.role) == self.area

    def sees_order(self, order: Mapping[str, Any]) -> bool:
        if self.role == "command":
            return True
        if self.role == "department":
            return order.get("department") == self.area
        return order.get(self.role) == self.area

    def acts_on_order(self, order: Mapping[str, Any]) -> bool:
        """Acknowledge, resolve, mark a false alarm, add a note: whoever sees the order."""
        return self.sees_order(order)

    def sees_incident(self, incident: Mapping[str, Any],
                      alerts: Mapping[str, Mapping[str, Any]]) -> bool:
        if self.role == "command":
            return True
        if self.role in ("district", "town") and incident.get(self.role) == self.area:
            return True
        return any(self.sees_alert(alerts[a]) for a in incident.get("alert_ids", ())
                   if a in alerts)

    def sees_scorecard(self, card: Mapping[str, Any]) -> bool:
        if self.role == "department":
            return card.get("scope") == "department" and card.get("name") == self.area
        return True

    @property
    def silences(self) -> bool:
        """Silences hide alerts from every desk: the command centre's decision."""
        return self.role == "command"
