"""Password hashing with scrypt from the standard library: salted, memory-hard, constant-time checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
# OWASP's current minimum for scrypt: 128 MiB of memory per check (n * r * 128 bytes). Hashes made
# with a lower cost are replaced at the next successful sign-in.
N, R, P = 2**17, 8, 1
# OpenSSL refuses more than 32 MiB unless told; stored costs above this bound are treated as malformed,
# so a tampered hash cannot make a check allocate without limit.
MAX_MEMORY = 2 * 128 * N * R
MIN_LENGTH = 8


def hash_password(password: str) -> str:
    """A self-describing hash: scheme, cost parameters, salt and digest."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, maxmem=MAX_MEMORY, dklen=32)
    encoded = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"{SCHEME}${N}${R}${P}${encoded[0]}${encoded[1]}"


def verify_password(password: str, stored: str) -> bool:
    """Whether a password matches a stored hash; False for malformed hashes."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != SCHEME:
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8", "replace"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=MAX_MEMORY,
            dklen=len(expected),
        )
    except (ValueError, TypeError, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash was made with other cost parameters than today's."""
    parts = stored.split("$")
    return len(parts) != 6 or parts[0] != SCHEME or parts[1:4] != [str(N), str(R), str(P)]


def new_password() -> str:
    """A random password for generated accounts (the demo operator)."""
    return secrets.token_urlsafe(9)
