"""Reading WhatsApp webhook envelopes: the kinds of messages a client sends, and what is not a message."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.whatsapp.inbound import MalformedEnvelope, read_envelope
from common.messages import AttachmentKind

PHONE_ID = "106540352242922"
WA_ID = "79130000001"
BSUID = "RU.123456789"


def envelope(
    *messages: dict[str, Any], statuses: list[dict[str, Any]] | None = None, phone_id: str = PHONE_ID
) -> Any:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_id},
        "contacts": [{"profile": {"name": "Клиент"}, "wa_id": WA_ID, "user_id": BSUID}],
    }
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = statuses
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": value}]}],
    }


def message(kind: str, content: Any, **extra: Any) -> dict[str, Any]:
    return {
        "from": WA_ID,
        "id": f"wamid.{kind}",
        "timestamp": "1764000000",
        "type": kind,
        kind: content,
        **extra,
    }


def test_a_text_message() -> None:
    read = read_envelope(envelope(message("text", {"body": "Здравствуйте"})), PHONE_ID)
    (incoming,) = read.messages
    assert (incoming.channel, incoming.chat_id, incoming.user_id, incoming.text) == (
        "whatsapp",
        WA_ID,
        WA_ID,
        "Здравствуйте",
    )
    assert incoming.at == datetime.fromtimestamp(1764000000, UTC)
    assert incoming.message_id == "wamid.text" and incoming.sender_phone == f"+{WA_ID}"
    assert incoming.attachment is None and incoming.button_payload is None


def test_button_list_and_template_replies_carry_their_payload() -> None:
    read = read_envelope(
        envelope(
            message(
                "interactive",
                {"type": "button_reply", "button_reply": {"id": "solved", "title": "Да, помогло"}},
            ),
            message("interactive", {"type": "list_reply", "list_reply": {"id": "rate:5", "title": "5"}}),
            message("button", {"payload": "stop_ads", "text": "СТОП"}),
        ),
        PHONE_ID,
    )
    assert [(m.button_payload, m.text) for m in read.messages] == [
        ("solved", "Да, помогло"),
        ("rate:5", "5"),
        ("stop_ads", "СТОП"),
    ]


def test_an_edited_message_is_read_in_its_new_wording() -> None:
    edit = {
        "from": WA_ID,
        "id": "wamid.EDIT",
        "timestamp": "1764000100",
        "type": "edit",
        "edit": {
            "original_message_id": "wamid.text",
            "message": {"type": "text", "text": {"body": "договор 7654321"}},
        },
    }
    (incoming,) = read_envelope(envelope(edit), PHONE_ID).messages
    assert (incoming.text, incoming.message_id) == ("договор 7654321", "wamid.EDIT")


def test_a_sender_known_only_by_bsuid_is_answered_there_without_a_vouched_number() -> None:
    hidden = {
        "from_user_id": BSUID,
        "id": "wamid.B",
        "timestamp": "1764000000",
        "type": "text",
        "text": {"body": "?"},
    }
    value = envelope(hidden)
    value["entry"][0]["changes"][0]["value"]["contacts"] = [{"profile": {"name": "Клиент"}, "user_id": BSUID}]
    (incoming,) = read_envelope(value, PHONE_ID).messages
    assert (incoming.chat_id, incoming.sender_phone) == (BSUID, None)
    # With the wa_id in the contacts, the chat is the wa_id.
    (known,) = read_envelope(envelope(hidden), PHONE_ID).messages
    assert (known.chat_id, known.sender_phone) == (WA_ID, f"+{WA_ID}")


def test_what_is_no_clients_message_is_left_out() -> None:
    read = read_envelope(
        envelope(
            message("reaction", {"message_id": "wamid.OUT", "emoji": "👍"}),
            message("system", {"body": "changed number", "type": "user_changed_number"}),
            message(
                "interactive", {"type": "nfm_reply", "nfm_reply": {"name": "flow", "response_json": "{}"}}
            ),
            message("text", {"body": "в группе"}, group_id="GROUP1"),
            {"id": "wamid.NOSENDER", "timestamp": "1764000000", "type": "text", "text": {"body": "?"}},
        ),
        PHONE_ID,
    )
    assert read.messages == []


def test_unknown_and_unsupported_types_are_attachments_the_bot_can_answer() -> None:
    read = read_envelope(
        envelope(message("unsupported", {"type": "poll"}), message("hologram", {})), PHONE_ID
    )
    assert [m.attachment for m in read.messages] == [AttachmentKind.OTHER, AttachmentKind.OTHER]


def test_an_unreadable_message_does_not_cost_the_others() -> None:
    broken = message("text", {"body": "x"}, timestamp={"not": "a time"})
    broken["id"] = ["not", "an", "id"]
    read = read_envelope(envelope(broken, message("text", {"body": "второе"})), PHONE_ID)
    assert [m.text for m in read.messages] == ["второе"]


def test_events_of_another_number_and_other_fields_are_ignored() -> None:
    read = read_envelope(envelope(message("text", {"body": "?"}), phone_id="999"), PHONE_ID)
    assert (read.messages, read.foreign) == ([], 1)
    other_field = envelope(message("text", {"body": "?"}))
    other_field["entry"][0]["changes"][0]["field"] = "message_template_status_update"
    assert read_envelope(other_field, PHONE_ID).messages == []


@pytest.mark.parametrize("body", [[], "text", {"object": "whatsapp_business_account"}, {"entry": "x"}])
def test_a_body_that_is_no_envelope_is_refused(body: Any) -> None:
    with pytest.raises(MalformedEnvelope):
        read_envelope(body, PHONE_ID)


def test_statuses_become_receipts_with_the_reason_of_a_failure() -> None:
    failed = {
        "id": "wamid.OUT",
        "status": "failed",
        "timestamp": "1764000200",
        "recipient_id": WA_ID,
        "errors": [{"code": 131026, "title": "Message undeliverable", "error_data": {"details": "Old app."}}],
    }
    read = read_envelope(envelope(statuses=[{**failed, "status": "sent", "errors": []}, failed]), PHONE_ID)
    assert [(r.chat_id, r.external_id, r.status, r.error) for r in read.receipts] == [
        (WA_ID, "wamid.OUT", "sent", None),
        (WA_ID, "wamid.OUT", "failed", "131026: Message undeliverable (Old app.)"),
    ]
    assert read.receipts[0].at == datetime.fromtimestamp(1764000200, UTC)
