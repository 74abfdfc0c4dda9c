"""Personal data in what leaves the engine: alert summaries and evidence, log lines, CLI output.

A schema field that carries personal data says so beside its type, as data a modeller reads:
``driver_id: Annotated[str | None, Personal("hash")] = None``. The policy is one of

- ``hash``: a keyed, stable, non-reversible token (``h:`` and 12 hex digits of HMAC-SHA256), so
  the same person still correlates across alerts without being named;
- ``mask``: a little kept for the duty officer (``138****5678``, ``330102********1234``);
- ``drop``: left out (a summary placeholder shows ``[withheld]``).

Every string that leaves is scanned as well, declared personal or not (a ticket's ``text``, a
summary rendered from it, a log line quoting an event): mainland mobile numbers, landlines with
an area code and 18-digit resident ID numbers (a plausible birth date and a valid check digit)
are masked wherever they occur.

Scoring sees the original values: rules are evaluated on the event as it came, and only what an
alert, a log line or the CLI shows is protected — at the moment it is built, not per event.

>>> mask_text("回电13812345678，身份证330102199001011234，订单202406030001")
'回电138****5678，身份证330102********1234，订单202406030001'
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pydantic import BaseModel

log = logging.getLogger("yujing.personal_data")

PolicyKind = Literal["hash", "mask", "drop"]
WITHHELD = "[withheld]"
"""What a summary shows in place of a dropped field."""

KEY_ENV = "YUJING_PERSONAL_DATA__KEY"
KEY_FILE_ENV = "YUJING_PERSONAL_DATA__KEY_FILE"
"""The names ``engine.config`` reads too (``[personal_data] key_file`` in the file)."""
# The bytes are the key (rule-file tests expect its tokens): keep them as they are.
DEVELOPMENT_KEY = b"yujing-development-key: set YUJING_PERSONAL_DATA_KEY in production"
"""The hashing key when none is configured. It is public, so a token made with it can be
matched by anyone who guesses the value (a phone number is one of a few billion): production
sets its own key."""


@dataclass(frozen=True, slots=True)
class Personal:
    """Marks a schema field as personal data, and says what leaves the engine in its place.

    Declared beside the field's type: ``caller_phone: Annotated[str | None,
    Personal("mask")] = None`` (``topics.schemas`` names the common ones ``Phone``,
    ``PersonName``, ``DriverId``).

    >>> from topics.schemas import HotlineTicket
    >>> field_policies(HotlineTicket)
    {'caller_phone': 'mask', 'caller_name': 'drop'}
    """

    policy: PolicyKind


@lru_cache(maxsize=256)
def field_policies(schema: type[BaseModel]) -> dict[str, PolicyKind]:
    """The personal fields a schema declares, and their policies (read once per schema)."""
    return {name: marker.policy for name, info in schema.model_fields.items()
            for marker in info.metadata if isinstance(marker, Personal)}


# -- the key and the token ---------------------------------------------------------------------

_key_in_use: ContextVar[bytes | None] = ContextVar("personal_data_key", default=None)


_key_configured: bytes | None = None


def use_key(key: bytes) -> None:
    """Make ``key`` this process's hashing key (the command line does, from the
    configuration)."""
    global _key_configured
    _key_configured = key
    configured_key.cache_clear()


@lru_cache(maxsize=1)
def configured_key() -> bytes:
    """The hashing key: the one ``use_key`` set, else ``YUJING_PERSONAL_DATA__KEY``, else the
    file that ``YUJING_PERSONAL_DATA__KEY_FILE`` names, else ``DEVELOPMENT_KEY`` (with a
    warning, once)."""
    if _key_configured is not None:
        return _key_configured
    if os.environ.get(KEY_ENV):
        return os.environ[KEY_ENV].encode()
    if os.environ.get(KEY_FILE_ENV):
        return Path(os.environ[KEY_FILE_ENV]).read_bytes().strip()
    log.warning("no %s or %s: personal data is hashed with the public development key",
                KEY_ENV, KEY_FILE_ENV)
    return DEVELOPMENT_KEY


@contextmanager
def hashing_key(key: bytes) -> Iterator[None]:
    """Hash with ``key`` within the block (rule-file tests pin ``DEVELOPMENT_KEY``, so their
    expected tokens do not depend on the machine's configuration)."""
    token = _key_in_use.set(key)
    try:
        yield
    finally:
        _key_in_use.reset(token)


def hash_token(value: object, key: bytes | None = None) -> str:
    """A stable, keyed, non-reversible token for ``value``: the same value and key give the
    same token; without the key it cannot be recomputed from a guess.

    >>> hash_token("13812345678", b"k1") == hash_token("13812345678", b"k1")
    True
    >>> hash_token("13812345678", b"k1") == hash_token("13812345678", b"k2")
    False
    >>> hash_token("D1", b"k1")
    'h:cb3e37571c7c'
    """
    secret = key if key is not None else (_key_in_use.get() or configured_key())
    digest = hmac.new(secret, str(value).strip().encode(), hashlib.sha256).hexdigest()
    return "h:" + digest[:12]


# -- the patterns ------------------------------------------------------------------------------

# Digits or ASCII letters next to a number make it part of a longer id (an order number, a hex
# alert id, a coordinate's decimals), so no pattern matches inside one. CJK text around a number
# does not count: "电话13812345678联系" holds a phone number.
_BEFORE = r"(?<![0-9A-Za-z.])"
_AFTER = r"(?![0-9A-Za-z]|\.\d)"
_MOBILE = re.compile(_BEFORE + r"(?P<country>(?:\+|00)?86[- ]?)?"
                     r"(?P<head>1[3-9]\d)(?P<sep1>[- ]?)(?P<mid>\d{4})(?P<sep2>[- ]?)"
                     r"(?P<tail>\d{4})" + _AFTER)
_LANDLINE = re.compile(_BEFORE + r"(?P<area>\(0\d{2,3}\)|0\d{2,3}[- ])[- ]?"
                       r"(?P<local>[2-9]\d{6,7})(?P<ext>-\d{1,5})?" + _AFTER)
_ID_NUMBER = re.compile(_BEFORE + r"(?P<region>[1-9]\d{5})(?P<birth>(?:19|20)\d{6})"
                        r"(?P<serial>\d{3})(?P<check>[0-9Xx])" + _AFTER)
_DIGIT = re.compile(r"\d")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def is_id_number(text: str) -> bool:
    """Whether ``text`` is an 18-digit resident ID number: a plausible birth date and the
    ISO 7064 MOD 11-2 check character (GB 11643).

    >>> is_id_number("330102199001011234"), is_id_number("11010519491231002X")
    (True, True)
    >>> is_id_number("330102199001011235"), is_id_number("330102199013011234")
    (False, False)
    """
    match = _ID_NUMBER.fullmatch(text)
    if match is None:
        return False
    birth = match.group("birth")
    try:
        born = date(int(birth[:4]), int(birth[4:6]), int(birth[6:]))
    except ValueError:
        return False
    if not date(1900, 1, 1) <= born <= date.today():
        return False
    total = sum(int(d) * w for d, w in zip(text[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == text[17].upper()


def _masked_mobile(m: re.Match[str]) -> str:
    return (f"{m.group('country') or ''}{m.group('head')}{m.group('sep1')}****"
            f"{m.group('sep2')}{m.group('tail')}")


def _masked_landline(m: re.Match[str]) -> str:
    local = m.group("local")
    return m.group(0).replace(local, "*" * (len(local) - 4) + local[-4:], 1)


def _masked_id(m: re.Match[str]) -> str:
    number = m.group(0)
    return number[:6] + "*" * 8 + number[-4:] if is_id_number(number) else number


def mask_text(text: str) -> str:
    """``text`` with every mobile, landline and ID number in it masked; nothing else changed.

    >>> mask_text("call 0571-87654321 or (010)62345678-12; +86 139 1234 5678")
    'call 0571-****4321 or (010)****5678-12; +86 139 **** 5678'
    >>> mask_text("ID 11010519491231002X, at 30.2741,120.13812345678 on 2024-06-03 08:00:31")
    'ID 110105********002X, at 30.2741,120.13812345678 on 2024-06-03 08:00:31'
    """
    if _DIGIT.search(text) is None:
        return text  # most log lines and summaries: no pattern run at all
    text = _ID_NUMBER.sub(_masked_id, text)
    text = _MOBILE.sub(_masked_mobile, text)
    return _LANDLINE.sub(_masked_landline, text)


def mask_value(value: object) -> str:
    """A personal value with only a little kept: a phone or ID number as ``mask_text`` shows
    it, anything else with its middle half starred (at least one character).

    >>> mask_value("13812345678"), mask_value("330102199001011234")
    ('138****5678', '330102********1234')
    >>> mask_value("张三丰"), mask_value("D1"), mask_value("AB12CD34")
    ('张*丰', 'D*', 'AB****34')
    """
    text = str(value).strip()
    masked = mask_text(text)
    if masked != text:
        return masked
    n = len(text)
    if n <= 2:
        return text[:n - 1] + "*"
    keep = max(1, n // 4)
    return text[:keep] + "*" * (n - 2 * keep) + text[n - keep:]


def protect(value: object, policy: PolicyKind) -> str | None:
    """What leaves the engine for one personal value (None for ``drop``).

    >>> protect("13812345678", "mask"), protect("x", "drop")
    ('138****5678', None)
    """
    if policy == "hash":
        return hash_token(value)
    if policy == "mask":
        return mask_value(value)
    return None


# -- records -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputProtection:
    """What one record's personal data becomes in output: the fields' policies, and the event's
    own personal values (so the same value is replaced where it turns up under another name, as
    a lookup's ``entity`` or an alert's ``key``).

    >>> guard = OutputProtection.of({"caller_phone": "13812345678", "caller_name": "张三",
    ...                              "text": "请回电 13912345678"},
    ...                             {"caller_phone": "mask", "caller_name": "drop"})
    >>> guard.record({"caller_phone": "13812345678", "caller_name": "张三",
    ...               "text": "请回电 13912345678", "entity": "张三"})
    {'caller_phone': '138****5678', 'text': '请回电 139****5678', 'entity': '[withheld]'}
    """

    policies: Mapping[str, PolicyKind]
    replacements: Mapping[str, str]

    @classmethod
    def of(cls, event: Mapping[str, Any], policies: Mapping[str, PolicyKind]
           ) -> OutputProtection:
        replacements = {}
        for name, policy in policies.items():
            value = event.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                replacements[str(value)] = protect(value, policy) or WITHHELD
        return cls(policies, replacements)

    def text(self, text: str) -> str:
        """A string as it may leave: an event's personal value replaced, patterns masked."""
        return self.replacements.get(text) or mask_text(text)

    def record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` with personal fields protected (dropped ones left out) and every string
        in it, at any depth, scanned."""
        out: dict[str, Any] = {}
        for name, value in record.items():
            policy = self.policies.get(str(name))
            if policy is None or value is None:
                out[name] = self.value(value)
            elif policy != "drop":
                out[name] = protect(value, policy)
        return out

    def summary_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Values to fill a summary from: as ``record``, a dropped field shown as withheld."""
        dropped = {name: WITHHELD for name, policy in self.policies.items()
                   if policy == "drop" and values.get(name) is not None}
        return {**self.record(values), **dropped}

    def value(self, value: Any) -> Any:
        """Any value of a record as it may leave: strings scanned, containers walked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, int) and not isinstance(value, bool) and value > 10**9:
            # A phone number sent as a JSON number: shown as its masked text.
            masked = self.text(str(value))
            return value if masked == str(value) else masked
        if isinstance(value, Mapping):
            return self.record(value)
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
