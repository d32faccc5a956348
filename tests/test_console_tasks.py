"""The operators' task page in a real headless Chromium: a call-back the client asked the bot for (through
the real conversation service) shows with the client's chosen time; take, reschedule and done through the
browser land in the database and the audit trail; a task someone else took meanwhile gets a polite
conflict; a sales task done as «продукт оформлен» moves the campaign's funnel."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import insert, select

from common.messages import IncomingMessage
from common.names import FunnelStatus, TaskStatus
from operators.passwords import hash_password
from storage.tables import actions, as_utc, recipients, tasks
from tests.support.browser import chromium
from tests.support.webserver import always_open, serving, web_runtime
from web.tasks_pages import chosen_time
from wiring.runtime import Runtime

pytestmark = pytest.mark.browser
TIMEOUT_MS = 15_000
PASSWORD = "pass-{}-12345"


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    return {name: hash_password(PASSWORD.format(name)) for name in ("anna", "boris")}


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path, hashes: dict[str, str]) -> Runtime:
    built = web_runtime(tmp_path, always_open(content_copy))
    for name, shown in (("anna", "Анна"), ("boris", "Борис")):
        built.desk_store.add_operator(name, hashes[name], shown, "operator", datetime.now(UTC))
    return built


_count = iter(range(1_000_000))


def say(runtime: Runtime, chat: str, text: str) -> None:
    runtime.service.handle(
        IncomingMessage("telegram", chat, chat, text, datetime.now(UTC), f"{chat}-{next(_count)}")
    )


def conversation_of(runtime: Runtime, chat: str) -> int:
    for item in runtime.desk_store.chat_messages("telegram", chat, 0):
        return int(item.conversation_id)
    raise AssertionError(f"no conversation in chat {chat}")


def the_task(runtime: Runtime, kind: str) -> tuple[int, dict[str, str]]:
    with runtime.store.engine.connect() as connection:
        row = connection.execute(select(tasks).where(tasks.c.kind == kind)).one()
    return int(row.id), orjson.loads(row.payload_json)


def direct_task(runtime: Runtime, conversation_id: int, kind: str, due: datetime, **values: str) -> int:
    with runtime.store.engine.begin() as connection:
        key = connection.execute(
            insert(tasks).values(
                conversation_id=conversation_id,
                kind=kind,
                category="general",
                scenario_id=values.pop("scenario_id", kind),
                payload_json=values.pop("payload_json", "{}"),
                status=TaskStatus.OPEN,
                created_at=due - timedelta(hours=1),
                due_at=due,
            )
        ).inserted_primary_key
    assert key is not None
    return int(key[0])


def task_audit(runtime: Runtime) -> list[tuple[str, str, int | None]]:
    with runtime.store.engine.connect() as connection:
        rows = connection.execute(
            select(actions).where(actions.c.action.like("task_%")).order_by(actions.c.id)
        )
        return [(str(r.operator), str(r.action), r.conversation_id) for r in rows]


def sign_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD.format(name))
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/console")


def test_a_call_back_asked_for_in_telegram_is_taken_rescheduled_and_done_in_the_browser(
    runtime: Runtime,
) -> None:
    for text in ("перезвоните мне", "+7 913 123 45 67", "завтра с 10 до 12"):
        say(runtime, "5001", text)
    callback, payload = the_task(runtime, "callback")
    assert payload["phone"] == "+79131234567" and payload["callback_time"].endswith("10:00-12:00")
    client_cid = conversation_of(runtime, "5001")
    # A moving request due two hours ago: overdue, so it comes first.
    say(runtime, "5002", "здравствуйте")
    moving = direct_task(
        runtime, conversation_of(runtime, "5002"), "moving", datetime.now(UTC) - timedelta(hours=2)
    )
    zone = ZoneInfo(runtime.content.get().scenarios.company.timezone)
    stored = runtime.desk_store.task(callback, datetime.now(UTC))
    assert stored is not None

    with serving(runtime) as base, chromium() as browser:
        page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        page.set_default_timeout(TIMEOUT_MS)
        sign_in(page, base, "anna")
        page.click("#nav-tasks")
        expect(page).to_have_url(f"{base}/console/tasks")
        rows = page.locator("#tasks tr.task")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_have_attribute("data-task", str(moving))
        expect(rows.nth(0).locator(".overdue-mark")).to_have_text("просрочено")
        expect(rows.nth(0).locator(".task-title")).to_have_text("Переезд")
        row = page.locator(f"#task-{callback}")
        expect(row.locator(".task-title")).to_have_text("Обратный звонок")
        expect(row.locator(".chosen-time")).to_have_text(chosen_time(payload["callback_time"]))
        expect(row.locator(".chosen-time")).to_contain_text("10:00–12:00")
        expect(row.locator("[data-detail=phone]")).to_contain_text("+79131234567")
        expect(row.locator(".task-due")).to_have_text(stored.due_at.astimezone(zone).strftime("%d.%m %H:%M"))
        expect(row.locator(".task-client")).to_have_attribute("href", f"/console/conversations/{client_cid}")

        # The filter by kind shows the call-backs only.
        page.click(".filters a[data-kind=callback]")
        expect(page.locator("#tasks tr.task")).to_have_count(1)
        expect(page.locator("#tasks tr.task")).to_have_attribute("data-task", str(callback))
        page.click(".filters a[data-kind='']")
        expect(page.locator("#tasks tr.task")).to_have_count(2)

        row.locator(".take-task").click()
        expect(row.locator(".task-taker")).to_contain_text("Анна")
        expect(row.locator(".take-task")).to_have_count(0)
        taken = runtime.desk_store.task(callback, datetime.now(UTC))
        assert taken is not None and (taken.status, taken.taken_by) == ("taken", "anna")

        # Another time, typed in the company's time zone.
        new_local = (datetime.now(zone) + timedelta(days=3)).replace(
            hour=15, minute=30, second=0, microsecond=0
        )
        row.locator("summary", has_text="Перенести").click()
        row.locator(".new-due").fill(new_local.strftime("%Y-%m-%dT%H:%M"))
        row.locator(".note").fill("просил после обеда")
        row.locator(".reschedule-task button").click()
        expect(row.locator(".task-due")).to_have_text(new_local.strftime("%d.%m %H:%M"))
        expect(row.locator(".task-note")).to_contain_text("просил после обеда")
        moved = runtime.desk_store.task(callback, datetime.now(UTC))
        assert moved is not None and moved.due_at == new_local.astimezone(UTC)
        # Now later than the overdue move, the call-back is still second.
        expect(page.locator("#tasks tr.task").nth(1)).to_have_attribute("data-task", str(callback))

        # Boris takes the moving request while Anna's page still offers it: she is told, politely.
        runtime.desk_store.take_task(moving, "boris", datetime.now(UTC))
        page.locator(f"#task-{moving} .take-task").click()
        expect(page.locator("#task-error")).to_have_text(
            "Эту задачу уже взял(а) Борис. Список обновлён: выберите другую."
        )
        expect(page.locator(f"#task-{moving} .task-taker")).to_contain_text("Борис")
        expect(page.locator(f"#task-{moving} form")).to_have_count(0)
        with runtime.store.engine.connect() as connection:
            still = connection.execute(select(tasks.c.taken_by).where(tasks.c.id == moving)).scalar_one()
        assert still == "boris"

        row.locator("summary", has_text="Готово").click()
        row.locator(".outcome").fill("перезвонила, договорились о переезде")
        row.locator(".done-task button").click()
        expect(page.locator(f"#task-{callback}")).to_have_count(0)
        finished = page.locator(f"#done-tasks tr[data-task='{callback}']")
        expect(finished.locator(".task-outcome")).to_have_text("перезвонила, договорились о переезде")
        expect(finished).to_contain_text("Анна")
        done = runtime.desk_store.task(callback, datetime.now(UTC))
        assert done is not None and (done.status, done.outcome) == (
            "done",
            "перезвонила, договорились о переезде",
        )
        assert task_audit(runtime) == [
            ("anna", "task_take", client_cid),
            ("anna", "task_reschedule", client_cid),
            ("boris", "task_take", conversation_of(runtime, "5002")),
            ("anna", "task_done", client_cid),
        ]

        # The task's link opens the conversation: people were asked to act on it, so operators may.
        finished.locator("a").click()
        expect(page).to_have_url(re.compile(rf"/console/conversations/{client_cid}$"))
        expect(page.locator(".history")).to_contain_text("перезвоните мне")


def test_a_sales_task_done_as_a_sale_moves_the_campaign_funnel(runtime: Runtime) -> None:
    say(runtime, "6001", "добрый день")
    cid = conversation_of(runtime, "6001")
    sale = direct_task(
        runtime,
        cid,
        "sales",
        datetime.now(UTC) + timedelta(hours=1),
        scenario_id="campaign:autumn_offer",
        payload_json='{"campaign": "Осенняя карта"}',
    )
    with runtime.store.engine.begin() as connection:
        key = connection.execute(
            insert(recipients).values(
                campaign="autumn_offer",
                channel="telegram",
                chat_id="6001",
                conversation_id=cid,
                persona="neutral",
                time_zone="",
                status=FunnelStatus.CONSENTED,
                reason="",
                event_id="",
                steps_sent=1,
                attempt=1,
                external_id="",
                queued_at=datetime.now(UTC) - timedelta(days=1),
            )
        ).inserted_primary_key
    assert key is not None
    with serving(runtime) as base, chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        sign_in(page, base, "anna")
        page.goto(f"{base}/console/tasks")
        row = page.locator(f"#task-{sale}")
        expect(row.locator(".task-title")).to_have_text("Ответ на рассылку: продажи")
        expect(row.locator("[data-detail=campaign]")).to_contain_text("Осенняя карта")
        row.locator("summary", has_text="Готово").click()
        row.locator(".converted").check()
        row.locator(".outcome").fill("оформил карту")
        row.locator(".done-task button").click()
        finished = page.locator(f"#done-tasks tr[data-task='{sale}'] .task-outcome")
        expect(finished).to_have_text("продукт оформлен: оформил карту")
    with runtime.store.engine.connect() as connection:
        funnel = connection.execute(select(recipients).where(recipients.c.id == key[0])).one()
    assert funnel.status == FunnelStatus.CONVERTED and as_utc(funnel.converted_at) is not None
