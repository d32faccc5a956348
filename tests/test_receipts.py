"""Delivery receipts (WhatsApp's sent, delivered, read, failed) stored once each on a real SQLite file and on
PostgreSQL, shown on the conversation page over real HTTP, exported and erased with the client's data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from common.messages import DeliveryReceipt, IncomingMessage
from common.names import Delivery, Direction
from operators.passwords import hash_password
from storage.tables import clients, conversations, messages, receipts, recipients
from tests.support.webserver import always_open, serving, web_runtime
from tests.test_web_http import PASSWORDS, Site
from wiring.runtime import Runtime

NOW = datetime.now(UTC).replace(microsecond=0)
CHAT = "79135551234"


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path, database_url: str) -> Runtime:
    built = web_runtime(tmp_path, always_open(content_copy), database_url)
    built.desk_store.add_operator("anna", hash_password(PASSWORDS["anna"]), "Анна", "operator", NOW)
    return built


@pytest.fixture
def site(runtime: Runtime) -> Iterator[Site]:
    with serving(runtime) as url:
        served = Site(runtime, url)
        try:
            yield served
        finally:
            served.close()


def receipt(external_id: str, status: str, minutes: float, error: str | None = None) -> DeliveryReceipt:
    return DeliveryReceipt("whatsapp", CHAT, external_id, status, NOW + timedelta(minutes=minutes), error)


def stored(runtime: Runtime) -> list[tuple[str, str]]:
    with runtime.store.engine.connect() as connection:
        rows = connection.execute(select(receipts.c.external_id, receipts.c.status).order_by(receipts.c.id))
        return [(str(r.external_id), str(r.status)) for r in rows]


def whatsapp(runtime: Runtime, text: str, at: datetime, n: int) -> int:
    runtime.service.handle(
        IncomingMessage("whatsapp", CHAT, CHAT, text, at, f"wamid.in{n}", sender_phone=CHAT)
    )
    with runtime.store.engine.connect() as connection:
        return int(
            connection.execute(
                select(conversations.c.id)
                .where(conversations.c.chat_id == CHAT)
                .order_by(conversations.c.id.desc())
            ).first()[0]  # type: ignore[index]
        )


def test_each_report_is_stored_once_and_the_furthest_step_counts(runtime: Runtime) -> None:
    store = runtime.desk_store
    store.record_receipts([receipt("wamid.A", "sent", 0), receipt("wamid.A", "sent", 0)])
    # The messenger retries its webhook: the same reports again change nothing.
    store.record_receipts([receipt("wamid.A", "sent", 0), receipt("wamid.A", "read", 2)])
    store.record_receipts([receipt("wamid.A", "delivered", 1)])  # arrives after "read"
    store.record_receipts(
        [receipt("wamid.B", "sent", 3), receipt("wamid.B", "failed", 4, "131047: re-engagement")]
    )
    store.record_receipts([])
    assert sorted(stored(runtime)) == sorted(
        [
            ("wamid.A", "sent"),
            ("wamid.A", "read"),
            ("wamid.A", "delivered"),
            ("wamid.B", "sent"),
            ("wamid.B", "failed"),
        ]
    )
    lines = store.receipts_of([("whatsapp", CHAT)])
    assert [(line.external_id, line.status, line.error) for line in lines] == [
        ("wamid.B", "failed", "131047: re-engagement"),
        ("wamid.A", "read", None),
    ]
    assert store.receipts_of([("whatsapp", "someone-else")]) == []
    assert store.receipts_of([]) == []


def test_a_failed_report_marks_the_outbox_message_it_names(runtime: Runtime) -> None:
    conversation_id = whatsapp(runtime, "позовите оператора", NOW, 1)
    runtime.desk.reply(conversation_id, "anna", "Анна", "Добрый день")
    items = runtime.desk_store.claim_pending("whatsapp", NOW)
    mine = [item for item in items if item.reply.text == "Добрый день"]
    assert len(mine) == 1
    for item in items:
        runtime.desk_store.record_send(item.id, Delivery.SENT, [], NOW, external_id=f"wamid.out{item.id}")
    runtime.desk_store.record_receipts(
        [receipt(f"wamid.out{mine[0].id}", "failed", 1, "131026: undeliverable")]
    )
    with runtime.store.engine.connect() as connection:
        status = connection.execute(
            select(messages.c.delivery).where(messages.c.id == mine[0].id)
        ).scalar_one()
    assert status == Delivery.FAILED
    view = runtime.desk_store.conversation(conversation_id)
    assert view is not None and view.receipt_of[f"wamid.out{mine[0].id}"].status == "failed"


def test_the_conversation_page_shows_delivery_and_failures(site: Site) -> None:
    runtime = site.runtime
    conversation_id = whatsapp(runtime, "позовите оператора", NOW - timedelta(minutes=10), 1)
    runtime.desk.reply(conversation_id, "anna", "Анна", "Первый ответ")
    runtime.desk.reply(conversation_id, "anna", "Анна", "Второй ответ")
    runtime.desk.reply(conversation_id, "anna", "Анна", "Третий ответ")
    with runtime.store.engine.begin() as connection:
        rows = connection.execute(
            select(messages.c.id, messages.c.text)
            .where(messages.c.conversation_id == conversation_id, messages.c.author == "anna")
            .order_by(messages.c.id)
        ).all()
        ids = {str(r.text): int(r.id) for r in rows}
        connection.execute(
            update(messages).where(messages.c.id == ids["Первый ответ"]).values(external_id="wamid.1")
        )
        connection.execute(
            update(messages).where(messages.c.id == ids["Второй ответ"]).values(external_id="wamid.2")
        )
        # The messenger refused the third outright: the outbox marked it.
        connection.execute(
            update(messages).where(messages.c.id == ids["Третий ответ"]).values(delivery=Delivery.FAILED)
        )
    runtime.desk_store.record_receipts(
        [
            receipt("wamid.1", "sent", 0),
            receipt("wamid.1", "delivered", 1),
            receipt("wamid.2", "sent", 2),
            receipt("wamid.2", "read", 3),
            receipt("wamid.9", "failed", 4, "131047: больше 24 часов"),
        ]
    )
    page = site.sign_in("anna").page(conversation_id)
    assert page.status_code == 200
    html = page.text
    assert f'data-id="{ids["Первый ответ"]}"' in html
    first = html.split(f'data-id="{ids["Первый ответ"]}"', 1)[1].split('<div class="msg', 1)[0]
    second = html.split(f'data-id="{ids["Второй ответ"]}"', 1)[1].split('<div class="msg', 1)[0]
    third = html.split(f'data-id="{ids["Третий ответ"]}"', 1)[1].split('<div class="msg', 1)[0]
    assert 'data-receipt="delivered"' in first and "доставлено" in first
    assert 'data-receipt="read"' in second and "прочитано" in second
    assert f'data-undelivered="{ids["Третий ответ"]}"' in third and "не доставлено" in third
    card = html.split('id="receipts"', 1)[1].split("</ul>", 1)[0]
    assert "не доставлено: 131047: больше 24 часов" in card and "WhatsApp" in card
    assert card.index("не доставлено") < card.index("прочитано") < card.index("доставлено</li>")
    assert 'data-channel="whatsapp"' in html and "WhatsApp" in html


def test_receipts_are_exported_and_erased_with_the_client(runtime: Runtime) -> None:
    conversation_id = whatsapp(runtime, "позовите оператора", NOW - timedelta(days=40), 1)
    runtime.service.handle(
        IncomingMessage("whatsapp", "other", "other", "привет", NOW, "o1", sender_phone="79990001122")
    )
    runtime.desk_store.record_receipts(
        [receipt("wamid.1", "sent", 0), DeliveryReceipt("whatsapp", "other", "wamid.o", "read", NOW)]
    )
    view = runtime.desk_store.conversation(conversation_id)
    assert view is not None
    client_id = int(view.conversation.client_id)
    data = runtime.client_data.export(client_id, "admin", NOW)
    assert data is not None
    assert [(r["external_id"], r["status"]) for r in data["delivery_receipts"]] == [("wamid.1", "sent")]
    erased = runtime.client_data.forget(client_id, "admin", NOW)
    assert erased is not None and erased.receipts == 1 and "1 receipts" in erased.describe()
    assert stored(runtime) == [("wamid.o", "read")], "another client's receipts stay"


def test_retention_removes_old_receipts(runtime: Runtime) -> None:
    whatsapp(runtime, "привет", NOW - timedelta(days=40), 1)
    runtime.desk_store.record_receipts(
        [
            DeliveryReceipt("whatsapp", CHAT, "wamid.old", "read", NOW - timedelta(days=40)),
            DeliveryReceipt("whatsapp", "live", "wamid.new", "read", NOW),
            DeliveryReceipt("whatsapp", "live", "wamid.aged", "read", NOW - timedelta(days=35)),
        ]
    )
    runtime.service.handle(IncomingMessage("whatsapp", "live", "live", "привет", NOW, "l1"))
    erased = runtime.client_data.purge(NOW - timedelta(days=30), "retention", NOW)
    assert erased.conversations == 1 and erased.receipts == 2
    assert stored(runtime) == [("wamid.new", "read")]
    with runtime.store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(receipts)).scalar_one() == 1
        left = connection.execute(
            select(func.count()).select_from(messages).where(messages.c.direction == Direction.IN)
        )
        assert left.scalar_one() == 1


def test_retention_erases_the_receipts_of_many_chats_at_once(runtime: Runtime) -> None:
    """More chats than one statement takes (and than SQLite's expression depth would allow in one)."""
    old = NOW - timedelta(days=40)
    chats = [f"c{n}" for n in range(450)]
    with runtime.store.engine.begin() as connection:
        client_id = connection.execute(
            insert(clients).values(created_at=old, display_name="").returning(clients.c.id)
        ).scalar_one()
        connection.execute(
            insert(conversations),
            [
                {
                    "client_id": client_id,
                    "channel": "whatsapp",
                    "chat_id": chat,
                    "created_at": old,
                    "updated_at": old,
                    "state_json": "{}",
                }
                for chat in chats
            ],
        )
    # Recent reports about messages in old chats: only the chats' end takes them.
    runtime.desk_store.record_receipts(
        [DeliveryReceipt("whatsapp", chat, f"wamid.{chat}", "read", NOW) for chat in chats]
    )
    erased = runtime.client_data.purge(NOW - timedelta(days=30), "retention", NOW)
    assert erased.conversations == 450 and erased.receipts == 450 and erased.clients == 1
    assert stored(runtime) == []


def _campaign_recipient(runtime: Runtime, external_id: str, status: str = "sent") -> int:
    with runtime.store.engine.begin() as connection:
        return int(
            connection.execute(
                insert(recipients)
                .values(
                    campaign="missed_call",
                    channel="whatsapp",
                    chat_id=external_id,
                    persona="neutral",
                    time_zone="",
                    status=status,
                    reason="",
                    event_id="",
                    steps_sent=1,
                    attempt=1,
                    external_id=external_id,
                    queued_at=NOW,
                    sent_at=NOW,
                )
                .returning(recipients.c.id)
            ).scalar_one()
        )


def _funnel(runtime: Runtime, recipient: int) -> tuple[str, bool, bool, str]:
    with runtime.store.engine.connect() as connection:
        row = connection.execute(select(recipients).where(recipients.c.id == recipient)).one()
    return str(row.status), row.delivered_at is not None, row.read_at is not None, str(row.reason)


def test_receipts_move_a_campaign_recipient_forward_only(runtime: Runtime) -> None:
    walked = _campaign_recipient(runtime, "wamid.c1")
    replied = _campaign_recipient(runtime, "wamid.c2", status="replied")
    lost = _campaign_recipient(runtime, "wamid.c3")
    runtime.desk_store.record_receipts([receipt("wamid.c1", "delivered", 1), receipt("wamid.c2", "read", 1)])
    assert _funnel(runtime, walked) == ("delivered", True, False, "")
    runtime.desk_store.record_receipts([receipt("wamid.c1", "read", 2), receipt("wamid.c1", "delivered", 3)])
    assert _funnel(runtime, walked) == ("read", True, True, "")
    # A reply came first: a late "read" does not take the recipient back down the funnel.
    assert _funnel(runtime, replied)[0] == "replied"
    runtime.desk_store.record_receipts([receipt("wamid.c3", "failed", 1, "131026: undeliverable")])
    assert _funnel(runtime, lost) == ("failed", False, False, "131026: undeliverable")
