"""text: keywords in free text, such as a 12345 hotline ticket's description.

Keywords match as substrings: Latin letters in any case (A–Z and Latin-1 such as É; full-width
``ＦＩＲＥ`` as ``fire``), Chinese as written. The text breaches when at least ``min_matches``
distinct keywords appear (evidence: the keywords found, in order of first appearance, and an
excerpt around the first), clears when fewer do, and says nothing when the field is missing or
blank (an update that does not repeat the text says nothing about it).

``exclude`` phrases veto. A phrase that contains a keyword (``没有着火``, ``跳楼价``) vetoes just
that mention: it is blanked out before matching, so "没有着火，但有人要跳楼" still matches 跳楼.
A phrase that contains no keyword (``演习``, a drill) vetoes the whole text.

One precompiled alternation of all keywords screens each text; only texts it hits are looked at
further. The kind keeps no state per key.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from models.base import HOLD, KindParams, Reading, Verdict, WarningModel
from models.refdata import ModelEnv
from topics.codec import Event

EXCERPT_CHARS = 20
"""Characters of context on each side of the first match in the excerpt."""

# Texts are matched in lower case, with full-width letters and digits (what Chinese input methods
# type as ＦＩＲＥ) made ASCII and the ideographic space a space — one character for one, so
# positions in the folded text are those of the original (İ is the one letter whose lower case is
# two characters). Lower-casing is a fast C loop; the translation runs only on texts that need it;
# and case-sensitive matching is several times faster than a case-insensitive regex.
_WIDE = str.maketrans({c: c - 0xFEE0 for c in [*range(0xFF10, 0xFF1A), *range(0xFF41, 0xFF5B)]}
                      | {0x3000: 0x20})
_HAS_WIDE = re.compile("[\uff10-\uff19\uff41-\uff5a\u3000]")


def _fold(text: str) -> str:
    folded = text.replace("\u0130", "i").lower()
    return folded.translate(_WIDE) if _HAS_WIDE.search(folded) else folded


def _alternation(phrases: list[str]) -> re.Pattern[str]:
    # Longest first, so the match reported at a position is the fullest phrase there.
    ordered = sorted({_fold(p) for p in phrases}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered)))


class TextParams(KindParams):
    field: str = "text"
    """The event field holding the text."""
    keywords: list[str] = Field(min_length=1)
    """Substrings to look for (case-insensitive for Latin letters)."""
    min_matches: int = Field(default=1, ge=1)
    """How many distinct keywords must appear."""
    exclude: list[str] = Field(default_factory=list)
    """Phrases that veto: one containing a keyword cancels that mention, one without vetoes the
    whole text."""

    @field_validator("keywords", "exclude")
    @classmethod
    def _not_blank(cls, phrases: list[str]) -> list[str]:
        if any(not p.strip() for p in phrases):
            raise ValueError("phrases must not be blank")
        folded = [_fold(p) for p in phrases]
        twice = sorted({p for p in phrases if folded.count(_fold(p)) > 1})
        if twice:
            raise ValueError(f"listed twice (case aside): {', '.join(twice)}")
        return phrases

    @model_validator(mode="after")
    def _reachable(self) -> TextParams:
        if self.min_matches > len(self.keywords):
            raise ValueError(f"min_matches {self.min_matches} is more than the "
                             f"{len(self.keywords)} keywords")
        return self


class Text(WarningModel[None]):
    """Breach when a text contains ``min_matches`` of the ``keywords``, outside ``exclude``.

    >>> from topics.codec import Event
    >>> m = Text(TextParams(keywords=["着火", "爆炸", "fire"], exclude=["没有着火", "演习"]))
    >>> def see(text):
    ...     r = m.score_one(None, Event("t", "k", 0, {"text": text}))
    ...     return r.verdict.value, r.evidence.get("found")
    >>> see("3号楼着火了，还有爆炸声")
    ('breach', ['着火', '爆炸'])
    >>> see("FIRE in the basement")
    ('breach', ['fire'])
    >>> see("没有着火，是烧烤的烟"), see("消防演习，模拟着火"), see(""), see("路灯不亮")
    (('clear', None), ('clear', None), ('hold', None), ('clear', None))
    >>> m.score_one(None, Event("t", "k", 0, {"text": "没有着火，但是仓库爆炸了"})).evidence
    {'found': ['爆炸'], 'matched': '爆炸', 'excerpt': '没有着火，但是仓库爆炸了'}
    """

    kind = "text"
    Params = TextParams
    evidence_fields = ("matched", "excerpt", "found", "excluded")
    event_fields = ("field",)

    def __init__(self, params: TextParams, env: ModelEnv | None = None) -> None:
        super().__init__(params, env)
        self._any = _alternation(params.keywords)
        self._each = [(k, _fold(k)) for k in params.keywords]
        masks = [p for p in params.exclude if self._any.search(_fold(p))]
        vetoes = [p for p in params.exclude if p not in masks]
        self._mask = _alternation(masks) if masks else None
        self._veto = _alternation(vetoes) if vetoes else None

    def new_state(self) -> None:
        return None

    def score_one(self, state: None, event: Event) -> Reading:
        value = event.data.get(self.params.field)
        original = "" if value is None else str(value)
        if not original.strip():
            return HOLD
        text = _fold(original)
        if self._any.search(text) is None:
            return Reading(Verdict.CLEAR)  # the common case: one scan, done
        if self._veto is not None and (veto := self._veto.search(text)):
            return Reading(Verdict.CLEAR, {"excluded": original[veto.start():veto.end()]})
        if self._mask is not None:
            text = self._mask.sub(lambda m: "\0" * len(m.group()), text)
        first = self._any.search(text)
        if first is None:
            return Reading(Verdict.CLEAR)
        hits = sorted((at, k) for k, folded in self._each if (at := text.find(folded)) >= 0)
        found = [k for _, k in hits]
        if len(found) < self.params.min_matches:
            return Reading(Verdict.CLEAR, {"found": found})
        return Reading(Verdict.BREACH, {"found": found, "matched": "、".join(found),
                                        "excerpt": _excerpt(original, first.start(),
                                                            first.end())})

    def describe(self) -> dict[str, Any]:
        p = self.params
        return {"kind": self.kind, "field": p.field, "keywords": list(p.keywords),
                "min_matches": p.min_matches, "exclude": list(p.exclude)}


def _excerpt(text: str, start: int, end: int) -> str:
    """The match with ``EXCERPT_CHARS`` either side, on one line, ``…`` where cut."""
    lo, hi = max(0, start - EXCERPT_CHARS), min(len(text), end + EXCERPT_CHARS)
    piece = " ".join(text[lo:hi].split())
    return ("…" if lo > 0 else "") + piece + ("…" if hi < len(text) else "")
