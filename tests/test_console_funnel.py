"""A campaign's funnel in the console, on recipient rows with known counts: the storage's counts on a real
SQLite file and a real PostgreSQL server, and the pages in a real headless Chromium (the numbers per step,
conversion between steps, by persona and by channel, the chart, and a drill-down to exactly the expected
recipients and their conversation). Operators are refused politely; team leads and admins see it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from common.messages import IncomingMessage
from common.names import FUNNEL_STEPS, FunnelStatus
from operators.passwords import hash_password
from storage import connect
from storage.desk import DeskStore
from storage.tables import actions, recipients, write_lock_for
from tests.support.browser import chromium
from tests.support.webserver import always_open, serving, web_runtime
from web.campaign_pages import REFUSED
from wiring.runtime import Runtime

CAMPAIGN = "autumn_offer"
NOW = datetime.now(UTC).replace(microsecond=0)
PASSWORD = "pass-{}-12345"
TIMEOUT_MS = 15_000
# (persona, channel, status, reason, how many): 20 recipients.
PLAN = [
    ("talker", "telegram", FunnelStatus.REPLIED, "", 3),
    ("talker", "vk", FunnelStatus.SENT, "", 4),
    ("neutral", "telegram", FunnelStatus.CONVERTED, "", 2),
    ("neutral", "vk", FunnelStatus.CONSENTED, "", 1),
    # Opted out after replying: sent and replied, then out.
    ("aggressor", "telegram", FunnelStatus.OPTED_OUT, "отписался", 2),
    ("neutral", "telegram", FunnelStatus.NOT_ALLOWED, "не открывал чат с ботом", 3),
    ("talker", "vk", FunnelStatus.FAILED, "заблокировал бота", 1),
    ("neutral", "vk", FunnelStatus.QUEUED, "", 2),
    ("positive", "whatsapp", FunnelStatus.READ, "", 2),
]
STEPS = [str(step) for step in FUNNEL_STEPS]
# Counted by hand from PLAN: recipients who reached at least each step (queued ... converted).
OVERALL = [20, 14, 10, 10, 8, 3, 2]
SHARES = ["—", "70,0 %", "71,4 %", "100,0 %", "80,0 %", "37,5 %", "66,7 %"]
ENDS = {"failed": 1, "not_allowed": 3, "opted_out": 2}
BY_PERSONA = {
    "talker": [8, 7, 3, 3, 3, 0, 0],
    "neutral": [8, 3, 3, 3, 3, 3, 2],
    "aggressor": [2, 2, 2, 2, 2, 0, 0],
    "positive": [2, 2, 2, 2, 0, 0, 0],
}
BY_CHANNEL = {
    "telegram": [10, 7, 7, 7, 7, 2, 2],
    "vk": [8, 5, 1, 1, 1, 1, 0],
    "whatsapp": [2, 2, 2, 2, 0, 0, 0],
}
# The chats of the talkers who replied in Telegram: they have conversations to open.
TALKERS_REPLIED = ["talker-telegram-replied-0", "talker-telegram-replied-1", "talker-telegram-replied-2"]


def fill(engine: Engine, conversations: dict[str, int] | None = None) -> None:
    """The recipients of PLAN, with the moments of each step they reached."""
    conversations = conversations or {}
    rows: list[dict[str, Any]] = []
    for persona, channel, status, reason, count in PLAN:
        for n in range(count):
            chat = f"{persona}-{channel}-{status}-{n}"
            row: dict[str, Any] = {
                "campaign": CAMPAIGN,
                "channel": channel,
                "chat_id": chat,
                "conversation_id": conversations.get(chat),
                "persona": persona,
                "time_zone": "",
                "status": status,
                "reason": reason,
                "event_id": "",
                "steps_sent": 0 if status in ("queued", "not_allowed", "failed") else 1,
                "attempt": 0,
                "external_id": "",
                "queued_at": NOW - timedelta(hours=5),
                # One insert for all rows: every row names every moment.
                **{f"{step}_at": None for step in FUNNEL_STEPS[1:]},
                "ended_at": None,
            }
            if status in FUNNEL_STEPS:
                for step in FUNNEL_STEPS[1 : FUNNEL_STEPS.index(status) + 1]:
                    # Only WhatsApp reports delivered and read.
                    if step in ("delivered", "read") and channel != "whatsapp":
                        continue
                    row[f"{step}_at"] = NOW - timedelta(hours=4)
            elif status == FunnelStatus.OPTED_OUT:
                row.update(sent_at=NOW - timedelta(hours=4), replied_at=NOW - timedelta(hours=3))
                row["ended_at"] = NOW - timedelta(hours=3)
            else:
                row["ended_at"] = NOW - timedelta(hours=5)
            rows.append(row)
    # A recipient of another campaign counts in none of these numbers.
    rows.append({**rows[0], "campaign": "winter_offer", "status": FunnelStatus.CONVERTED})
    with engine.begin() as connection:
        connection.execute(insert(recipients), rows)


# --- storage, on both databases ------------------------------------------------------------------------


@pytest.fixture
def store(database_url: str) -> Iterator[DeskStore]:
    engine = connect(database_url)
    yield DeskStore(engine, write_lock_for(engine))
    engine.dispose()


def test_the_funnel_counts_each_recipient_up_to_its_furthest_step(store: DeskStore) -> None:
    fill(store.engine)
    funnel = store.funnel(CAMPAIGN)
    assert funnel is not None
    assert [funnel.overall.reached[step] for step in STEPS] == OVERALL
    assert funnel.overall.ends == ENDS
    assert funnel.overall.reasons == {
        ("failed", "заблокировал бота"): 1,
        ("not_allowed", "не открывал чат с ботом"): 3,
        ("opted_out", "отписался"): 2,
    }
    assert {name: [c.reached[s] for s in STEPS] for name, c in funnel.by_persona.items()} == BY_PERSONA
    assert {name: [c.reached[s] for s in STEPS] for name, c in funnel.by_channel.items()} == BY_CHANNEL
    # The largest slice first.
    assert list(funnel.by_channel) == ["telegram", "vk", "whatsapp"]
    assert store.funnel("no_such_campaign") is None
    summaries = {s.campaign: s for s in store.campaign_summaries()}
    assert set(summaries) == {CAMPAIGN, "winter_offer"}
    assert [summaries[CAMPAIGN].counts.reached[s] for s in STEPS] == OVERALL
    assert summaries["winter_offer"].counts.total == 1


def test_recipients_behind_a_count(store: DeskStore) -> None:
    fill(store.engine)
    lines, total = store.recipients(CAMPAIGN, "replied", persona="talker")
    assert total == 3 and [line.chat_id for line in lines] == TALKERS_REPLIED
    lines, total = store.recipients(CAMPAIGN, "delivered", channel="vk")
    assert total == 1 and [line.chat_id for line in lines] == ["neutral-vk-consented-0"]
    lines, total = store.recipients(CAMPAIGN, "opted_out", reason="отписался")
    assert total == 2 and all(line.moments.keys() == {"queued", "sent", "replied", "ended"} for line in lines)
    lines, total = store.recipients(CAMPAIGN, "sent", limit=5)
    assert total == 14 and len(lines) == 5
    assert store.recipients(CAMPAIGN)[1] == 20


# --- the pages, in Chromium -----------------------------------------------------------------------------


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path) -> Runtime:
    built = web_runtime(tmp_path, always_open(content_copy))
    for name, role in (("anna", "operator"), ("lena", "lead")):
        built.desk_store.add_operator(name, hash_password(PASSWORD.format(name)), name.title(), role, NOW)
    return built


def with_conversations(runtime: Runtime) -> dict[str, int]:
    """The talkers who replied wrote in Telegram (never handed to people): their conversations."""
    found = {}
    for n, chat in enumerate(TALKERS_REPLIED):
        runtime.service.handle(
            IncomingMessage("telegram", chat, chat, f"а что за предложение {n}?", NOW, f"m{n}")
        )
        rows = runtime.desk_store.chat_messages("telegram", chat, 0)
        found[chat] = int(rows[0].conversation_id)
    return found


def sign_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/console/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD.format(name))
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/console")


def numbers(page: Page, row: str) -> list[str]:
    return [page.locator(f"{row} td[data-step={step}] .count").inner_text() for step in STEPS]


@pytest.mark.browser
def test_a_team_lead_reads_the_funnel_and_drills_down_to_a_conversation(runtime: Runtime) -> None:
    conversations = with_conversations(runtime)
    fill(runtime.store.engine, conversations)
    with serving(runtime) as base, chromium() as browser:
        page = browser.new_context(viewport={"width": 1360, "height": 900}).new_page()
        page.set_default_timeout(TIMEOUT_MS)
        sign_in(page, base, "lena")
        page.click("#nav-campaigns")
        listed = page.locator(f"#campaigns tr[data-campaign={CAMPAIGN}]")
        assert [listed.locator(f"td[data-step={s}]").inner_text() for s in STEPS] == [str(n) for n in OVERALL]
        expect(listed.locator("td[data-step=opted_out]")).to_have_text("2")
        expect(listed.locator("td[data-conversion]")).to_have_text("10,0 %")
        listed.locator("a.campaign-link").click()
        expect(page).to_have_url(f"{base}/console/campaigns/{CAMPAIGN}")

        expect(page.locator("#audience")).to_have_text("20")
        for step, count, share in zip(STEPS, OVERALL, SHARES, strict=True):
            row = page.locator(f"#funnel tr[data-step={step}]")
            expect(row.locator(".count")).to_have_text(str(count))
            expect(row.locator(".share")).to_have_text(share)
        for end, count in ENDS.items():
            expect(page.locator(f"#funnel-ends tr[data-step={end}] td.num .count")).to_have_text(str(count))
        expect(
            page.locator("#funnel-ends .reason[data-reason='не открывал чат с ботом'] .count")
        ).to_have_text("3")
        # The chart: one bar per step, as wide as its share of the audience.
        bars = page.locator("#funnel-chart rect.bar")
        expect(bars).to_have_count(len(STEPS))
        assert [int(bars.nth(i).get_attribute("data-count") or -1) for i in range(len(STEPS))] == OVERALL
        widths = [float(bars.nth(i).get_attribute("width") or -1) for i in range(len(STEPS))]
        assert widths[0] == 460 and [round(w / widths[0] * 20) for w in widths] == OVERALL
        for persona, counts in BY_PERSONA.items():
            assert numbers(page, f"#by-persona tr[data-slice={persona}]") == [str(n) for n in counts], persona
        for channel, counts in BY_CHANNEL.items():
            assert numbers(page, f"#by-channel tr[data-slice={channel}]") == [str(n) for n in counts], channel
        expect(page.locator("#by-persona tr[data-slice=talker] th")).to_have_text("собеседник")
        expect(page.locator("#by-channel tr[data-slice=vk] th")).to_have_text("ВКонтакте")
        expect(page.locator("#by-channel tr[data-slice=vk] td[data-step=delivered] .share")).to_have_text(
            "20,0 %"
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= 1360

        page.click("#by-persona tr[data-slice=talker] td[data-step=replied] a")
        expect(page).to_have_url(re.compile(r"/recipients\?step=replied&persona=talker$"))
        expect(page.locator("#recipient-total")).to_have_text("3")
        shown = page.locator("#recipients tr.recipient")
        expect(shown).to_have_count(3)
        assert [shown.nth(i).get_attribute("data-chat") for i in range(3)] == TALKERS_REPLIED
        expect(shown.first.locator("[data-moment=replied]")).to_contain_text("ответили")
        target = conversations[TALKERS_REPLIED[0]]
        link = shown.first.locator("a.conversation-link")
        expect(link).to_have_attribute("href", f"/console/conversations/{target}")
        link.click()
        # Never handed to people, yet a team lead opens it: a campaign wrote there.
        expect(page).to_have_url(f"{base}/console/conversations/{target}")
        expect(page.locator(".history")).to_contain_text("а что за предложение 0?")

        page.goto(f"{base}/console/campaigns/{CAMPAIGN}/recipients?step=not_allowed")
        expect(page.locator("#recipients tr.recipient")).to_have_count(3)
        expect(page.locator("#recipients tr.recipient").first).to_contain_text("не открывал чат с ботом")
        expect(page.locator("#recipients tr.recipient").first).to_contain_text("не писали")
    with runtime.store.engine.connect() as connection:
        looks = connection.execute(
            select(actions.c.operator, actions.c.detail).where(actions.c.action == "view_recipients")
        ).all()
    assert [tuple(look) for look in looks] == [
        ("lena", f"{CAMPAIGN} step=replied, persona=talker"),
        ("lena", f"{CAMPAIGN} step=not_allowed"),
    ]


@pytest.mark.browser
def test_an_operator_sees_no_campaigns_and_is_refused_politely(runtime: Runtime) -> None:
    conversations = with_conversations(runtime)
    fill(runtime.store.engine, conversations)
    with serving(runtime) as base, chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        sign_in(page, base, "anna")
        expect(page.locator("#nav-tasks")).to_be_visible()
        expect(page.locator("#nav-campaigns")).to_have_count(0)
        for path in (
            f"/campaigns/{CAMPAIGN}",
            f"/campaigns/{CAMPAIGN}/recipients?step=replied",
            "/campaigns",
        ):
            response = page.goto(f"{base}/console{path}")
            assert response is not None and response.status == 403
            expect(page.locator(".error")).to_have_text(REFUSED)
            assert "talker" not in page.content() and "20" not in page.locator("main").inner_text()
        # Nor the campaign's conversations: never handed to people, and she is no team lead.
        response = page.goto(f"{base}/console/conversations/{conversations[TALKERS_REPLIED[0]]}")
        assert response is not None and response.status == 403
