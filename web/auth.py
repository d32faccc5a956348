"""Console sign-in: scrypt-hashed passwords, server-side sessions, CSRF tokens, throttled guessing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Request

from operators.passwords import N, P, R, hash_password, needs_rehash, verify_password
from storage.desk.base import Accounts, AuditTrail
from web.throttle import SignInThrottle

SESSION_COOKIE = "tonebot_session"
LOGIN_CSRF_COOKIE = "tonebot_login_csrf"
# Given to a browser at a successful sign-in: guesses at the name from elsewhere do not slow it down.
DEVICE_COOKIE = "tonebot_device"
SESSION_LIFETIME = timedelta(hours=12)
# Password checks run here, two at a time (each needs 128 MiB and a core for ~0.3 s), never in the pool that
# serves the chat; when this many are already waiting, further attempts are refused at once.
PASSWORD_CHECKERS = 2
PASSWORD_CHECKS_WAITING = 16
# A dummy hash of today's cost, so that an unknown name costs as much time as a wrong password.
_DUMMY_HASH = f"scrypt${N}${R}${P}$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    """A session token (and the browser's device token) on success; otherwise how long to wait, if at all."""

    token: str | None = None
    device: str = ""
    wait_s: float = 0.0


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

    def __init__(
        self,
        accounts: Accounts,
        audit: AuditTrail,
        *,
        secure_cookies: bool = False,
        throttle: SignInThrottle | None = None,
    ) -> None:
        self.accounts, self.audit = accounts, audit
        self.secure_cookies = secure_cookies
        self.throttle = throttle or SignInThrottle()
        self._checkers = ThreadPoolExecutor(PASSWORD_CHECKERS, thread_name_prefix="password-check")
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    async def sign_in(self, name: str, password: str, address: str, device: str = "") -> SignInOutcome:
        """Check a password unless the throttle or the checkers' queue refuses the attempt first (cheaply)."""
        wait = self.throttle.begin(name, address, time.monotonic(), device)
        if wait > 0:
            return SignInOutcome(wait_s=wait)
        # The owner (a known address or browser) waits in the queue; strangers are refused when it is full.
        owner = self.throttle.known(name, address, device)
        with self._waiting_lock:
            busy = self._waiting >= PASSWORD_CHECKS_WAITING and not owner
            if not busy:
                self._waiting += 1
        if busy:
            self.throttle.cancel(name, address)
            return SignInOutcome(wait_s=5.0)
        token: str | None = None
        try:
            loop = asyncio.get_running_loop()
            token = await loop.run_in_executor(self._checkers, self._check, name, password)
        finally:
            with self._waiting_lock:
                self._waiting -= 1
            new_device = (device or secrets.token_urlsafe(24)) if token else ""
            self.throttle.finish(name, address, token is not None, time.monotonic(), new_device)
        return SignInOutcome(token=token, device=new_device)

    def _check(self, name: str, password: str) -> str | None:
        """A new session for the right password (its hash renewed if of an older cost); None otherwise."""
        operator = self.accounts.operator(name)
        stored = operator.password_hash if operator else _DUMMY_HASH
        if not verify_password(password, stored) or operator is None or operator.disabled:
            return None
        if needs_rehash(stored):
            self.accounts.set_password_hash(name, stored, hash_password(password))
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        self.accounts.create_session(
            operator.id, token_hash(token), secrets.token_urlsafe(24), now, now + SESSION_LIFETIME
        )
        self.audit.record(name, "sign_in", None, "", now)
        return token

    def current(self, request: Request) -> SignedIn:
        """The signed-in operator, or SignInRequired."""
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            raise SignInRequired
        hashed = token_hash(token)
        found = self.accounts.session(hashed, datetime.now(UTC))
        if found is None:
            raise SignInRequired
        operator, csrf = found
        return SignedIn(operator.name, operator.display_name or operator.name, operator.role, csrf, hashed)

    def sign_out(self, who: SignedIn) -> None:
        """End a session."""
        self.accounts.end_session(who.token_hash)
        self.audit.record(who.name, "sign_out", None, "", datetime.now(UTC))
