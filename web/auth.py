"""Console sign-in: scrypt-hashed passwords, server-side sessions, CSRF tokens, slowed password guessing."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request

from operators.passwords import verify_password
from storage.desk import DeskStore

SESSION_COOKIE = "tonebot_session"
LOGIN_CSRF_COOKIE = "tonebot_login_csrf"
SESSION_LIFETIME = timedelta(hours=12)
FAILURES_BEFORE_PAUSE = 5
PAUSE_S = 30.0
# Names with recent failures remembered; guessing many names cannot grow memory without bound.
FAILURES_KEPT = 10_000
# A dummy hash so that an unknown name costs as much time as a wrong password.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The operator behind a request."""

    name: str
    display_name: str
    role: str
    csrf: str
    token_hash: str


class SignInRequired(Exception):
    """The request has no live session; pages redirect to the sign-in form."""


def token_hash(token: str) -> str:
    """What the sessions table keeps instead of the cookie's token."""
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two tokens."""
    return bool(a) and hmac.compare_digest(a.encode(), b.encode())


class Guard:
    """Signs operators in and out and recognises their sessions."""

    def __init__(self, store: DeskStore, *, secure_cookies: bool = False) -> None:
        self.store = store
        self.secure_cookies = secure_cookies
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def sign_in(self, name: str, password: str) -> str | None:
        """A new session token for the right password; None otherwise (and after many failures)."""
        with self._lock:
            count, since = self._failures.get(name, (0, 0.0))
            if count >= FAILURES_BEFORE_PAUSE and time.monotonic() - since < PAUSE_S:
                return None
            # Counted before the (slow) check, so guesses sent in parallel cannot all see the old count.
            self._failures[name] = (count + 1, time.monotonic())
            if len(self._failures) > FAILURES_KEPT:
                del self._failures[next(iter(self._failures))]
        operator = self.store.operator(name)
        ok = verify_password(password, operator.password_hash if operator else _DUMMY_HASH)
        if not ok or operator is None or operator.disabled:
            return None
        with self._lock:
            self._failures.pop(name, None)
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        self.store.create_session(
            operator.id, token_hash(token), secrets.token_urlsafe(24), now, now + SESSION_LIFETIME
        )
        self.store.record(name, "sign_in", None, "", now)
        return token

    def current(self, request: Request) -> SignedIn:
        """The signed-in operator, or SignInRequired."""
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            raise SignInRequired
        hashed = token_hash(token)
        found = self.store.session(hashed, datetime.now(UTC))
        if found is None:
            raise SignInRequired
        operator, csrf = found
        return SignedIn(operator.name, operator.display_name or operator.name, operator.role, csrf, hashed)

    def sign_out(self, who: SignedIn) -> None:
        """End a session."""
        self.store.end_session(who.token_hash)
        self.store.record(who.name, "sign_out", None, "", datetime.now(UTC))
