"""The whole handoff in a real headless Chromium: a client in the web chat, an operator in the console.

Starts the real app with uvicorn on 127.0.0.1 and drives Debian's Chromium through Playwright.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from storage.database import dispose_all
from tests.support.browser import chromium
from tests.support.databases import fresh_postgres, read_only
from tests.support.webserver import add_operator, always_open, serving, web_runtime
from web.console import PERSONA_TITLES
from wiring.runtime import Runtime

pytestmark = pytest.mark.browser
TIMEOUT_MS = 15_000
ANGRY_REQUEST = "Вы издеваетесь?! Третий день нет интернета, договор 7654321. Позовите оператора!"


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path) -> Runtime:
    runtime = web_runtime(tmp_path, always_open(content_copy))
    add_operator(runtime, "anna", "demo-password-1", "Анна")
    return runtime


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/console")
    expect(page).to_have_url(re.compile(r"/console/login"))
    page.fill("input[name=name]", "anna")
    page.fill("input[name=password]", "demo-password-1")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/console")


def test_client_asks_for_a_person_operator_answers_closes_and_a_low_rating_is_flagged(
    runtime: Runtime, tmp_path: Path
) -> None:
    with serving(runtime) as base, chromium() as browser:
        client = browser.new_context().new_page()
        operator = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        client.set_default_timeout(TIMEOUT_MS)
        operator.set_default_timeout(TIMEOUT_MS)

        client.goto(f"{base}/chat")
        client.fill("#chat-input", ANGRY_REQUEST)
        client.press("#chat-input", "Enter")
        expect(client.locator(".bubble.mine").first).to_have_text(ANGRY_REQUEST)
        expect(client.locator(".bubble.theirs").last).to_contain_text("специалист")

        sign_in(operator, base)
        row = operator.locator("#queue-rows tr.item").first
        expect(row).to_contain_text("Позовите оператора")
        expect(row).to_contain_text("срочно")
        row.locator("a").click()
        expect(operator).to_have_url(re.compile(r"/console/conversations/\d+$"))

        conversation_id = int(operator.url.rsplit("/", 1)[1])
        view = runtime.desk_store.conversation(conversation_id)
        assert view is not None and view.state.persona == "aggressor"
        expect(operator.locator("#persona")).to_have_text(PERSONA_TITLES["aggressor"])
        expect(operator.locator(".cues li").first).to_contain_text("aggressor")
        expect(operator.locator("dd[data-detail=contract]")).to_have_text("7654321")
        expect(operator.locator("#handoff-reason")).to_contain_text("срочно")

        suggestion = operator.locator(".suggestion[data-moment='operator.greeting']")
        suggested_text = suggestion.get_attribute("data-text") or ""
        assert "Анна" in suggested_text
        suggestion.click()
        expect(operator.locator("#reply-text")).to_have_value(suggested_text)
        operator.click("#send-reply")
        expect(operator.locator(".history .msg.operator").last).to_contain_text(suggested_text)

        expect(client.locator(".bubble.person").last).to_have_text(suggested_text)

        # The client writes while a person has the chat: stored and shown to the operator, no bot reply.
        replies_before = client.locator(".bubble.theirs").count()
        client.fill("#chat-input", "Жду, проверьте пожалуйста")
        client.press("#chat-input", "Enter")
        expect(operator.locator(".history .msg.in").last).to_contain_text("Жду, проверьте")
        client.wait_for_timeout(500)
        assert client.locator(".bubble.theirs").count() == replies_before

        operator.click("#close")
        rating = client.locator(".choices button", has_text=re.compile(r"^2$"))
        expect(rating).to_be_visible()
        assert client.locator(".choices").last.locator("button").count() == 5
        rating.click()
        expect(client.locator(".bubble.mine").last).to_have_text("2")
        expect(operator.locator("#follow-up")).to_be_visible()
        expect(operator.locator("#rating")).to_contain_text("2")

        handoff = runtime.desk_store.conversation(conversation_id).handoff  # type: ignore[union-attr]
        assert handoff is not None
        assert (handoff.status, handoff.rating, handoff.follow_up) == ("closed", 2, True)
        shots = Path(os.environ.get("TONEBOT_SCREENSHOTS", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        operator.screenshot(path=str(shots / "console-conversation.png"), full_page=True)
        client.screenshot(path=str(shots / "web-chat.png"))


def test_the_queue_shows_a_new_handoff_without_a_reload(runtime: Runtime) -> None:
    with serving(runtime) as base, chromium() as browser:
        operator = browser.new_page()
        operator.set_default_timeout(TIMEOUT_MS)
        sign_in(operator, base)
        expect(operator.locator("#queue-rows tr.item")).to_have_count(0)
        client = browser.new_context().new_page()
        client.goto(f"{base}/chat")
        client.fill("#chat-input", "<img src=x onerror=alert(1)> позовите человека")
        client.press("#chat-input", "Enter")
        row = operator.locator("#queue-rows tr.item")
        expect(row).to_have_count(1)
        expect(row.locator(".preview")).to_have_text("<img src=x onerror=alert(1)> позовите человека")
        assert operator.locator("#queue-rows img").count() == 0
        expect(client.locator(".bubble.mine")).to_have_text("<img src=x onerror=alert(1)> позовите человека")
        assert client.locator(".messages img").count() == 0


def test_web_chat_keeps_a_message_while_the_database_is_read_only(tmp_path: Path, content_copy: Path) -> None:
    with fresh_postgres() as url:
        runtime = web_runtime(tmp_path, always_open(content_copy), url)
        with serving(runtime) as base, chromium() as browser:
            client = browser.new_page()
            client.set_default_timeout(TIMEOUT_MS)
            client.goto(f"{base}/chat")
            client.fill("#chat-input", "не работает интернет")
            client.press("#chat-input", "Enter")
            expect(client.locator(".bubble.theirs").last).to_contain_text("договор")
            read_only(url, True)
            client.fill("#chat-input", "договор 7654321")
            client.press("#chat-input", "Enter")
            expect(client.locator("#chat-error")).to_contain_text("сбой")
            expect(client.locator(".bubble.mine")).to_have_count(1)
            read_only(url, False)
            expect(client.locator(".bubble.mine")).to_have_count(2, timeout=20_000)
            expect(client.locator(".bubble.mine").last).to_have_text("договор 7654321")
            expect(client.locator(".bubble.theirs").last).to_contain_text("лампочки", timeout=20_000)
            expect(client.locator("#chat-error")).to_be_hidden()
        dispose_all()


def test_a_bank_client_whose_stolen_card_is_being_used_reaches_a_person_at_once(tmp_path: Path) -> None:
    from dialogs.content import copy_content

    runtime = web_runtime(tmp_path, copy_content(tmp_path / "content", "bank"))
    add_operator(runtime, "anna", "demo-password-1", "Анна")
    stolen = "У меня украли карту, с неё прямо сейчас списывают деньги!"
    with serving(runtime) as base, chromium() as browser:
        client = browser.new_context().new_page()
        operator = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        client.set_default_timeout(TIMEOUT_MS)
        operator.set_default_timeout(TIMEOUT_MS)

        client.goto(f"{base}/chat")
        client.fill("#chat-input", stolen)
        client.press("#chat-input", "Enter")
        expect(client.locator(".bubble.theirs").last).to_contain_text("вне очереди")

        sign_in(operator, base)
        row = operator.locator("#queue-rows tr.item").first
        expect(row).to_contain_text("срочно")
        expect(row).to_contain_text("срочная ситуация")
        row.locator("a").click()
        expect(operator.locator("#handoff-reason")).to_contain_text("срочно")
        expect(operator.locator("#handoff-reason")).to_contain_text("сигнал: phrase")
