"""The process's Prometheus metrics: what every layer counts as it works (turns, messages, retries,
content reloads), in one registry that `/metrics` renders. Names start with `tonebot_`.

Counting costs a microsecond or two a call, so the hot paths (a turn, a send) count directly; figures that
live in the database (handoffs waiting, SLA breaches, the outbox) are read when Prometheus scrapes, by a
collector the serving process registers (storage/metrics.py)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

# A turn is about a millisecond over SQLite and a few over PostgreSQL; the buckets span both and the tail.
TURN_SECONDS = Histogram(
    "tonebot_turn_seconds",
    "Time to handle one client message: storing it, the engine's turn and storing the turn.",
    ["channel"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
MESSAGES = Counter(
    "tonebot_messages",
    "Messages by channel and direction: in from clients, out from the bot, people and campaigns.",
    ["channel", "direction"],
    registry=REGISTRY,
)
SEND_RETRIES = Counter(
    "tonebot_send_retries",
    "Sends to a messenger tried again after a rate limit or a temporary failure.",
    ["channel"],
    registry=REGISTRY,
)
CONTENT_RELOAD_ERRORS = Counter(
    "tonebot_content_reload_errors",
    "Edits of the content that did not load (the last good version kept serving).",
    registry=REGISTRY,
)
CAMPAIGN_SENDS = Counter(
    "tonebot_campaign_messages",
    "Campaign messages by outcome: sent, refused (the door is closed), failed.",
    ["campaign", "channel", "outcome"],
    registry=REGISTRY,
)


def counted(channel: str, direction: str, count: int = 1) -> None:
    """Count messages of a channel going one way."""
    if count:
        MESSAGES.labels(channel, direction).inc(count)


def exposition() -> bytes:
    """Everything registered, in the Prometheus text format."""
    return generate_latest(REGISTRY)


CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


# Addresses that may read /metrics without a token: this machine itself.
LOCAL_PEERS = frozenset({"127.0.0.1", "::1", "localhost"})
# A request that came through a proxy carries one of these: its peer is the proxy, not the reader.
_FORWARDED = ("forwarded", "x-forwarded-for", "x-real-ip")


def may_read(peer: str | None, headers: Mapping[str, str], token: str) -> bool:
    """Whether a scrape may read /metrics: from this machine directly, or with the bearer token from the
    environment (TONEBOT_METRICS_TOKEN); without a token set, only from this machine."""
    forwarded = any(name in headers for name in _FORWARDED)
    if peer in LOCAL_PEERS and not forwarded:
        return True
    given = headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)


def metrics_token(environ: Mapping[str, str]) -> str:
    """The bearer token other addresses need (TONEBOT_METRICS_TOKEN); empty: local readers only."""
    return environ.get("TONEBOT_METRICS_TOKEN", "").strip()
