"""Reading a WhatsApp Cloud API webhook envelope: the clients' messages and the statuses of the bot's own.

An envelope is `entry[].changes[].value` with `messages` (and the senders in `contacts`) or `statuses`,
and `metadata.phone_number_id`, the business number the event belongs to. The dicts are read as they
come (pywa's update classes need a client object and cost a dozen allocations a message).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from common.messages import AttachmentKind, DeliveryReceipt, IncomingMessage

log = logging.getLogger(__name__)
CHANNEL = "whatsapp"
MAX_TEXT = 100_000
_ATTACHMENTS = {
    "image": AttachmentKind.PHOTO,
    "sticker": AttachmentKind.STICKER,
    "audio": AttachmentKind.VOICE,
    "video": AttachmentKind.VIDEO,
    "document": AttachmentKind.DOCUMENT,
    "location": AttachmentKind.LOCATION,
    "contacts": AttachmentKind.CONTACT,
    # Something WhatsApp itself cannot show through the API (a poll, a view-once photo), or an order.
    "unsupported": AttachmentKind.OTHER,
    "unknown": AttachmentKind.OTHER,
    "order": AttachmentKind.OTHER,
}
# Not a client's words: a reaction, a changed number, the "say hello" of a first open, a deleted message.
_IGNORED = frozenset({"reaction", "system", "request_welcome", "revoke"})
_INTERACTIVE_REPLIES = ("button_reply", "list_reply")


class MalformedEnvelope(ValueError):
    """The body is not a WhatsApp webhook envelope at all."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """What one webhook request carried for this business number."""

    messages: list[IncomingMessage] = field(default_factory=list)
    receipts: list[DeliveryReceipt] = field(default_factory=list)
    # Events of other business numbers served by the same app (Meta posts them all to one URL).
    foreign: int = 0


def _when(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _digits(text: Any) -> str:
    return "".join(character for character in str(text or "") if character.isdigit())


def _shared_contact(content: Mapping[str, Any], sender: str) -> tuple[str | None, bool]:
    """The number on a shared contact card and whether it is the sender's own (then WhatsApp vouches)."""
    cards = map(_mapping, _items(content.get("contacts")))
    phones = [_mapping(phone) for card in cards for phone in _items(card.get("phones"))]
    own = [p for p in phones if sender and sender in (str(p.get("wa_id") or ""), _digits(p.get("phone")))]
    chosen = own[0] if own else (phones[0] if phones else None)
    if chosen is None:
        return None, False
    number = str(chosen.get("phone") or "") or (f"+{chosen['wa_id']}" if chosen.get("wa_id") else "")
    return (number or None), bool(own)


def _content(message: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The message's type and body; an edit carries the new version of the message inside it."""
    kind = str(message.get("type") or "")
    if kind == "edit":
        inner = _mapping(_mapping(message.get("edit")).get("message"))
        return str(inner.get("type") or ""), inner
    return kind, message


def read_message(message: Mapping[str, Any], senders: Mapping[str, str]) -> IncomingMessage | None:
    """A client's message; None for what is not one (a reaction, a group's message, a flow's answer).
    `senders` maps a BSUID to the wa_id the envelope's contacts give for it."""
    if message.get("group_id"):
        return None
    kind, content = _content(message)
    if kind in _IGNORED:
        return None
    bsuid = str(message.get("from_user_id") or "")
    wa_id = str(message.get("from") or "") or senders.get(bsuid, "")
    chat_id, wamid = wa_id or bsuid, message.get("id")
    if not chat_id or not isinstance(wamid, str) or not wamid:
        return None
    text, payload, attachment = "", None, None
    if kind == "text":
        text = str(_mapping(content.get("text")).get("body") or "")
    elif kind == "interactive":
        interactive = _mapping(content.get("interactive"))
        reply_kind = str(interactive.get("type") or "")
        if reply_kind not in _INTERACTIVE_REPLIES:
            return None
        reply = _mapping(interactive.get(reply_kind))
        text, payload = str(reply.get("title") or ""), str(reply.get("id") or "") or None
    elif kind == "button":
        # A quick-reply button of a template message.
        button = _mapping(content.get("button"))
        text, payload = str(button.get("text") or ""), str(button.get("payload") or "") or None
    else:
        if kind not in _ATTACHMENTS:
            log.info("a WhatsApp message of unknown type %r is read as an attachment", kind)
        attachment = _ATTACHMENTS.get(kind, AttachmentKind.OTHER)
        text = str(_mapping(content.get(kind)).get("caption") or "")
    contact_phone, verified = _shared_contact(content, wa_id) if kind == "contacts" else (None, False)
    return IncomingMessage(
        channel=CHANNEL,
        chat_id=chat_id,
        user_id=chat_id,
        text=text[:MAX_TEXT],
        at=_when(message.get("timestamp")),
        message_id=wamid,
        attachment=attachment,
        contact_phone=contact_phone,
        button_payload=payload,
        contact_verified=verified,
        # WhatsApp delivers every message from the sender's own account: the number is theirs.
        sender_phone=f"+{wa_id}" if wa_id.isdigit() else None,
    )


def read_status(status: Mapping[str, Any]) -> DeliveryReceipt | None:
    """What WhatsApp reports about a message the bot sent: sent, delivered, read or failed (with why)."""
    wamid, state = str(status.get("id") or ""), str(status.get("status") or "")
    chat_id = str(status.get("recipient_id") or status.get("recipient_user_id") or "")
    if not wamid or not state:
        return None
    errors = [_mapping(error) for error in _items(status.get("errors"))]
    reason = None
    if errors:
        first = errors[0]
        title = first.get("title") or first.get("message") or ""
        details = _mapping(first.get("error_data")).get("details")
        reason = f"{first.get('code', '?')}: {title}"
        if details and details != title:
            reason += f" ({details})"
    return DeliveryReceipt(CHANNEL, chat_id, wamid, state, _when(status.get("timestamp")), reason)


def read_envelope(payload: Any, phone_number_id: str) -> Envelope:
    """The messages and receipts for `phone_number_id` in a parsed webhook body; a part that cannot be
    read is logged and skipped, the rest still counts."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("entry"), list):
        raise MalformedEnvelope("not a WhatsApp webhook envelope (no entry list)")
    messages: list[IncomingMessage] = []
    receipts: list[DeliveryReceipt] = []
    foreign = 0
    for entry in _items(payload.get("entry")):
        for change in _items(_mapping(entry).get("changes")):
            change = _mapping(change)
            if change.get("field") != "messages":
                continue
            value = _mapping(change.get("value"))
            if str(_mapping(value.get("metadata")).get("phone_number_id") or "") != phone_number_id:
                foreign += 1
                continue
            senders = {
                str(contact.get("user_id")): str(contact.get("wa_id"))
                for contact in map(_mapping, _items(value.get("contacts")))
                if contact.get("user_id") and contact.get("wa_id")
            }
            for raw in _items(value.get("messages")):
                try:
                    message = read_message(_mapping(raw), senders)
                except (KeyError, TypeError, ValueError):
                    log.warning("skipped an unreadable WhatsApp message", exc_info=True)
                    continue
                if message is not None:
                    messages.append(message)
            for raw in _items(value.get("statuses")):
                receipt = read_status(_mapping(raw))
                if receipt is not None:
                    receipts.append(receipt)
    if foreign:
        log.info("ignored %d WhatsApp event(s) for another phone number id", foreign)
    return Envelope(messages, receipts, foreign)
