"""Turning a Telegram message or button press into a platform-free IncomingMessage.

aiogram and python-telegram-bot mirror the Bot API field names, so one converter reads both.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from common.messages import AttachmentKind, IncomingMessage

CHANNEL = "telegram"
MAX_TEXT = 100_000
_ATTACHMENTS = (
    ("sticker", AttachmentKind.STICKER),
    ("photo", AttachmentKind.PHOTO),
    ("voice", AttachmentKind.VOICE),
    ("video_note", AttachmentKind.VIDEO),
    ("video", AttachmentKind.VIDEO),
    ("animation", AttachmentKind.VIDEO),
    ("audio", AttachmentKind.VOICE),
    ("document", AttachmentKind.DOCUMENT),
    ("location", AttachmentKind.LOCATION),
    ("contact", AttachmentKind.CONTACT),
)


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)


def _attachment(message: Any) -> AttachmentKind | None:
    for field, kind in _ATTACHMENTS:
        if getattr(message, field, None):
            return kind
    return None


def from_message(message: Any, *, edited: bool = False) -> IncomingMessage | None:
    """A client's message (new or edited); None for messages with no sender (channel posts)."""
    sender = getattr(message, "from_user", None)
    if sender is None or getattr(sender, "is_bot", False):
        return None
    text = (getattr(message, "text", None) or getattr(message, "caption", None) or "")[:MAX_TEXT]
    contact = getattr(message, "contact", None)
    stamp = getattr(message, "edit_date", None) if edited else None
    message_id = f"{'edit' if edited else 'msg'}:{message.message_id}" + (
        f":{_when(stamp).timestamp():.0f}" if stamp else ""
    )
    return IncomingMessage(
        channel=CHANNEL,
        chat_id=str(message.chat.id),
        user_id=str(sender.id),
        text=text,
        at=_when(stamp or getattr(message, "date", None)),
        message_id=message_id,
        attachment=_attachment(message),
        contact_phone=getattr(contact, "phone_number", None) if contact else None,
        # Shared with the contact button, the card carries the sender's own user id: Telegram vouches
        # for the number. Anyone else's card (or none) leaves it a claim.
        contact_verified=bool(contact) and getattr(contact, "user_id", None) == sender.id,
    )


def from_callback(query: Any) -> IncomingMessage | None:
    """A pressed inline button; None when the button's message is gone."""
    message = getattr(query, "message", None)
    chat = getattr(message, "chat", None)
    if chat is None or not getattr(query, "data", None):
        return None
    return IncomingMessage(
        channel=CHANNEL,
        chat_id=str(chat.id),
        user_id=str(query.from_user.id),
        text="",
        at=datetime.now(UTC),
        message_id=f"cb:{query.id}",
        button_payload=str(query.data),
    )
