"""Who is the same client: a typed contract or phone ties no one; a phone Telegram vouches for, or an
operator's audited merge, does. Over real HTTP (uvicorn), the real CLI and the Bot API stand-in, on a
real SQLite file and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from common.messages import IncomingMessage
from operators.desk import DeskError
from operators.passwords import hash_password
from storage.identity import normal_phone, verified
from storage.tables import conversations
from tests.support.botapi import BotApiStandin
from tests.support.browser import chromium
from tests.support.cli import tonebot
from tests.support.webserver import always_open, serving, web_runtime
from tests.test_telegram_standin import aiogram_polling
from tests.test_web_http import PASSWORDS, Site, Visitor
from wiring.runtime import Runtime

CLAIMED = "заявлено клиентом, не проверено"
# Visitor A's own details; visitor B then claims A's contract number.
CONTRACT = "1234567"
A_MESSAGES = (
    "Здравствуйте, не работает интернет. Договор 1234567, мой телефон +7 913 555-12-34, "
    "почта zoya.kirillova@example.ru",
    "адрес: ул. Пржевальского, д. 17, кв. 42",
    "позовите оператора",
)
A_SECRETS = (
    "zoya.kirillova@example.ru",
    "555-12-34",
    "+79135551234",
    "Пржевальского",
    "не работает интернет",
)
B_MESSAGE = "позовите оператора, договор 1234567"


@pytest.fixture(scope="module")
def anna_hash() -> str:
    return hash_password(PASSWORDS["anna"])


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path, database_url: str, anna_hash: str) -> Runtime:
    runtime = web_runtime(tmp_path, always_open(content_copy), database_url)
    runtime.desk_store.add_operator("anna", anna_hash, "Анна", "operator", datetime.now(UTC))
    return runtime


@pytest.fixture
def site(runtime: Runtime) -> Iterator[Site]:
    with serving(runtime) as url:
        served = Site(runtime, url)
        try:
            yield served
        finally:
            served.close()


def client_of(runtime: Runtime, conversation_id: int) -> int:
    view = runtime.desk_store.conversation(conversation_id)
    assert view is not None
    return int(view.conversation.client_id)


def client_conversation(runtime: Runtime, client_id: int) -> int:
    with runtime.store.engine.connect() as connection:
        return int(
            connection.execute(
                select(conversations.c.id).where(conversations.c.client_id == client_id).limit(1)
            ).scalar_one()
        )


def two_visitors(site: Site) -> tuple[Visitor, Visitor]:
    a = site.visitor()
    for text in A_MESSAGES:
        a.say(text)
    b = site.visitor()
    b.say(B_MESSAGE)
    assert site.runtime.desk_store.conversation(b.conversation_id) is not None
    return a, b


def test_a_claimed_contract_shows_nobody_elses_data_until_an_audited_merge(
    site: Site, database_url: str
) -> None:
    a, b = two_visitors(site)
    anna = site.sign_in("anna")
    page = anna.page(b.conversation_id)
    assert page.status_code == 200
    assert B_MESSAGE in page.text and CONTRACT in page.text
    for secret in (*A_SECRETS, a.id, b.id):
        assert secret not in page.text, secret
    assert CLAIMED in page.text and 'data-claimed="contract"' in page.text
    # A's own page marks A's details as claims too: nobody checked them.
    own = anna.page(a.conversation_id).text
    assert 'data-claimed="phone"' in own and 'data-claimed="email"' in own
    assert B_MESSAGE not in own

    keep, absorb = client_of(site.runtime, a.conversation_id), client_of(site.runtime, b.conversation_id)
    merged = tonebot("clients", "merge", str(keep), str(absorb), "--by", "anna", url=database_url)
    assert merged.returncode == 0, merged.stderr
    assert f"client {absorb} merged into client {keep}" in merged.stdout

    page = anna.page(b.conversation_id)
    assert page.status_code == 200
    for secret in A_SECRETS:
        assert secret in page.text, secret
    # The visitors' cookies are credentials: never on an operator's page, merged or not.
    assert a.id not in page.text and b.id not in page.text
    for conversation_id in (a.conversation_id, b.conversation_id):
        trail = site.runtime.desk_store.audit(conversation_id)
        merges = [row for row in trail if row.action == "merge"]
        assert [row.operator for row in merges] == ["anna"], conversation_id
        assert f"client {absorb} merged into client {keep}" in merges[0].detail
        assert "cli:" in merges[0].detail


@pytest.mark.browser
def test_the_operator_sees_the_claim_marked_and_nobody_elses_data_in_chromium(site: Site) -> None:
    a, b = two_visitors(site)
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{site.url}/console/login")
        page.fill("input[name=name]", "anna")
        page.fill("input[name=password]", PASSWORDS["anna"])
        page.click("button[type=submit]")
        page.goto(f"{site.url}/console/conversations/{b.conversation_id}")
        expect(page.locator("dd[data-detail=contract]")).to_have_text(CONTRACT)
        expect(page.locator("dd[data-claimed=contract]")).to_be_visible()
        expect(page.locator("dd[data-claimed=contract]")).to_have_text(CLAIMED)
        shown = page.locator("main").inner_text()
        assert B_MESSAGE in shown
        for secret in (*A_SECRETS, a.id, b.id):
            assert secret not in shown, secret


def test_a_merge_needs_an_operator_and_two_real_clients(runtime: Runtime, database_url: str) -> None:
    at = datetime.now(UTC)
    for chat in ("first", "second"):
        runtime.service.handle(IncomingMessage("web", chat, chat, B_MESSAGE, at, "m1"))
    with runtime.store.engine.connect() as connection:
        first, second = [
            int(row.client_id)
            for row in connection.execute(select(conversations.c.client_id).order_by(conversations.c.id))
        ]
    with pytest.raises(LookupError, match="no operator"):
        runtime.desk_store.merge_clients(first, second, "nobody", at)
    with pytest.raises(ValueError, match="itself"):
        runtime.desk_store.merge_clients(first, first, "anna", at)
    with pytest.raises(LookupError, match="no client"):
        runtime.desk_store.merge_clients(first, 999_999, "anna", at)
    with pytest.raises(DeskError, match="no operator"):
        runtime.desk.merge_clients(first, second, "nobody")
    refused = tonebot("clients", "merge", str(first), str(second), "--by", "nobody", url=database_url)
    assert refused.returncode == 1 and "no operator 'nobody'" in refused.stderr
    assert "Traceback" not in refused.stderr
    with runtime.store.engine.connect() as connection:
        owners = {int(row.client_id) for row in connection.execute(select(conversations.c.client_id))}
    assert owners == {first, second}
    merged = runtime.desk.merge_clients(first, second, "anna")
    assert (merged.conversations, merged.identities) == (1, 1)
    trail = runtime.desk_store.audit(client_conversation(runtime, first))
    assert [(row.operator, row.action) for row in trail] == [("anna", "merge")]
    assert "via console" in trail[0].detail


def test_the_web_chat_cannot_claim_a_verified_contact(site: Site) -> None:
    visitor = site.visitor()
    response = visitor.post(
        {"id": "forged", "text": "+79135551234", "contact_phone": "+79135551234", "contact_verified": True}
    )
    assert response.status_code == 202
    with site.runtime.store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(verified)).scalar_one() == 0


def test_a_message_stored_before_the_flag_existed_reads_as_a_claim() -> None:
    old = '{"channel":"telegram","chat_id":"1","user_id":"1","text":"","at":"2026-11-23T09:00:00+00:00",'
    old += '"message_id":"msg:1","attachment":"contact","contact_phone":"+79135551234","button_payload":null}'
    assert IncomingMessage.from_json(old).contact_verified is False


def test_phone_numbers_compare_in_any_spelling() -> None:
    assert normal_phone("+7 913 555-12-34") == normal_phone("79135551234") == "+79135551234"
    assert normal_phone("8 (913) 555-12-34") == "+79135551234"
    assert normal_phone("1234567") == "+1234567"
    assert normal_phone("zoya@example.ru") is None and normal_phone("12") is None


def verified_phones(runtime: Runtime, chat: int) -> list[str]:
    with runtime.store.engine.connect() as connection:
        client = connection.execute(
            select(conversations.c.client_id).where(
                conversations.c.channel == "telegram", conversations.c.chat_id == str(chat)
            )
        ).scalar_one()
        rows = connection.execute(select(verified.c.value).where(verified.c.client_id == client))
        return [str(row.value) for row in rows]


def telegram_conversation(runtime: Runtime, chat: int) -> int:
    with runtime.store.engine.connect() as connection:
        return int(
            connection.execute(
                select(conversations.c.id).where(
                    conversations.c.channel == "telegram", conversations.c.chat_id == str(chat)
                )
            ).scalar_one()
        )


@pytest.mark.anyio
async def test_only_a_contact_telegram_vouches_for_links_accounts(api: BotApiStandin, site: Site) -> None:
    runtime = site.runtime
    owner, card_of_owner, card_without_id, typed, second_account = 7001, 7002, 7003, 7004, 7005
    async with aiogram_polling(api, runtime.service):
        api.add_message(owner, "не работает интернет, договор 7654321")
        await api.wait_for_sent(1, 10, chat_id=owner, method="sendMessage")
        api.add_contact(owner, "+79135551234")
        api.add_contact(owner, "+79135551234")  # shared twice: one identity
        await api.wait_for_sent(3, 10, chat_id=owner, method="sendMessage")
        # Someone else's card: Telegram names its owner, who is not the sender.
        update = api.add_contact(card_of_owner, "+79135551234")
        update["message"]["contact"]["user_id"] = owner
        api.add_contact(card_without_id, "+79135551234", own=False)
        api.add_message(typed, "мой телефон +7 913 555-12-34")
        # The same person on a second account shares it with the button (Telegram writes no "+").
        api.add_contact(second_account, "79135551234")
        for chat in (card_of_owner, card_without_id, typed, second_account):
            await api.wait_for_sent(1, 10, chat_id=chat, method="sendMessage")
        api.add_message(second_account, "позовите оператора")  # so that the console shows it
        await api.wait_for_sent(2, 10, chat_id=second_account, method="sendMessage")

    assert verified_phones(runtime, owner) == ["+79135551234"]
    assert verified_phones(runtime, second_account) == ["+79135551234"]
    for chat in (card_of_owner, card_without_id, typed):
        assert verified_phones(runtime, chat) == [], chat
        view = runtime.desk_store.conversation(telegram_conversation(runtime, chat))
        assert view is not None
        assert all("7654321" not in row.text for row in view.history), chat
        assert {i.external_id for i in view.identities} == {str(chat)}
        assert "phone" in view.claimed

    linked = runtime.desk_store.conversation(telegram_conversation(runtime, second_account))
    assert linked is not None
    assert {i.external_id for i in linked.identities} == {str(owner), str(second_account)}
    assert any("7654321" in row.text for row in linked.history)
    assert "phone" in linked.verified_details and "phone" not in linked.claimed
    anna = site.sign_in("anna")
    page = anna.page(telegram_conversation(runtime, second_account)).text
    assert 'data-verified="phone"' in page and "подтверждён контактом Telegram" in page
    assert 'data-claimed="contract"' in page

    owner_client = client_of(runtime, telegram_conversation(runtime, owner))
    exported = runtime.client_data.export(owner_client, "anna", datetime.now(UTC))
    assert exported is not None
    assert [row["value"] for row in exported["verified_identities"]] == ["+79135551234"]
    assert runtime.client_data.forget(owner_client, "anna", datetime.now(UTC)) is not None
    assert verified_phones(runtime, second_account) == ["+79135551234"]
    with runtime.store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(verified)).scalar_one() == 1
