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

Given a file to keep them in, a restarted console knows the sessions (see ``kept_in``):

>>> import tempfile
>>> kept = Path(tempfile.mkdtemp()) / "sessions.json"
>>> first = SessionBook(book.users, kept_in=kept)
>>> session = first.log_in("duty", "correct horse")
>>> SessionBook(book.users, kept_in=kept).find(session.token).csrf == session.csrf
True
>>> first.log_out(session.token)
>>> SessionBook(book.users, kept_in=kept).find(session.token) is None
True
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
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
    """By the SHA-256 of the session's token (the token itself is only in the cookie)."""
    kept_in: Path | None = None
    """A file (mode 0600) the sessions are kept in, so a restarted console still knows them:
    a wall screen signed in stays signed in and resumes its stream. None: in memory only."""

    def __post_init__(self) -> None:
        if self.kept_in is not None and self.kept_in.exists():
            self._load(self.kept_in)

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
        self.sessions[_digest(session.token)] = session
        self._save()
        return session

    def find(self, token: str | None, now: float | None = None) -> Session | None:
        session = self.sessions.get(_digest(token or ""))
        if session is None:
            return None
        if session.ends_at <= (time.time() if now is None else now):
            self.log_out(token)
            return None
        return session

    def log_out(self, token: str | None) -> None:
        if self.sessions.pop(_digest(token or ""), None) is not None:
            self._save()

    def _drop_ended(self, now: float) -> None:
        for key in [k for k, s in self.sessions.items() if s.ends_at <= now]:
            del self.sessions[key]

    def _save(self) -> None:
        if self.kept_in is None:
            return
        kept = {key: {"user": s.user.name, "csrf": s.csrf, "ends_at": s.ends_at}
                for key, s in self.sessions.items()}
        self.kept_in.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.kept_in.with_name(self.kept_in.name + ".new")
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                       "wb") as out:
            out.write(orjson.dumps(kept))
        temporary.replace(self.kept_in)

    def _load(self, path: Path) -> None:
        try:
            kept = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return  # unreadable: everyone signs in again
        if not isinstance(kept, dict):
            return  # not the console's: likewise
        for key, entry in kept.items():
            if not _a_kept_session(entry):
                continue  # an entry of another shape keeps nobody signed in
            user = self.users.get(entry["user"])
            if user is not None:  # a user no longer configured has no session
                self.sessions[key] = Session("", user, entry["csrf"], float(entry["ends_at"]))
        self._drop_ended(time.time())


def _a_kept_session(entry: object) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("user"), str)
            and isinstance(entry.get("csrf"), str)
            and isinstance(entry.get("ends_at"), int | float)
            and not isinstance(entry.get("ends_at"), bool))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
