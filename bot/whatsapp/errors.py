"""The Graph API's answers as the gateway understands them: wait, retry, or give up (for this chat).

Codes from Meta's Cloud API error list: 4, 80007 and 130429 are rate limits, 131056 the limit of one
business number writing to one client; 131047 means the 24-hour window is closed and 131026 that the
client cannot receive messages (no WhatsApp, an old app, a blocked business).
"""

from __future__ import annotations

import json
import random

import httpx
from pywa.errors import WhatsAppError

from bot.channels.outbound import NotAllowed, OutboundError, Rejected, RetryLater, TemporaryFailure

RATE_LIMITED = frozenset({4, 80007, 130429})
PAIR_RATE_LIMITED = 131056
NOT_ALLOWED = frozenset({131026, 131047})
# 1 and 2: "unknown" and "temporarily unavailable"; 131000: "something went wrong"; 131016: overloaded.
TEMPORARY = frozenset({1, 2, 131000, 131016})
RATE_LIMIT_WAIT_S = 1.0
# Meta's pair limit is about one message every six seconds to a client, averaged.
PAIR_WAIT_S = 6.0


def _retry_after(error: WhatsAppError, default: float) -> float:
    header = error.raw_response.headers.get("Retry-After") if error.raw_response is not None else None
    if header is not None:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
    # Spread out: many chats told to wait at once should not all come back in the same instant.
    return default * (1 + random.random() / 2)


def describe(error: WhatsAppError) -> str:
    """A short line for logs: the code and Meta's message."""
    return f"{error.code}: {error.message}"[:300]


def translate(error: BaseException, rate_limit_wait_s: float = RATE_LIMIT_WAIT_S) -> OutboundError:
    """The OutboundError the gateway acts on for an exception from a pywa call."""
    if isinstance(error, WhatsAppError):
        code, status = error.code, error.status_code or 0
        if code in RATE_LIMITED or status == 429:
            return RetryLater(_retry_after(error, rate_limit_wait_s))
        if code == PAIR_RATE_LIMITED:
            return RetryLater(_retry_after(error, PAIR_WAIT_S))
        if code in NOT_ALLOWED:
            return NotAllowed(describe(error))
        if code in TEMPORARY or status >= 500 or error.is_transient:
            return TemporaryFailure(describe(error))
        return Rejected(describe(error))
    if isinstance(error, httpx.TransportError | TimeoutError):
        return TemporaryFailure(f"{type(error).__name__}: {error}")
    if isinstance(error, json.JSONDecodeError):
        # Not JSON with a success status: a proxy's page in front of the Graph API; try again later.
        return TemporaryFailure("undecodable answer from the Graph API")
    return Rejected(f"{type(error).__name__}: {error}")
