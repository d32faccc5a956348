"""The console for a client across channels, over real HTTP (uvicorn, httpx) and in a real headless Chromium:
all the person's channels on the card, one history, where the reply will go, WhatsApp's window refused with
a reason, and a team lead's audited merge with a confirmation step (the one permission check first)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from common.messages import AttachmentKind, IncomingMessage
from common.names import Delivery
from operators.passwords import hash_password
from storage.tables import actions, conversations, messages
from tests.support.browser import chromium
from tests.support.webserver import always_open, serving, web_runtime
from tests.test_web_http import Operator, Site
from web.console import MERGE_REFUSED
from wiring.runtime import Runtime

NOW = datetime.now(UTC).replace(microsecond=0)
PHONE = "+79135551234"
ACCOUNTS = {"anna": "operator", "lena": "lead", "root": "admin"}
PASSWORD = "pass-{}-12345"
CLOSED = (
    "Клиент писал в WhatsApp больше 24 часов назад: WhatsApp разрешает написать только шаблоном. "
    "Ответ не отправлен."
)


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    return {name: hash_password(PASSWORD.format(name)) for name in ACCOUNTS}


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path, hashes: dict[str, str]) -> Runtime:
    built = web_runtime(tmp_path, always_open(content_copy))
    for name, role in ACCOUNTS.items():
        built.desk_store.add_operator(name, hashes[name], name.title(), role, NOW)
    return built


@pytest.fixture
def site(runtime: Runtime) -> Iterator[Site]:
    with serving(runtime) as url:
        served = Site(runtime, url)
        try:
            yield served
        finally:
            served.close()


def sign_in(site: Site, name: str) -> Operator:
    return site.sign_in(name, PASSWORD.format(name))


_count = iter(range(1_000_000))


def say(site: Site, channel: str, user: str, text: str, at: datetime, **extra: object) -> None:
    site.runtime.service.handle(
        IncomingMessage(channel, user, user, text, at, f"{channel}-{user}-{next(_count)}", **extra)  # type: ignore[arg-type]
    )


def person_in_telegram_and_vk(site: Site) -> tuple[int, int]:
    """A client handed to people in Telegram who then wrote in VK, tied by a verified phone."""
    say(site, "telegram", "501", "не работает интернет, позовите оператора", NOW - timedelta(hours=1))
    say(
        site,
        "telegram",
        "501",
        "",
        NOW - timedelta(minutes=59),
        attachment=AttachmentKind.CONTACT,
        contact_phone=PHONE,
        contact_verified=True,
    )
    say(site, "vk", "7001", "я тут, в вк", NOW - timedelta(minutes=3))
    site.runtime.desk_store.verify_identity("vk", "7001", PHONE, "crm", NOW)
    return site.conversation_id("telegram", "501"), site.conversation_id("vk", "7001")


def client_of(site: Site, conversation_id: int) -> int:
    view = site.runtime.desk_store.conversation(conversation_id)
    assert view is not None
    return int(view.conversation.client_id)


def owners(site: Site) -> set[int]:
    with site.runtime.store.engine.connect() as connection:
        return {int(r[0]) for r in connection.execute(select(conversations.c.client_id))}


def audit(site: Site, action: str) -> list[tuple[str, int | None, str]]:
    with site.runtime.store.engine.connect() as connection:
        rows = connection.execute(select(actions).where(actions.c.action == action).order_by(actions.c.id))
        return [(str(r.operator), r.conversation_id, str(r.detail)) for r in rows]


# --- over HTTP ------------------------------------------------------------------------------------------


def test_the_card_lists_every_channel_and_the_form_says_where_the_reply_goes(site: Site) -> None:
    tg, _vk = person_in_telegram_and_vk(site)
    page = sign_in(site, "anna").page(tg)
    assert page.status_code == 200
    html = page.text
    channels = html.split('id="channels"', 1)[1].split("</ul>", 1)[0]
    assert "Telegram: 501" in channels and "ВКонтакте: 7001" in channels
    assert "номер подтверждён контактом Telegram" in channels
    # One line for the phone, with everyone who vouched for it.
    assert f"телефон {PHONE} · подтверждён контактом Telegram, компанией (crm)" in channels
    assert 'data-channel="vk"' in html.split('class="history"', 1)[1]
    route = html.split('id="reply-route"', 1)[1].split("</div>", 1)[0]
    assert "Ответ уйдёт в ВКонтакте: клиент последним писал туда." in route


def test_a_reply_outside_whatsapps_window_is_refused_on_the_page(site: Site) -> None:
    say(
        site,
        "whatsapp",
        "79135551234",
        "позовите оператора",
        NOW - timedelta(hours=25),
        sender_phone="79135551234",
    )
    wa = site.conversation_id("whatsapp", "79135551234")
    anna = sign_in(site, "anna")
    form = anna.page(wa).text.split('id="reply-route"', 1)[1].split("</div>", 1)[0]
    assert 'data-closed="1"' in anna.page(wa).text
    assert "больше 24 часов назад" in form and "Ответ не отправится." in form
    refused = anna.act(wa, "reply", text="Добрый день")
    assert refused.status_code == 409
    assert CLOSED in refused.text
    with site.runtime.store.engine.connect() as connection:
        waiting = connection.execute(
            select(func.count()).select_from(messages).where(messages.c.delivery == Delivery.PENDING)
        ).scalar_one()
    assert waiting == 0


def test_only_team_leads_and_admins_merge_and_only_after_confirming(site: Site) -> None:
    tg, vk = person_in_telegram_and_vk(site)
    say(site, "max", "m1", "привет", NOW)
    other = client_of(site, site.conversation_id("max", "m1"))
    keep = client_of(site, tg)
    form = {"other": str(other), "reason": "тот же договор, подтвердил по телефону"}

    anna = sign_in(site, "anna")
    assert 'id="merge-form"' not in anna.page(tg).text
    refused = anna.act(tg, "merge", **form, confirm="yes", keep=str(keep))
    assert refused.status_code == 403 and MERGE_REFUSED in refused.text
    assert ("anna", tg, "merge") in [(op, cid, detail) for op, cid, detail in audit(site, "refused")]

    lena = sign_in(site, "lena")
    assert 'id="merge-form"' in lena.page(tg).text
    # The one permission check comes first: a conversation never handed to people is refused as such.
    bot_only = site.conversation_id("max", "m1")
    denied = lena.act(bot_only, "merge", **form)
    assert denied.status_code == 403 and "не передавали людям" in denied.text and "m1" not in denied.text
    assert lena.act(tg, "merge", csrf="forged-token-1234", **form).status_code == 403
    for bad, why in (
        ({"other": "abc", "reason": "x"}, "Укажите номер другого клиента"),
        ({"other": str(keep), "reason": "x"}, "Это тот же клиент."),
        ({"other": "999999", "reason": "x"}, "Клиента с номером 999999 нет."),
        ({"other": str(other), "reason": "   "}, "почему это один человек"),
    ):
        response = lena.act(tg, "merge", **bad)
        assert response.status_code == 422 and why in response.text, bad

    confirm = lena.act(tg, "merge", **form)
    assert confirm.status_code == 200
    assert "Это один человек?" in confirm.text and f"Клиент {other}" in confirm.text
    assert "MAX: m1" in confirm.text and "привет" not in confirm.text, "no message text on the confirmation"
    assert other in owners(site), "nothing merged before the confirmation"
    stale = lena.act(tg, "merge", **form, confirm="yes", keep=str(other))
    assert stale.status_code == 409 and other in owners(site)
    done = lena.act(tg, "merge", **form, confirm="yes", keep=str(keep))
    assert done.status_code == 303
    assert other not in owners(site)
    merged = [detail for op, cid, detail in audit(site, "merge") if op == "lena" and cid is None]
    assert merged == [
        f"client {other} merged into client {keep}: 1 conversations, 1 identities, 0 details (via console); "
        "reason: тот же договор, подтвердил по телефону"
    ]
    assert "MAX: m1" in lena.page(tg).text.split('id="channels"', 1)[1].split("</ul>", 1)[0]
    # The person's VK conversation was never handed to people: merged or not, a lead cannot open it.
    assert lena.page(vk).status_code == 403
    admin = sign_in(site, "root")
    assert 'id="merge-form"' in admin.page(tg).text


# --- in Chromium ----------------------------------------------------------------------------------------


@pytest.mark.browser
def test_a_team_lead_sees_the_channels_replies_to_vk_and_merges_in_chromium(site: Site) -> None:
    tg, _vk = person_in_telegram_and_vk(site)
    say(site, "max", "m1", "привет", NOW)
    other = client_of(site, site.conversation_id("max", "m1"))
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{site.url}/console/login")
        page.fill("input[name=name]", "lena")
        page.fill("input[name=password]", PASSWORD.format("lena"))
        page.click("button[type=submit]")
        page.goto(f"{site.url}/console/conversations/{tg}")
        expect(page.locator("#channels li[data-channel=telegram]")).to_contain_text("Telegram: 501")
        expect(page.locator("#channels li[data-channel=vk]")).to_contain_text("ВКонтакте: 7001")
        expect(page.locator(".history .msg[data-channel=vk] .channel").first).to_have_text("ВКонтакте")
        expect(page.locator("#reply-route")).to_contain_text("Ответ уйдёт в ВКонтакте")

        page.fill("#reply-text", "Вижу ваше сообщение в ВК, отвечаю здесь")
        page.click("#send-reply")
        expect(page.locator(".history .msg.operator").last).to_contain_text("отвечаю здесь")
        expect(page.locator(".history .msg.operator .channel").last).to_have_text("ВКонтакте")
        sent = site.runtime.desk_store.claim_pending("vk", datetime.now(UTC))
        assert [(item.chat_id, item.reply.text) for item in sent] == [
            ("7001", "Вижу ваше сообщение в ВК, отвечаю здесь")
        ]

        page.click(".merge summary")
        page.fill("#merge-other", str(other))
        page.fill("#merge-reason", "написал с нового аккаунта, назвал договор")
        page.click("#merge-check")
        expect(page.locator("h2")).to_have_text("Это один человек?")
        expect(page.locator(f".merge-side[data-client='{other}']")).to_contain_text("MAX: m1")
        assert other in owners(site)
        page.click("#merge-confirm")
        expect(page).to_have_url(f"{site.url}/console/conversations/{tg}")
        expect(page.locator("#channels li[data-channel=max]")).to_contain_text("MAX: m1")
        assert other not in owners(site)
        assert any("назвал договор" in detail for _op, _cid, detail in audit(site, "merge"))
        # Each of the kept client's conversations, the one moved in included, shows the merge in its trail.
        assert {tg, site.conversation_id("max", "m1")} <= {cid for _op, cid, _detail in audit(site, "merge")}


@pytest.mark.browser
def test_whatsapps_closed_window_is_explained_in_chromium(site: Site) -> None:
    say(
        site,
        "whatsapp",
        "79135551234",
        "позовите оператора",
        NOW - timedelta(hours=25),
        sender_phone="79135551234",
    )
    wa = site.conversation_id("whatsapp", "79135551234")
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{site.url}/console/login")
        page.fill("input[name=name]", "anna")
        page.fill("input[name=password]", PASSWORD.format("anna"))
        page.click("button[type=submit]")
        page.goto(f"{site.url}/console/conversations/{wa}")
        expect(page.locator("#reply-route .warning")).to_contain_text("больше 24 часов назад")
        expect(page.locator("#channels li[data-channel=whatsapp]")).to_contain_text(
            "номер подтверждён аккаунтом WhatsApp"
        )
        page.fill("#reply-text", "Добрый день")
        page.click("#send-reply")
        expect(page.locator("p.error[role=alert]")).to_have_text(CLOSED)
        assert site.runtime.desk_store.claim_pending("whatsapp", datetime.now(UTC)) == []
