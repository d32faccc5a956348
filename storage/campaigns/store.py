"""The campaign store: whether each campaign is sending, its recipients and their funnel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Connection

from common.names import CampaignState
from storage.campaigns.audience import SqlAudience
from storage.campaigns.enqueue import SqlEnqueue, dialect_insert, ensure_preferences, record_consent
from storage.campaigns.sending import WAITING, SqlSending
from storage.campaigns.values import FunnelLine
from storage.locks import lock_key
from storage.tables import as_utc, campaigns, preferences, recipients

# The advisory lock of the one process (among workers sharing PostgreSQL) that sends campaigns.
SENDER_LOCK = lock_key("campaigns", "sender")


class CampaignStore(SqlEnqueue, SqlAudience, SqlSending):
    """Every concern of campaigns over one database and write lock: CampaignStore(engine, write_lock)."""

    def start(self, campaign_id: str, now: datetime) -> str:
        """Start a campaign that never ran (running); one started before keeps its state, returned."""
        with self.write_lock, self.engine.begin() as connection:
            connection.execute(
                dialect_insert(connection)(campaigns)
                .values(id=campaign_id, state=CampaignState.RUNNING, started_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=[campaigns.c.id])
            )
            state = connection.execute(
                select(campaigns.c.state).where(campaigns.c.id == campaign_id)
            ).scalar()
            return str(state)

    def pause(self, campaign_id: str, now: datetime) -> bool:
        """Stop sending (claims in flight finish); False when the campaign was never started."""
        return self._set(campaign_id, CampaignState.PAUSED, now)

    def resume(self, campaign_id: str, now: datetime) -> bool:
        """Send again; a campaign never started is started."""
        if self._set(campaign_id, CampaignState.RUNNING, now):
            return True
        return self.start(campaign_id, now) == CampaignState.RUNNING

    def _set(self, campaign_id: str, state: str, now: datetime) -> bool:
        with self.write_lock, self.engine.begin() as connection:
            changed = connection.execute(
                update(campaigns).where(campaigns.c.id == campaign_id).values(state=state, updated_at=now)
            )
            return bool(changed.rowcount)

    def state_of(self, campaign_id: str) -> str | None:
        """running or paused; None for a campaign never started."""
        with self.engine.connect() as connection:
            state = connection.execute(
                select(campaigns.c.state).where(campaigns.c.id == campaign_id)
            ).scalar()
        return None if state is None else str(state)

    def running(self) -> list[str]:
        """The campaigns that are sending."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(campaigns.c.id)
                .where(campaigns.c.state == CampaignState.RUNNING)
                .order_by(campaigns.c.id)
            )
            return [str(row.id) for row in rows]

    def started(self) -> list[str]:
        """Every campaign that was ever started, running or paused."""
        with self.engine.connect() as connection:
            return [
                str(row.id) for row in connection.execute(select(campaigns.c.id).order_by(campaigns.c.id))
            ]

    def consent(self, client_id: int, source: str, now: datetime) -> bool:
        """Record a client's consent to advertising (kept when already recorded); whether it is new."""
        with self.write_lock, self.engine.begin() as connection:
            return bool(record_consent(connection, {client_id: source}, now))

    def opt_out(self, client_id: int, via: str, now: datetime) -> bool:
        """Record that a client wants no more campaign messages (the first opt-out is kept); whether it
        is new. Every later campaign counts the client's chats as opted out."""
        with self.write_lock, self.engine.begin() as connection:
            ensure_preferences(connection, [client_id])
            changed = connection.execute(
                update(preferences)
                .where(preferences.c.client_id == client_id, preferences.c.opted_out_at.is_(None))
                .values(opted_out_at=now, opted_out_via=via)
            )
            return bool(changed.rowcount)

    def due(self, campaign_ids: Sequence[str], now: datetime, channels: Sequence[str] | None = None) -> int:
        """Messages of these campaigns due by `now` (first messages and follow-ups, claimed or not)."""
        query = select(func.count()).where(
            recipients.c.campaign.in_(list(campaign_ids)),
            recipients.c.status.in_(WAITING),
            recipients.c.next_at <= now,
        )
        if channels is not None:
            query = query.where(recipients.c.channel.in_(list(channels)))
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def claimed(self, campaign_ids: Sequence[str], channels: Sequence[str] | None = None) -> list[datetime]:
        """When each claim of these campaigns not yet recorded was taken (a live sender's, or a dead
        one's that turns stale after the lease)."""
        query = select(recipients.c.claimed_at).where(
            recipients.c.campaign.in_(list(campaign_ids)),
            recipients.c.status.in_(WAITING),
            recipients.c.attempt > recipients.c.steps_sent,
        )
        if channels is not None:
            query = query.where(recipients.c.channel.in_(list(channels)))
        with self.engine.connect() as connection:
            return [at for (value,) in connection.execute(query) if (at := as_utc(value)) is not None]

    def follow_ups(self, campaign_id: str) -> tuple[int, datetime | None]:
        """Follow-ups waiting: how many recipients got a message and will get another, and when the
        first of those is due."""
        query = select(func.count(), func.min(recipients.c.next_at)).where(
            recipients.c.campaign == campaign_id,
            recipients.c.status.in_(WAITING),
            recipients.c.steps_sent > 0,
            recipients.c.next_at.is_not(None),
        )
        with self.engine.connect() as connection:
            count, first = connection.execute(query).one()
        return int(count), as_utc(first)

    def funnel(self, campaign_id: str) -> list[FunnelLine]:
        """The campaign's recipients counted by channel, persona, status and reason."""
        query = (
            select(
                recipients.c.channel,
                recipients.c.persona,
                recipients.c.status,
                recipients.c.reason,
                func.count().label("count"),
            )
            .where(recipients.c.campaign == campaign_id)
            .group_by(recipients.c.channel, recipients.c.persona, recipients.c.status, recipients.c.reason)
            .order_by(recipients.c.channel, recipients.c.persona, recipients.c.status, recipients.c.reason)
        )
        with self.engine.connect() as connection:
            return [
                FunnelLine(
                    str(row.channel),
                    str(row.persona),
                    str(row.status),
                    str(row.reason),
                    int(row._mapping["count"]),
                )
                for row in connection.execute(query)
            ]


class SenderTurn:
    """Whether this process is the campaign sender among processes sharing a PostgreSQL database: a session
    advisory lock, held on a connection of its own until `release` (or until the process dies). Over
    SQLite, one process owns the file, and it always is."""

    def __init__(self, store: CampaignStore) -> None:
        self.engine = store.engine
        self._connection: Connection | None = None

    def acquire(self) -> bool:
        """Take the turn if no other process holds it; True while this process holds it."""
        if self.engine.dialect.name != "postgresql":
            return True
        if self._connection is not None:
            return True
        connection = self.engine.connect()
        got = bool(
            connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": SENDER_LOCK}).scalar()
        )
        connection.commit()
        if got:
            self._connection = connection
        else:
            connection.close()
        return got

    def release(self) -> None:
        """Give the turn up (closing its connection ends the session lock)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
