"""Warning-model kinds: each scores events for one kind of condition, behind one interface.

``KINDS`` maps the ``kind:`` of a rule file to its class.
"""

from models.absence import Absence
from models.base import Reading, Verdict, WarningModel
from models.threshold import Threshold
from models.window import Window

KINDS: dict[str, type[WarningModel]] = {cls.kind: cls for cls in (Threshold, Window, Absence)}

__all__ = ["KINDS", "Reading", "Verdict", "WarningModel"]
