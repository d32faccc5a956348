"""The trigger API's signature: HMAC-SHA256 of "<timestamp>.<raw body>" with the shared secret.

The timestamp (Unix seconds, header X-Tonebot-Timestamp) is part of what is signed, so a request captured
on the way cannot be sent again once it is more than five minutes old; within those minutes a replay
repeats an event id, which the API answers as a duplicate without doing anything.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "x-tonebot-signature"
TIMESTAMP_HEADER = "x-tonebot-timestamp"
PREFIX = "sha256="
# How far the sender's clock may be from ours, either way.
MAX_SKEW_S = 300
# Shorter secrets can be guessed; `openssl rand -hex 32` gives 64 characters.
MIN_SECRET_CHARS = 32


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Tonebot-Signature value for a body sent at `timestamp`: `sha256=<hex>`."""
    signed = timestamp.encode("ascii") + b"." + body
    return PREFIX + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def refusal(secret: str, timestamp: str | None, signed: str | None, body: bytes, now: float) -> str | None:
    """None when the request is signed with `secret` within the allowed skew; otherwise why not (for the
    log only: the caller learns nothing but "unauthorized")."""
    if not timestamp or not signed:
        return "no signature or timestamp header"
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return "the timestamp is not Unix seconds"
    if abs(now - int(timestamp)) > MAX_SKEW_S:
        return f"the timestamp is {int(now) - int(timestamp)} s off"
    expected = signature(secret, timestamp, body)
    # Compared in constant time, as bytes: a str with non-ASCII characters cannot be compared so.
    if not hmac.compare_digest(expected.encode(), signed.strip().lower().encode("utf-8", "replace")):
        return "wrong signature"
    return None
