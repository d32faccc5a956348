"""Turning MAX updates (maxapi's models) into platform-free IncomingMessages.

message_created and message_edited carry the client's message, message_callback a pressed button, and
bot_started the opening of the bot (with a deep link's payload) — read as "/start <payload>", what the
engine greets, as Telegram's /start is.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from maxapi.types.attachments.attachment import ContactAttachmentPayload
from maxapi.types.message import Message
from maxapi.types.updates import UpdateUnionAdapter
from maxapi.types.updates.bot_started import BotStarted
from maxapi.types.updates.message_callback import MessageCallback
from maxapi.types.updates.message_created import MessageCreated
from maxapi.types.updates.message_edited import MessageEdited
from maxapi.utils.vcf import parse_vcf_info

from common.messages import AttachmentKind, IncomingMessage

log = logging.getLogger(__name__)
CHANNEL = "max"
MAX_TEXT = 100_000
START_COMMAND = "/start"
# The update types tonebot reads (GET /updates and webhook subscriptions ask for only these).
UPDATE_TYPES = ("message_created", "message_edited", "message_callback", "bot_started")
# maxapi's models of those types.
MaxUpdate = MessageCreated | MessageEdited | MessageCallback | BotStarted
_ATTACHMENTS: dict[str, AttachmentKind] = {
    "image": AttachmentKind.PHOTO,
    "sticker": AttachmentKind.STICKER,
    "audio": AttachmentKind.VOICE,
    "video": AttachmentKind.VIDEO,
    "file": AttachmentKind.DOCUMENT,
    "location": AttachmentKind.LOCATION,
    "contact": AttachmentKind.CONTACT,
    "share": AttachmentKind.OTHER,
}


def parse_update(raw: Any) -> MaxUpdate | None:
    """maxapi's model of one update's JSON; None (logged) for a type tonebot does not read or a
    malformed one, so one odd update never stops the rest."""
    if not isinstance(raw, dict) or raw.get("update_type") not in UPDATE_TYPES:
        return None
    try:
        update = UpdateUnionAdapter.validate_python(raw)
    except ValueError as exc:
        log.warning("skipped a malformed MAX %s update: %s", raw.get("update_type"), str(exc).splitlines()[0])
        return None
    return update if isinstance(update, MaxUpdate) else None


def incoming(update: MaxUpdate | None) -> tuple[IncomingMessage | None, str | None]:
    """The platform-free message in an update, and the callback id to answer, if any."""
    if isinstance(update, MessageCreated):
        return from_message(update.message), None
    if isinstance(update, MessageEdited):
        return from_message(update.message, edited_at=update.timestamp), None
    if isinstance(update, MessageCallback):
        return from_callback(update), update.callback.callback_id
    if isinstance(update, BotStarted):
        return from_bot_started(update), None
    return None, None


def from_message(message: Message, *, edited_at: int | None = None) -> IncomingMessage | None:
    """A client's message (new, or edited at `edited_at` ms); None for a bot's or a channel's post."""
    sender = message.sender
    chat_id = message.recipient.chat_id
    if sender is None or sender.is_bot or chat_id is None:
        return None
    body = message.body
    attachments = [a for a in (body.attachments or []) if a.type != "inline_keyboard"] if body else []
    phone, own = _contact(attachments, sender.user_id)
    mid = body.mid if body else f"link:{message.timestamp}"
    return IncomingMessage(
        channel=CHANNEL,
        chat_id=str(chat_id),
        user_id=str(sender.user_id),
        text=_text(message)[:MAX_TEXT],
        at=_when(edited_at or message.timestamp),
        message_id=mid if edited_at is None else f"edit:{mid}:{edited_at}",
        attachment=_ATTACHMENTS.get(str(attachments[0].type), AttachmentKind.OTHER) if attachments else None,
        contact_phone=phone,
        contact_verified=own,
    )


def from_callback(update: MessageCallback) -> IncomingMessage | None:
    """A pressed inline button; None when its message is gone (the chat is then unknown) or it has no
    payload."""
    chat_id = update.message.recipient.chat_id if update.message is not None else None
    callback = update.callback
    if chat_id is None or not callback.payload:
        return None
    return IncomingMessage(
        channel=CHANNEL,
        chat_id=str(chat_id),
        user_id=str(callback.user.user_id),
        text="",
        at=_when(callback.timestamp),
        message_id=f"cb:{callback.callback_id}",
        button_payload=callback.payload,
    )


def from_bot_started(update: BotStarted) -> IncomingMessage:
    """The client opened the bot (Start, or a max.ru/<bot>?start=<payload> link): "/start <payload>"."""
    payload = (update.payload or "").strip()
    return IncomingMessage(
        channel=CHANNEL,
        chat_id=str(update.chat_id),
        user_id=str(update.user.user_id),
        text=f"{START_COMMAND} {payload}"[:MAX_TEXT] if payload else START_COMMAND,
        at=_when(update.timestamp),
        message_id=f"start:{update.user.user_id}:{update.timestamp}",
    )


def _text(message: Message) -> str:
    if message.body is not None and message.body.text:
        return message.body.text
    # A forwarded message has no body of its own: the client means what they forwarded.
    linked = message.link.message if message.link is not None else None
    return (linked.text or "") if linked is not None else ""


def _contact(attachments: list[Any], sender_id: int) -> tuple[str | None, bool]:
    """The shared contact's phone, and whether it is the sender's own: MAX's request_contact button
    shares a card whose max_info is the sender's profile; any other card is only a claim."""
    for attachment in attachments:
        payload = attachment.payload
        if attachment.type == "contact" and isinstance(payload, ContactAttachmentPayload):
            phone = parse_vcf_info(payload.vcf_info or "").phone
            owner = payload.max_info.user_id if payload.max_info is not None else None
            return phone, phone is not None and owner == sender_id
    return None, False


def _when(milliseconds: int) -> datetime:
    # MAX stamps updates in milliseconds since the epoch.
    return datetime.fromtimestamp(milliseconds / 1000, UTC) if milliseconds > 0 else datetime.now(UTC)
