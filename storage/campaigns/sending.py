"""Sending a campaign at most once per step: claim a recipient, call the messenger, record what happened.

A claim (attempt = steps_sent + 1, claimed_at) is committed before the messenger is called, and the send
is recorded after it in one transaction with the message in the chat's conversation. A claim older than
the lease belongs to a sender that died between the two: on a channel that recognises a repeated send
(VK's random_id from the same key) it is claimed again and sent again; on any other the step is given up
and counted, never repeated.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, insert, select, update
from sqlalchemy.engine import Connection

from common.messages import Reply
from common.names import (
    OPEN_CONVERSATION_STATUSES,
    Author,
    CampaignState,
    ConversationStatus,
    Delivery,
    Direction,
    FunnelStatus,
    funnel_rank,
)
from common.state import ConversationState
from storage.campaigns.eligibility import chunks
from storage.campaigns.part import StorePart
from storage.campaigns.values import INTERRUPTED, Claim
from storage.tables import campaigns, clients, conversations, identities, messages, recipients
from storage.turns import buttons_json

# Recipients who may get a message: not answered yet, not ended.
WAITING = (FunnelStatus.QUEUED, FunnelStatus.SENT, FunnelStatus.DELIVERED, FunnelStatus.READ)
LEASE_S = 15.0
# What the sender hands in to bring the conversation's state up to the message it sent.
StateUpdate = Callable[[ConversationState], object]


class SqlSending(StorePart):
    """Claims and the record of sends (the sender's side of the campaign store)."""

    def claim_due(
        self,
        campaign_ids: Sequence[str],
        channel: str,
        now: datetime,
        limit: int = 50,
        lease_s: float = LEASE_S,
        *,
        resend_stale: bool = False,
    ) -> list[Claim]:
        """Claim up to `limit` recipients of these running campaigns in `channel` whose next message is due,
        oldest due first; no two senders ever hold the same claim. Stale claims (older than `lease_s`) are
        claimed again when `resend_stale` (the channel deduplicates a repeated send), else given up."""
        if not campaign_ids or limit <= 0:
            return []
        stale_before = now - timedelta(seconds=lease_s)
        running = select(campaigns.c.id).where(
            campaigns.c.id.in_(list(campaign_ids)), campaigns.c.state == CampaignState.RUNNING
        )
        due = (
            recipients.c.campaign.in_(running),
            recipients.c.channel == channel,
            recipients.c.status.in_(WAITING),
            recipients.c.next_at <= now,
        )
        unclaimed = recipients.c.attempt == recipients.c.steps_sent
        stale = (recipients.c.attempt > recipients.c.steps_sent) & (recipients.c.claimed_at < stale_before)
        with self.write_lock, self.engine.begin() as connection:
            if not resend_stale:
                _give_up(connection, due, stale, now)
            wanted = (
                select(recipients.c.id, recipients.c.attempt, recipients.c.steps_sent)
                .where(*due, (unclaimed | stale) if resend_stale else unclaimed)
                .order_by(recipients.c.next_at, recipients.c.id)
                .limit(limit)
            )
            if connection.dialect.name == "postgresql":
                # Rows another sender is claiming right now are passed over, not waited for.
                wanted = wanted.with_for_update(skip_locked=True)
            found = connection.execute(wanted).all()
            if not found:
                return []
            ids = [int(row.id) for row in found]
            repeated = {int(row.id) for row in found if int(row.attempt) > int(row.steps_sent)}
            # The guard is evaluated again on the row as it stands when the update reaches it: a claim
            # another transaction committed first makes this one skip the row.
            rows = connection.execute(
                update(recipients)
                .where(recipients.c.id.in_(ids), unclaimed | stale)
                .values(
                    attempt=case((unclaimed, recipients.c.steps_sent + 1), else_=recipients.c.attempt),
                    claimed_at=now,
                )
                .returning(
                    recipients.c.id,
                    recipients.c.campaign,
                    recipients.c.chat_id,
                    recipients.c.client_id,
                    recipients.c.persona,
                    recipients.c.time_zone,
                    recipients.c.status,
                    recipients.c.steps_sent,
                    recipients.c.attempt,
                )
            ).all()
            states = open_states(connection, channel, [str(row.chat_id) for row in rows])
        claims = []
        order = {recipient_id: index for index, recipient_id in enumerate(ids)}
        for row in sorted(rows, key=lambda r: order[int(r.id)]):
            state_json, persona = states.get(str(row.chat_id), ("", str(row.persona)))
            claims.append(
                Claim(
                    recipient_id=int(row.id),
                    campaign=str(row.campaign),
                    channel=channel,
                    chat_id=str(row.chat_id),
                    client_id=None if row.client_id is None else int(row.client_id),
                    persona=persona,
                    time_zone=str(row.time_zone),
                    status=str(row.status),
                    steps_sent=int(row.steps_sent),
                    attempt=int(row.attempt),
                    claimed_at=now,
                    state_json=state_json,
                    repeat=int(row.id) in repeated,
                )
            )
        return claims

    def renew(self, claims: Sequence[Claim], now: datetime) -> None:
        """Keep claims fresh while a live sender waits (flood control): others see it alive."""
        ids = [claim.recipient_id for claim in claims]
        if not ids:
            return
        with self.write_lock, self.engine.begin() as connection:
            for part in chunks(ids):
                connection.execute(
                    update(recipients)
                    .where(recipients.c.id.in_(part), recipients.c.attempt > recipients.c.steps_sent)
                    .values(claimed_at=now)
                )

    def record_sent(
        self,
        claim: Claim,
        replies: Sequence[Reply],
        external_id: str,
        next_at: datetime | None,
        now: datetime,
        *,
        run: StateUpdate | None = None,
    ) -> bool:
        """The messenger accepted the step: in one transaction, the messages in the chat's open conversation
        (a new one for the client when none is open), its state brought up to them by `run(state)`, and
        the recipient moved on (status forward to sent, the step counted, `next_at` for a follow-up or
        None). False, with nothing stored, when the claim is no longer this sender's."""
        with self.write_lock, self.engine.begin() as connection:
            row = _claimed(connection, claim)
            if row is None:
                return False
            conversation_id, state = _open_conversation(connection, claim, row, now)
            if run is not None:
                run(state)
            connection.execute(
                update(conversations)
                .where(conversations.c.id == conversation_id)
                .values(state_json=state.to_json(), persona=state.persona, updated_at=now)
            )
            for index, reply in enumerate(replies):
                connection.execute(
                    insert(messages).values(
                        conversation_id=conversation_id,
                        direction=Direction.OUT,
                        text=reply.text,
                        attachment=None,
                        external_id=external_id if index == len(replies) - 1 else "",
                        buttons_json=buttons_json(reply),
                        author=Author.CAMPAIGN,
                        delivery=Delivery.SENT,
                        handled=True,
                        raw_json="",
                        at=now,
                    )
                )
            moved: dict[str, Any] = {}
            if funnel_rank(FunnelStatus.SENT) > funnel_rank(str(row.status)):
                moved = {"status": FunnelStatus.SENT, "sent_at": now}
            connection.execute(
                update(recipients)
                .where(recipients.c.id == claim.recipient_id)
                .values(
                    steps_sent=claim.attempt,
                    claimed_at=None,
                    next_at=next_at,
                    external_id=external_id,
                    conversation_id=conversation_id,
                    persona=state.persona,
                    **moved,
                )
            )
            return True

    def record_refused(self, claim: Claim, reason: str, now: datetime) -> bool:
        """The messenger said the client does not allow messages (a blocked bot, VK's 901): not allowed,
        with the reason; later campaigns see the door closed until the client writes again."""
        return self._end_step(claim, now, status=FunnelStatus.NOT_ALLOWED, reason=reason)

    def record_failed(self, claim: Claim, reason: str, now: datetime) -> bool:
        """The messenger refused the step for good (or it may have been sent and is not repeated): a first
        message fails the recipient; a follow-up only stops the follow-ups."""
        status = FunnelStatus.FAILED if claim.steps_sent == 0 else None
        return self._end_step(claim, now, status=status, reason=reason)

    def postpone(self, claim: Claim, next_at: datetime | None) -> bool:
        """Give the claim back unsent, due again at `next_at` (outside the campaign's hours), or never
        (None: the campaign has no such step any more)."""
        with self.write_lock, self.engine.begin() as connection:
            changed = connection.execute(
                update(recipients)
                .where(*_still_claimed(claim))
                .values(attempt=recipients.c.steps_sent, claimed_at=None, next_at=next_at)
            )
            return bool(changed.rowcount)

    def _end_step(self, claim: Claim, now: datetime, *, status: str | None, reason: str) -> bool:
        values: dict[str, Any] = {
            "attempt": recipients.c.steps_sent,
            "claimed_at": None,
            "next_at": None,
            "reason": reason,
        }
        with self.write_lock, self.engine.begin() as connection:
            row = _claimed(connection, claim)
            if row is None:
                return False
            if status is not None and funnel_rank(status) > funnel_rank(str(row.status)):
                values.update(status=status, ended_at=now)
            connection.execute(
                update(recipients).where(recipients.c.id == claim.recipient_id).values(**values)
            )
            return True


def _give_up(connection: Connection, due: tuple[Any, ...], stale: Any, now: datetime) -> None:
    """Stale claims on a channel that cannot deduplicate: the step counts as sent-or-not and is not
    repeated; a first message that may not have arrived ends the recipient as failed."""
    first = recipients.c.status == FunnelStatus.QUEUED
    connection.execute(
        update(recipients)
        .where(*due, stale)
        .values(
            steps_sent=recipients.c.attempt,
            claimed_at=None,
            next_at=None,
            reason=INTERRUPTED,
            status=case((first, FunnelStatus.FAILED), else_=recipients.c.status),
            ended_at=case((first, now), else_=recipients.c.ended_at),
        )
    )


def _still_claimed(claim: Claim) -> tuple[Any, ...]:
    return (
        recipients.c.id == claim.recipient_id,
        recipients.c.attempt == claim.attempt,
        recipients.c.steps_sent < claim.attempt,
    )


def _claimed(connection: Connection, claim: Claim) -> Any:
    """The recipient's row while this claim still holds it (locked on PostgreSQL), else None."""
    query = select(recipients).where(*_still_claimed(claim))
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()
    return connection.execute(query).first()


def open_states(connection: Connection, channel: str, chat_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(state JSON, persona) of each chat's open conversation."""
    found: dict[str, tuple[str, str]] = {}
    for part in chunks(list(dict.fromkeys(chat_ids))):
        rows = connection.execute(
            select(conversations.c.chat_id, conversations.c.state_json, conversations.c.persona)
            .where(
                conversations.c.channel == channel,
                conversations.c.chat_id.in_(part),
                conversations.c.status.in_(OPEN_CONVERSATION_STATUSES),
            )
            .order_by(conversations.c.id)
        )
        for row in rows:
            found[str(row.chat_id)] = (str(row.state_json), str(row.persona))
    return found


def _open_conversation(
    connection: Connection, claim: Claim, row: Any, now: datetime
) -> tuple[int, ConversationState]:
    """The chat's open conversation and its state; a new one (in the recipient's persona) when every
    conversation of the chat is closed."""
    found = connection.execute(
        select(conversations.c.id, conversations.c.state_json)
        .where(
            conversations.c.channel == claim.channel,
            conversations.c.chat_id == claim.chat_id,
            conversations.c.status.in_(OPEN_CONVERSATION_STATUSES),
        )
        .order_by(conversations.c.id.desc())
        .limit(1)
    ).first()
    if found is not None:
        return int(found.id), ConversationState.from_json(str(found.state_json))
    client_id = row.client_id if row.client_id is not None else _client_for(connection, claim, now)
    state = ConversationState(persona=str(row.persona))
    conversation_id = connection.execute(
        insert(conversations)
        .values(
            client_id=client_id,
            channel=claim.channel,
            chat_id=claim.chat_id,
            status=ConversationStatus.BOT,
            persona=state.persona,
            state_json=state.to_json(),
            created_at=now,
            updated_at=now,
        )
        .returning(conversations.c.id)
    ).scalar_one()
    return int(conversation_id), state


def _client_for(connection: Connection, claim: Claim, now: datetime) -> int:
    """The client of the chat's account, made when the chat has none (a recipient queued before its
    client was known)."""
    held = connection.execute(
        select(identities.c.client_id).where(
            identities.c.channel == claim.channel, identities.c.external_id == claim.chat_id
        )
    ).scalar()
    if held is not None:
        return int(held)
    client_id = int(
        connection.execute(
            insert(clients).values(created_at=now, display_name="").returning(clients.c.id)
        ).scalar_one()
    )
    connection.execute(
        insert(identities).values(client_id=client_id, channel=claim.channel, external_id=claim.chat_id)
    )
    return client_id
