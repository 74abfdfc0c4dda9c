"""Logging in to the console: argon2 passwords, server-side sessions, a CSRF token each.

A session is a random token in an ``HttpOnly``, ``SameSite=Strict`` cookie; the server keeps
what it means (the user, when it ends, its CSRF token). Every request that changes something
must carry the session's CSRF token in ``X-CSRF-Token``, which another site's page cannot read,
so a forged form post is refused even where a browser would send the cookie.

>>> hashed = hash_password("correct horse")
>>> book = SessionBook({"duty": ConsoleUser(name="duty", password_hash=hashed)})
>>> book.log_in("duty", "wrong") is None
True
>>> session = book.log_in("duty", "correct horse")
>>> book.find(session.token).user.name
'duty'
>>> book.find(session.token).csrf_ok(session.csrf), book.find(session.token).csrf_ok("x")
(True, False)
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from engine.console.access import ConsoleUser

SESSION_S = 12 * 3600.0
"""A shift: a session ends this long after the login."""
COOKIE = "yujing_session"

_hasher = PasswordHasher()
_UNKNOWN_USER_HASH = _hasher.hash("no such user")
"""Verified against when the name is unknown, so a wrong name takes as long as a wrong
password (no telling which names exist by the time a login takes)."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    user: ConsoleUser
    csrf: str
    ends_at: float

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given, self.csrf)


@dataclass
class SessionBook:
    users: dict[str, ConsoleUser]
    sessions: dict[str, Session] = field(default_factory=dict)

    def log_in(self, name: str, password: str, now: float | None = None) -> Session | None:
        user = self.users.get(name)
        matches = password_matches(user.password_hash if user else _UNKNOWN_USER_HASH,
                                   password)
        if user is None or not matches:
            return None
        now = time.time() if now is None else now
        self._drop_ended(now)
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32),
                          now + SESSION_S)
        self.sessions[session.token] = session
        return session

    def find(self, token: str | None, now: float | None = None) -> Session | None:
        session = self.sessions.get(token or "")
        if session is None:
            return None
        if session.ends_at <= (time.time() if now is None else now):
            self.sessions.pop(session.token, None)
            return None
        return session

    def log_out(self, token: str | None) -> None:
        self.sessions.pop(token or "", None)

    def _drop_ended(self, now: float) -> None:
        for token in [t for t, s in self.sessions.items() if s.ends_at <= now]:
            del self.sessions[token]
