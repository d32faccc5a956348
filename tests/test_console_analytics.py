"""The analytics dashboard and its CSV export, served by uvicorn and read in a real headless Chromium over a
history with known answers (tests/support/analytics.py), on SQLite and PostgreSQL: the numbers the tables
show, the charts drawn, a filter applied from the form, the CSV downloaded; and the same checks first on
every route (sign-in, then the role), over HTTP."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from operators.passwords import hash_password
from storage.tables import actions
from tests.support.analytics import FIRST, LAST, write_history
from tests.support.browser import chromium
from tests.support.webserver import always_open, serving, web_runtime
from tests.test_web_http import Site
from web import analytics_pages
from web.analytics_pages import EXPORT_COLUMNS, REFUSED
from wiring.runtime import Runtime

ACCOUNTS = {"anna": "operator", "lena": "lead", "root": "admin"}
PASSWORD = "pass-{}-12345"
PERIOD = f"from={FIRST.isoformat()}&to={LAST.isoformat()}"


@pytest.fixture(scope="module")
def hashes() -> dict[str, str]:
    return {name: hash_password(PASSWORD.format(name)) for name in ACCOUNTS}


@pytest.fixture
def site(tmp_path: Path, content_copy: Path, hashes: dict[str, str], database_url: str) -> Iterator[Site]:
    runtime: Runtime = web_runtime(tmp_path, always_open(content_copy), database_url)
    for name, role in ACCOUNTS.items():
        runtime.desk_store.add_operator(name, hashes[name], name.title(), role, datetime.now(UTC))
    with serving(runtime) as url:
        served = Site(runtime, url)
        try:
            yield served
        finally:
            served.close()
            runtime.close()


@pytest.fixture
def ids(site: Site) -> dict[str, int]:
    return write_history(site.runtime.store.engine)


def digits(text: str) -> int:
    """A count as the page shows it (thousands apart)."""
    return int(re.sub(r"\D", "", text))


def cells(page: Page, table: str, key: str, value: str, columns: tuple[str, ...]) -> tuple[str, ...]:
    row = page.locator(f"#{table} tr[data-{key}='{value}']")
    return tuple(" ".join(row.locator(f"[data-col={col}]").inner_text().split()) for col in columns)


def sign_in(page: Page, url: str, name: str) -> None:
    page.goto(f"{url}/console/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD.format(name))
    page.click("button[type=submit]")
    expect(page.locator(".who")).to_have_text(name.title())


def audit(site: Site) -> list[tuple[str, str, str]]:
    with site.runtime.store.engine.connect() as connection:
        rows = connection.execute(select(actions).order_by(actions.c.id))
        return [(str(r.operator), str(r.action), str(r.detail)) for r in rows]


@pytest.mark.browser
def test_a_team_lead_reads_the_numbers_filters_and_downloads_the_csv(site: Site, ids: dict[str, int]) -> None:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, site.url, "lena")
        page.click("#nav-analytics")
        expect(page.locator("h1")).to_have_text("Аналитика")
        # The default period is the last 30 days: choose the history's three days from the form.
        page.fill("#filter-from", FIRST.isoformat())
        page.fill("#filter-to", LAST.isoformat())
        page.click("#filter-apply")
        expect(page).to_have_url(re.compile(r"from=2026-11-20&to=2026-11-22"))

        days = ("conversations", "incoming", "outgoing")
        assert [
            cells(page, "table-days", "day", d, days) for d in ("2026-11-20", "2026-11-21", "2026-11-22")
        ] == [
            ("2", "6", "2"),
            ("1", "5", "6"),
            ("1", "1", "1"),
        ]
        assert cells(page, "table-days", "day", "total", days) == ("4", "12", "9")
        summary = page.locator("#summary")
        assert digits(summary.locator("[data-figure=conversations] dd").inner_text()) == 4
        assert digits(summary.locator("[data-figure=messages] dd").inner_text()) == 21
        expect(summary.locator("[data-figure=bot_alone] dd")).to_have_text("25,0\u00a0%")
        expect(summary.locator("[data-figure=median] dd")).to_have_text("1 мин 30 с")
        expect(summary.locator("[data-figure=rating] dd")).to_have_text("3,67")

        assert cells(page, "table-handed", "key", "bot", ("count", "share")) == ("1", "25,0 %")
        assert cells(page, "table-handed", "key", "people", ("count", "share")) == ("3", "75,0 %")
        reasons = page.locator("#table-reasons tbody tr")
        assert reasons.count() == 4
        assert cells(page, "table-reasons", "reason", "client_asked", ("count", "share")) == ("2", "40,0 %")
        expect(page.locator("#table-reasons tr[data-reason=escalation] td").first).to_have_text(
            "гнев или угроза: срочно"
        )

        response = ("handoffs", "answered", "median", "p90", "breached", "breached_share")
        assert cells(page, "table-response", "key", "billing", response) == (
            "2", "2", "3 мин 30 с", "5 мин 00 с", "1", "50,0 %",
        )  # fmt: skip
        assert cells(page, "table-response", "key", "tech", response) == (
            "2", "1", "1 мин 00 с", "1 мин 00 с", "1", "50,0 %",
        )  # fmt: skip
        # The always-open test teams put every category in one team, «Поддержка».
        assert cells(page, "table-response", "key", "desk", response) == (
            "5", "4", "1 мин 30 с", "5 мин 00 с", "2", "40,0 %",
        )  # fmt: skip
        assert cells(page, "table-response", "kind", "total", ("handoffs", "breached")) == ("5", "2")

        assert [cells(page, "table-ratings", "rating", str(r), ("count",))[0] for r in range(1, 6)] == [
            "0", "1", "0", "1", "1",
        ]  # fmt: skip
        assert cells(page, "table-follow-ups", "key", "due", ("count",)) == ("1",)
        assert cells(page, "table-follow-ups", "key", "tasks", ("count",)) == ("2",)
        assert cells(page, "table-follow-ups", "key", "done", ("count",)) == ("1 · 50,0 %",)

        persona = ("conversations", "handed_off", "handoff_share", "rated", "rating")
        assert cells(page, "table-personas", "persona", "aggressor", persona) == (
            "2",
            "2",
            "100,0 %",
            "1",
            "2,00",
        )
        assert cells(page, "table-personas", "persona", "neutral", persona) == ("1", "0", "0,0 %", "0", "—")
        assert cells(page, "table-personas", "persona", "talker", persona) == ("0", "0", "—", "1", "4,00")

        scenario = ("conversations", "handed_off", "tasks")
        assert cells(page, "table-scenarios", "scenario", "no_internet", scenario) == ("2", "2", "1")
        assert cells(page, "table-scenarios", "scenario", "", scenario) == ("1", "0", "0")
        expect(page.locator("#table-scenarios tr[data-scenario=''] td").first).to_have_text(
            "без распознанного запроса"
        )
        rates = ("incoming", "misunderstood", "rate")
        assert cells(page, "table-misunderstood", "day", "2026-11-20", rates) == ("6", "2", "33,3 %")
        assert cells(page, "table-misunderstood", "day", "total", rates) == ("12", "3", "25,0 %")
        assert cells(page, "table-misunderstood-reasons", "reason", "stuck", ("count",)) == ("1",)

        # Every section has its chart, drawn on the page: bars with their numbers, a line for the rate.
        for chart in ("conversations", "messages", "handed", "reasons", "response", "ratings", "personas"):
            svg = page.locator(f"svg#chart-{chart}")
            expect(svg).to_be_visible()
            assert svg.locator("rect").count() >= 1, chart
        assert page.locator("svg#chart-conversations rect").count() == 3
        assert page.locator("svg#chart-misunderstood polyline").count() == 1
        expect(page.locator("svg#chart-handed")).to_contain_text("3 · 75,0\u00a0%")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1360, f"the page is {width} px wide"

        # A channel from the form narrows everything.
        page.select_option("#filter-channel", "telegram")
        page.click("#filter-apply")
        expect(page).to_have_url(re.compile(r"channel=telegram"))
        assert cells(page, "table-days", "day", "2026-11-21", days) == ("0", "1", "2")
        assert cells(page, "table-days", "day", "total", days) == ("2", "6", "4")
        assert page.locator("#table-reasons tbody tr").count() == 2

        # The CSV of the same filters: one line per conversation.
        page.select_option("#filter-channel", "")
        page.click("#filter-apply")
        expect(page).not_to_have_url(re.compile(r"channel=telegram"))
        with page.expect_download() as download:
            page.click("#export-csv")
        saved = download.value
        assert saved.suggested_filename == "tonebot-analytics-2026-11-20-2026-11-22.csv"
        text = Path(saved.path()).read_text(encoding="utf-8")
        context.close()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    assert [int(row["conversation_id"]) for row in rows] == [ids[name] for name in ("c1", "c2", "c3", "c4")]
    c1, c2, c3, c4 = rows
    assert {k: c1[k] for k in ("channel", "started", "persona", "handed_off", "handoffs")} == {
        "channel": "telegram",
        "started": "2026-11-20T00:30:00+07:00",
        "persona": "aggressor",
        "handed_off": "1",
        "handoffs": "2",
    }
    assert (c1["handoff_reason"], c1["category"], c1["first_response_s"], c1["breached"]) == (
        "client_asked", "billing", "120", "0",
    )  # fmt: skip
    assert (c1["rating"], c1["messages_in"], c1["messages_out"]) == ("", "3", "2")
    assert (c2["handed_off"], c2["handoff_reason"], c2["breached"], c2["messages_in"]) == ("0", "", "", "3")
    assert (c3["rating"], c3["breached"], c3["first_response_s"]) == ("5", "1", "300")
    assert (c4["channel"], c4["first_response_s"], c4["breached"]) == ("web", "", "1")
    assert ("lena", "export_analytics", PERIOD) in audit(site)


def test_an_operator_is_refused_politely_and_the_refusal_is_audited(site: Site, ids: dict[str, int]) -> None:
    anna = site.sign_in("anna", PASSWORD.format("anna"))
    assert 'id="nav-analytics"' not in anna.http.get("/console").text
    for path in ("/console/analytics", f"/console/analytics?{PERIOD}", f"/console/analytics.csv?{PERIOD}"):
        response = anna.http.get(path)
        assert response.status_code == 403, path
        assert REFUSED in response.text
        assert "aggressor" not in response.text and "conversation_id" not in response.text
        assert response.headers["cache-control"] == "no-store"
    refused = [detail for op, action, detail in audit(site) if (op, action) == ("anna", "refused")]
    assert refused == ["analytics", "analytics", "analytics export"]
    admin = site.sign_in("root", PASSWORD.format("root"))
    assert 'id="nav-analytics"' in admin.http.get("/console").text
    page = admin.http.get(f"/console/analytics?{PERIOD}")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    export = admin.http.get(f"/console/analytics.csv?{PERIOD}")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert len(export.text.strip().splitlines()) == 1 + 4


def test_without_a_session_every_route_sends_to_sign_in(site: Site, ids: dict[str, int]) -> None:
    anonymous = site.client()
    forged = site.client()
    forged.cookies.set("tonebot_session", "x" * 43)
    for http in (anonymous, forged):
        for route in analytics_pages.router.routes:
            path = route.path  # type: ignore[attr-defined]
            response = http.get(f"{path}?{PERIOD}")
            assert response.status_code == 303, path
            assert response.headers["location"] == f"/console/login?next={path}"
            assert "aggressor" not in response.text and "telegram" not in response.text
    assert audit(site) == []


def test_filters_the_page_cannot_use_are_explained(site: Site, ids: dict[str, int]) -> None:
    lena = site.sign_in("lena", PASSWORD.format("lena"))
    for query, why in (
        ("from=2026-13-01", "Не понимаю дату"),
        ("from=2026-11-22&to=2026-11-20", "заканчивается раньше"),
        ("from=2025-01-01&to=2026-11-20", "длиннее 366 дней"),
        ("team=nobody", "Такой группы нет"),
        ("category=nothing", "Такой категории нет"),
        ("channel=fax", "Такого канала нет"),
    ):
        page = lena.http.get(f"/console/analytics?{query}")
        assert page.status_code == 422 and why in page.text, query
        assert lena.http.get(f"/console/analytics.csv?{query}").status_code == 422, query
    # The default: the last 30 days of the company's calendar, answered.
    assert lena.http.get("/console/analytics").status_code == 200
    narrowed = lena.http.get(f"/console/analytics?{PERIOD}&team=desk&category=tech")
    assert narrowed.status_code == 200 and 'data-reason="escalation"' in narrowed.text
    assert (
        'data-reason="client_asked"'
        not in narrowed.text.split('id="table-reasons"', 1)[1].split("</table>")[0]
    )
