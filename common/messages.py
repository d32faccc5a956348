"""The platform-free messages that adapters hand to the engine and get back from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import orjson


class AttachmentKind(StrEnum):
    """Kinds of non-text content a client can send."""

    STICKER = "sticker"
    PHOTO = "photo"
    VOICE = "voice"
    VIDEO = "video"
    DOCUMENT = "document"
    CONTACT = "contact"
    LOCATION = "location"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """What a client sent, stripped of everything platform-specific."""

    channel: str
    chat_id: str
    user_id: str
    text: str
    at: datetime
    message_id: str = ""
    attachment: AttachmentKind | None = None
    # A shared contact's phone number, or the payload of a pressed button.
    contact_phone: str | None = None
    button_payload: str | None = None
    # The messenger vouches that the shared contact is the sender's own number (Telegram: the contact's
    # user_id is the sender's); a typed number, or someone else's card, is only a claim.
    contact_verified: bool = False
    # The number of the sender's own account, vouched for by the messenger itself on every message
    # (WhatsApp's wa_id); None where the messenger does not say (Telegram, VK, MAX, the web chat).
    sender_phone: str | None = None

    def to_json(self) -> str:
        """The message as JSON, to be stored and run again by any worker."""
        data = {
            "channel": self.channel,
            "chat_id": self.chat_id,
            "user_id": self.user_id,
            "text": self.text,
            "at": self.at.isoformat(),
            "message_id": self.message_id,
            "attachment": self.attachment.value if self.attachment else None,
            "contact_phone": self.contact_phone,
            "button_payload": self.button_payload,
            "contact_verified": self.contact_verified,
        }
        if self.sender_phone:
            data["sender_phone"] = self.sender_phone
        # orjson: every incoming message is stored with this (the standard encoder costs ~5x as much).
        return orjson.dumps(data).decode()

    @classmethod
    def from_json(cls, text: str) -> IncomingMessage:
        """Rebuild a message stored with to_json."""
        data = orjson.loads(text)
        data["at"] = datetime.fromisoformat(data["at"])
        data["attachment"] = AttachmentKind(data["attachment"]) if data.get("attachment") else None
        return cls(**data)


@dataclass(frozen=True, slots=True)
class Button:
    """A reply button: the label the client sees and the payload sent back when pressed."""

    text: str
    payload: str


@dataclass(frozen=True, slots=True)
class Reply:
    """One message from the bot."""

    text: str
    buttons: tuple[Button, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    """What a messenger reported about a message the bot sent (WhatsApp: sent, delivered, read, failed)."""

    channel: str
    chat_id: str
    # The messenger's id of the sent message (WhatsApp's wamid).
    external_id: str
    status: str
    at: datetime
    # The messenger's reason for a failure ("131047: more than 24 hours since the client wrote").
    error: str | None = None
