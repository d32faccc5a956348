"""The misunderstood inbox's reads in SQL: one indexed range of `misunderstood` by moment, newest first, and
one conversation's messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine, Row

from storage.inbox.base import InboxMessage, InboxSlice, Transcript, TranscriptLine
from storage.tables import as_utc, conversations, messages, misunderstood

# A conversation page shows this many messages from its start: misunderstandings come early, and a page
# of thousands of lines would help no editor.
TRANSCRIPT_LIMIT = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SqlInbox:
    """The Inbox over a database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def misheard(self, since: datetime, until: datetime, limit: int) -> InboxSlice:
        """The misunderstood messages with since <= at < until, the newest `limit` of them first."""
        period = (misunderstood.c.at >= since, misunderstood.c.at < until)
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(misunderstood)
                .where(*period)
                .order_by(misunderstood.c.at.desc(), misunderstood.c.id.desc())
                .limit(limit)
            ).all()
            total = len(rows)
            if total == limit:
                counted = select(func.count()).select_from(misunderstood).where(*period)
                total = int(connection.execute(counted).scalar_one())
        return InboxSlice([_message(row) for row in rows], total)

    def transcript(self, conversation_id: int) -> Transcript | None:
        """A conversation's first TRANSCRIPT_LIMIT messages and its misunderstood ones; None unless
        something in it was misunderstood."""
        with self.engine.connect() as connection:
            misheard = connection.execute(
                select(misunderstood)
                .where(misunderstood.c.conversation_id == conversation_id)
                .order_by(misunderstood.c.at, misunderstood.c.id)
            ).all()
            if not misheard:
                return None
            channel = connection.execute(
                select(conversations.c.channel).where(conversations.c.id == conversation_id)
            ).scalar_one()
            of_conversation = messages.c.conversation_id == conversation_id
            rows = connection.execute(
                select(messages).where(of_conversation).order_by(messages.c.id).limit(TRANSCRIPT_LIMIT)
            ).all()
            counted = select(func.count()).select_from(messages).where(of_conversation)
            total = int(connection.execute(counted).scalar_one())
        lines = [
            TranscriptLine(
                id=int(row.id),
                direction=str(row.direction),
                author=str(row.author),
                text=str(row.text),
                attachment=row.attachment,
                at=as_utc(row.at) or _EPOCH,
            )
            for row in rows
        ]
        return Transcript(conversation_id, str(channel), lines, total, [_message(row) for row in misheard])


def _message(row: Row[Any]) -> InboxMessage:
    return InboxMessage(
        id=int(row.id),
        conversation_id=int(row.conversation_id),
        reason=str(row.reason),
        text=str(row.text),
        at=as_utc(row.at) or _EPOCH,
    )
