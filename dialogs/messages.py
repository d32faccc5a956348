"""The platform-free messages that adapters hand to the engine and get back from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


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
