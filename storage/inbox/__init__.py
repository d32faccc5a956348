"""The misunderstood inbox in storage: what the bot did not understand over a period, newest first, and
one conversation's messages around it, for the editors' pages (web/inbox_pages.py)."""

from __future__ import annotations

from storage.inbox.base import Inbox, InboxMessage, InboxSlice, Transcript, TranscriptLine
from storage.inbox.sql import SqlInbox

__all__ = ["Inbox", "InboxMessage", "InboxSlice", "SqlInbox", "Transcript", "TranscriptLine"]
