"""Turning a VK community event (Bots Long Poll or Callback API, API 5.199) into an IncomingMessage.

Events are read as plain JSON: a field VK adds or leaves out never costs a client's message, and no model
is built for each of thousands of events a second.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.channels.webhook import Inbound
from common.messages import AttachmentKind, IncomingMessage

CHANNEL = "vk"
MAX_TEXT = 100_000
# Our buttons carry {"tb": <the engine's payload>}; anything else in a payload is not ours.
PAYLOAD_KEY = "tb"
START_TEXT = "/start"
# Peers from this id on are group chats: a customer-service dialog is one client and the community.
FIRST_CHAT_PEER = 2_000_000_000
_ATTACHMENTS = {
    "photo": AttachmentKind.PHOTO,
    "sticker": AttachmentKind.STICKER,
    "graffiti": AttachmentKind.STICKER,
    "audio_message": AttachmentKind.VOICE,
    "audio": AttachmentKind.VOICE,
    "video": AttachmentKind.VIDEO,
    "doc": AttachmentKind.DOCUMENT,
}


def read_update(update: Mapping[str, Any]) -> Inbound | None:
    """A client's message or button press; None for events that are not one (or not a client's)."""
    kind, event = update.get("type"), update.get("object")
    if not isinstance(event, Mapping):
        return None
    if kind == "message_new":
        message = event.get("message")
        return _from_message(message, edited=False) if isinstance(message, Mapping) else None
    if kind == "message_edit":
        return _from_message(event, edited=True)
    if kind == "message_event":
        return _from_button(event)
    return None


def permission_change(update: Mapping[str, Any]) -> tuple[str, bool] | None:
    """(user id, allowed) for message_allow and message_deny: the client opened or closed the door."""
    kind, event = update.get("type"), update.get("object")
    if kind not in ("message_allow", "message_deny") or not isinstance(event, Mapping):
        return None
    return str(event.get("user_id", "")), kind == "message_allow"


def lacks_callback_buttons(update: Mapping[str, Any]) -> str | None:
    """The peer of a message whose app cannot show callback buttons (client_info says so), else None."""
    event = update.get("object")
    if update.get("type") != "message_new" or not isinstance(event, Mapping):
        return None
    info, message = event.get("client_info"), event.get("message")
    if not isinstance(info, Mapping) or not isinstance(message, Mapping):
        return None
    actions = info.get("button_actions")
    if isinstance(actions, list) and "callback" not in actions:
        return str(message.get("peer_id"))
    return None


def callback_id(event_id: str, user_id: int, peer_id: int) -> str:
    """What messages.sendMessageEventAnswer needs, in the one string the gateway hands back."""
    return f"{event_id}:{user_id}:{peer_id}"


def parse_callback_id(value: str) -> tuple[str, int, int]:
    """(event_id, user_id, peer_id) from callback_id(); ValueError when it is not one."""
    event_id, user_id, peer_id = value.rsplit(":", 2)
    return event_id, int(user_id), int(peer_id)


def _client_peer(message: Mapping[str, Any]) -> tuple[int, int] | None:
    """(peer, sender) of a client's own message in a dialog with the community."""
    peer, sender = message.get("peer_id"), message.get("from_id")
    if not isinstance(peer, int) or not isinstance(sender, int) or message.get("out"):
        return None
    # A community's own messages (from_id < 0) and group chats are not a client's dialog.
    if sender <= 0 or not 0 < peer < FIRST_CHAT_PEER:
        return None
    return peer, sender


def _from_message(message: Mapping[str, Any], *, edited: bool) -> Inbound | None:
    who = _client_peer(message)
    number = message.get("conversation_message_id") or message.get("id")
    if who is None or not isinstance(number, int):
        return None
    peer, sender = who
    text = str(message.get("text") or "")[:MAX_TEXT]
    payload = _payload(message.get("payload"))
    pressed = payload.get(PAYLOAD_KEY) if isinstance(payload.get(PAYLOAD_KEY), str) else None
    if payload.get("command") == "start":
        # The "Начать" button of a new dialog is Telegram's /start; a vk.me link's ?ref= is its payload.
        text = f"{START_TEXT} {message.get('ref') or ''}".strip()
    elif pressed is not None:
        # A text button (for apps without callback buttons) sends its label as text: only the payload counts.
        text = ""
    stamp = message.get("update_time") if edited else None
    return Inbound(
        IncomingMessage(
            channel=CHANNEL,
            chat_id=str(peer),
            user_id=str(sender),
            text=text,
            at=_when(stamp or message.get("date")),
            message_id=f"edit:{number}:{stamp or 0}" if edited else f"msg:{number}",
            attachment=_attachment(message),
            button_payload=pressed,
        )
    )


def _from_button(event: Mapping[str, Any]) -> Inbound | None:
    peer, user, event_id = event.get("peer_id"), event.get("user_id"), event.get("event_id")
    if not isinstance(peer, int) or not isinstance(user, int) or not isinstance(event_id, str):
        return None
    payload = _payload(event.get("payload"))
    pressed = payload.get(PAYLOAD_KEY)
    if not isinstance(pressed, str) or not 0 < peer < FIRST_CHAT_PEER:
        return None
    message = IncomingMessage(
        channel=CHANNEL,
        chat_id=str(peer),
        user_id=str(user),
        text="",
        at=datetime.now(UTC),
        message_id=f"cb:{event_id}",
        button_payload=pressed,
    )
    return Inbound(message, callback_id(event_id, user, peer))


def _payload(value: Any) -> Mapping[str, Any]:
    """A button's payload: an object in message_event, a JSON string in message_new."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _attachment(message: Mapping[str, Any]) -> AttachmentKind | None:
    if message.get("geo"):
        return AttachmentKind.LOCATION
    attachments = message.get("attachments")
    if isinstance(attachments, list) and attachments:
        first = attachments[0]
        kind = first.get("type") if isinstance(first, Mapping) else None
        return _ATTACHMENTS.get(str(kind), AttachmentKind.OTHER)
    if message.get("fwd_messages") and not message.get("text"):
        # Only forwarded messages: nothing of the client's own to read.
        return AttachmentKind.OTHER
    return None


def _when(value: Any) -> datetime:
    if isinstance(value, int | float) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return datetime.now(UTC)
