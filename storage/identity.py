"""Who is the same person: only identities a trusted party vouched for, or an operator's audited merge.

A contract or phone number a client types is a claim anyone can make; it ties no one to anyone else's
history. A phone Telegram shares with the contact button as the sender's own is verified, and clients
holding the same verified phone are one person; anything else takes an operator's explicit merge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.engine import Connection

from storage.models import ChannelIdentity, Client, Conversation, DetailRecord, VerifiedIdentity


def _table(model: Any) -> Table:
    # The same as storage.repository's: this module sits below it (the write path uses normal_phone).
    table: Table = model.__table__
    return table


clients, identities, conversations = _table(Client), _table(ChannelIdentity), _table(Conversation)
details, verified = _table(DetailRecord), _table(VerifiedIdentity)
PHONE = "phone"
_PHONE_CHARS = re.compile(r"^\+?[\d\s().\-]+$")
_MIN_DIGITS = 7


def normal_phone(text: str) -> str | None:
    """A phone number as `+<digits>` for comparing; None when the text is no phone at all."""
    text = text.strip()
    if not _PHONE_CHARS.match(text):
        return None
    digits = re.sub(r"\D", "", text)
    if len(digits) == 11 and digits.startswith("8"):
        # A Russian national number ("8 913 ..."): the same line as +7 913 ...
        digits = "7" + digits[1:]
    return "+" + digits if len(digits) >= _MIN_DIGITS else None


def same_person(connection: Connection, client_id: int) -> list[int]:
    """The client and every client holding one of its verified identities (the same phone that
    Telegram vouched for on two accounts); typed details tie no one."""
    own = select(verified.c.kind, verified.c.value).where(verified.c.client_id == client_id)
    pairs = [(str(row.kind), str(row.value)) for row in connection.execute(own)]
    linked: set[int] = {client_id}
    for kind, value in pairs:
        holders = select(verified.c.client_id).where(verified.c.kind == kind, verified.c.value == value)
        linked.update(int(row.client_id) for row in connection.execute(holders))
    return sorted(linked)


def verified_of(connection: Connection, people: list[int]) -> list[tuple[str, str, str]]:
    """(kind, value, source) of every verified identity of these clients, oldest first."""
    rows = connection.execute(
        select(verified.c.kind, verified.c.value, verified.c.source)
        .where(verified.c.client_id.in_(people))
        .order_by(verified.c.id)
    )
    return [(str(row.kind), str(row.value), str(row.source)) for row in rows]


def verified_detail_names(found: dict[str, str], phones: set[str]) -> frozenset[str]:
    """The details whose value is a verified phone of the client; every other detail is a claim."""
    return frozenset(name for name, value in found.items() if normal_phone(value) in phones)


@dataclass(frozen=True, slots=True)
class Merged:
    """What an operator's merge moved from one client to the other."""

    conversations: int
    identities: int
    details: int

    def describe(self) -> str:
        """`2 conversations, 1 identities, 3 details` for the audit trail and the command line."""
        return f"{self.conversations} conversations, {self.identities} identities, {self.details} details"


def merge(connection: Connection, keep: int, absorb: int) -> Merged:
    """Move everything of client `absorb` to client `keep` and delete `absorb`, inside the caller's
    transaction; LookupError when either is unknown, ValueError when they are the same client."""
    if keep == absorb:
        raise ValueError("a client cannot be merged into itself")
    found = {
        int(row.id): str(row.display_name)
        for row in connection.execute(select(clients).where(clients.c.id.in_((keep, absorb))))
    }
    for client_id in (keep, absorb):
        if client_id not in found:
            raise LookupError(f"there is no client {client_id}")
    moved_conversations = connection.execute(
        update(conversations).where(conversations.c.client_id == absorb).values(client_id=keep)
    ).rowcount
    moved_details = connection.execute(
        update(details).where(details.c.client_id == absorb).values(client_id=keep)
    ).rowcount
    moved_identities = connection.execute(
        update(identities).where(identities.c.client_id == absorb).values(client_id=keep)
    ).rowcount
    # A verified identity both hold stays once, with the kept client.
    held = select(verified.c.kind, verified.c.value).where(verified.c.client_id == keep)
    kept_pairs = {(str(row.kind), str(row.value)) for row in connection.execute(held)}
    for kind, value in kept_pairs:
        connection.execute(
            delete(verified).where(
                verified.c.client_id == absorb, verified.c.kind == kind, verified.c.value == value
            )
        )
    connection.execute(update(verified).where(verified.c.client_id == absorb).values(client_id=keep))
    if not found[keep] and found[absorb]:
        connection.execute(update(clients).where(clients.c.id == keep).values(display_name=found[absorb]))
    connection.execute(delete(clients).where(clients.c.id == absorb))
    return Merged(
        conversations=int(moved_conversations or 0),
        identities=int(moved_identities or 0),
        details=int(moved_details or 0),
    )


def client_of_account(connection: Connection, channel: str, user_id: str) -> int | None:
    """The client who holds an account in a channel (a VK user id); None when it never wrote."""
    row = connection.execute(
        select(identities.c.client_id).where(
            identities.c.channel == channel, identities.c.external_id == user_id
        )
    ).first()
    return None if row is None else int(row.client_id)


def vouch(connection: Connection, client_id: int, kind: str, value: str, source: str, at: datetime) -> bool:
    """Record that `source` vouched the identity is the client's; False when the client already held it."""
    held = connection.execute(
        select(verified.c.id).where(
            verified.c.client_id == client_id, verified.c.kind == kind, verified.c.value == value
        )
    ).first()
    if held is not None:
        return False
    connection.execute(
        insert(verified).values(client_id=client_id, kind=kind, value=value, source=source, at=at)
    )
    return True


def conversations_of(connection: Connection, client_id: int) -> list[int]:
    """The ids of a client's conversations, oldest first."""
    rows = connection.execute(
        select(conversations.c.id).where(conversations.c.client_id == client_id).order_by(conversations.c.id)
    )
    return [int(row.id) for row in rows]
