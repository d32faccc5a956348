"""Campaigns in storage: which are sending, their recipients (eligibility, the funnel), the audience query,
trigger events stored once, and the claims that keep every step sent at most once.

`CampaignStore(engine, write_lock)` holds every part; storage knows campaigns only by id and plain values
(the campaign files are the dialogs layer's).
"""

from __future__ import annotations

from storage.campaigns.sending import LEASE_S, WAITING
from storage.campaigns.store import CampaignStore, SenderTurn
from storage.campaigns.values import (
    BLOCKED,
    INTERRUPTED,
    NO_CONSENT,
    NO_DOOR,
    OPTED_OUT,
    WINDOW_CLOSED,
    Claim,
    Enqueued,
    FunnelLine,
    Target,
    TriggerOutcome,
)

__all__ = [
    "BLOCKED",
    "INTERRUPTED",
    "LEASE_S",
    "NO_CONSENT",
    "NO_DOOR",
    "OPTED_OUT",
    "WAITING",
    "WINDOW_CLOSED",
    "CampaignStore",
    "Claim",
    "Enqueued",
    "FunnelLine",
    "SenderTurn",
    "Target",
    "TriggerOutcome",
]
