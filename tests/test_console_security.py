"""The console's permission, sign-in throttle and response headers over real HTTP (uvicorn on 127.0.0.1,
httpx clients from several loopback addresses), and the conversation page's width in Chromium."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import select, update

from operators.passwords import N, hash_password, verify_password
from storage.desk import actions
from storage.tables import conversations, recipients, tasks
from tests import test_web_http
from tests.support.browser import chromium
from tests.test_web_http import PASSWORDS, SESSION_COOKIE, Site, csrf_of, login_csrf, set_cookies
from web import analytics_pages, campaign_pages, inbox_pages, tasks_pages
from web.throttle import SignInThrottle

# The served site with its operators, as the HTTP tests have it.
site = test_web_http.site
password_hashes = test_web_http.password_hashes

SECRET_DETAILS = ("7654321", "+79131234567", "ivan.petrov@mail.ru", "Тверская")
ACTIONS = {
    "take": {},
    "reply": {"text": "подсмотрено"},
    "hand-back": {},
    "close": {},
    "transfer": {"category": "billing"},
    "merge": {"other": "1", "reason": "тот же человек", "confirm": "yes"},
}


def from_address(site: Site, address: str) -> httpx.Client:
    """An HTTP client whose connections come from another loopback address (the whole 127/8 is local)."""
    http = httpx.Client(
        base_url=site.url,
        timeout=20,
        follow_redirects=False,
        transport=httpx.HTTPTransport(local_address=address),
    )
    site._clients.append(http)
    return http


def sign_in_from(http: httpx.Client, name: str, password: str) -> httpx.Response:
    csrf = login_csrf(http)
    return http.post("/console/login", data={"name": name, "password": password, "csrf": csrf})


def bot_only_conversation(site: Site) -> int:
    """A web client who told the bot everything and was never handed to people."""
    visitor = site.visitor()
    visitor.say("нет интернета, договор 7654321")
    visitor.say("мой телефон +79131234567, почта ivan.petrov@mail.ru, адрес ул. Тверская, д. 7, кв. 12")
    cid = visitor.conversation_id
    assert not site.runtime.desk_store.was_handed_off(cid)
    return cid


def audit_lines(site: Site) -> list[tuple[str, str, int | None, str]]:
    with site.runtime.store.engine.connect() as connection:
        rows = connection.execute(select(actions).order_by(actions.c.id)).all()
    return [(row.operator, row.action, row.conversation_id, row.detail) for row in rows]


# --- every route checks the same permission before it renders anything --------------------------------


def test_an_operator_cannot_act_on_or_read_a_conversation_never_handed_to_people(site: Site) -> None:
    cid = bot_only_conversation(site)
    anna = site.sign_in("anna")
    before = site.runtime.desk_store.conversation(cid)
    assert before is not None
    for action, form in ACTIONS.items():
        # A valid CSRF token, so only the permission stands between the operator and the conversation.
        response = anna.act(cid, action, **form)
        assert response.status_code == 403, action
        for secret in SECRET_DETAILS:
            assert secret not in response.text, (action, secret)
        assert "нет интернета" not in response.text
        assert response.headers["cache-control"] == "no-store"
    for response in (anna.page(cid), anna.live(cid)):
        assert response.status_code == 403
        assert all(secret not in response.text for secret in SECRET_DETAILS)
    after = site.runtime.desk_store.conversation(cid)
    assert after is not None
    assert after.conversation.status == before.conversation.status
    assert [row.text for row in after.history] == [row.text for row in before.history]
    refused = [(op, detail) for op, action, conversation, detail in audit_lines(site) if action == "refused"]
    assert [detail for op, detail in refused if op == "anna"] == [
        "take", "reply", "hand_back", "close", "transfer", "merge", "view", "view",
    ]  # fmt: skip


def test_an_admin_may_open_any_conversation(site: Site) -> None:
    cid = bot_only_conversation(site)
    site.runtime.desk_store.add_operator(
        "root", hash_password("root-pass-1234"), "Админ", "admin", datetime.now(UTC)
    )
    admin = site.sign_in("root", "root-pass-1234")
    page = admin.page(cid)
    assert page.status_code == 200
    assert "нет интернета" in page.text
    assert not [line for line in audit_lines(site) if line[1] == "refused"]


@pytest.mark.parametrize("raw_id", ["99999999999999999999999999", str(2**63), "0", "-5", "123456"])
def test_ids_out_of_range_or_unknown_are_not_found(site: Site, raw_id: str) -> None:
    anna = site.sign_in("anna")
    for response in (
        anna.http.get(f"/console/conversations/{raw_id}"),
        anna.http.get(f"/console/conversations/{raw_id}/live"),
        anna.http.post(f"/console/conversations/{raw_id}/take", data={"csrf": anna.csrf}),
    ):
        assert response.status_code == 404, (raw_id, response.request.url, response.text[:200])
        assert "Такого разговора нет" in response.text


def test_an_admin_exporting_an_out_of_range_client_gets_not_found(site: Site) -> None:
    site.runtime.desk_store.add_operator(
        "root", hash_password("root-pass-1234"), "Админ", "admin", datetime.now(UTC)
    )
    admin = site.sign_in("root", "root-pass-1234")
    assert admin.http.get(f"/console/clients/{2**70}/export").status_code == 404
    anna = site.sign_in("anna")
    assert anna.http.get("/console/clients/1/export").status_code == 403
    assert ("anna", "refused", None, "export client 1") in audit_lines(site)


# --- sign out -------------------------------------------------------------------------------------------


def test_sign_out_with_a_wrong_token_changes_nothing(site: Site) -> None:
    anna = site.sign_in("anna")
    response = anna.http.post("/console/logout", data={"csrf": "forged-token-123"})
    assert response.status_code == 403
    assert SESSION_COOKIE not in set_cookies(response), "the cookie was cleared while the session lives"
    assert anna.http.get("/console").status_code == 200
    assert anna.http.post("/console/logout", data={"csrf": anna.csrf}).status_code == 303
    assert anna.http.get("/console").status_code == 303


# --- caching ---------------------------------------------------------------------------------------------


def test_console_answers_are_never_cached(site: Site) -> None:
    anna = site.sign_in("anna")
    visitor = site.visitor()
    visitor.say("позовите оператора")
    cid = visitor.conversation_id
    assert anna.act(cid, "take").status_code == 303
    boris = site.sign_in("boris")
    responses = [
        site.client().get("/console/login"),
        anna.http.get("/console"),
        anna.http.get("/console/queue/rows"),
        anna.page(cid),
        anna.live(cid),
        anna.page(2**40),
        boris.act(cid, "take"),  # the conflict page: taken by someone else
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 404, 409]
    for response in responses:
        assert response.headers["cache-control"] == "no-store", response.request.url


# --- sign-in throttle: slows guessing, never locks the owner out ---------------------------------------


def test_guesses_from_elsewhere_do_not_lock_the_owner_out(site: Site) -> None:
    owner = from_address(site, "127.0.0.1")
    assert sign_in_from(owner, "anna", PASSWORDS["anna"]).status_code == 303
    owner.post("/console/logout", data={"csrf": csrf_of(owner.get("/console").text)})
    attacker = from_address(site, "127.0.0.2")
    statuses = [sign_in_from(attacker, "anna", f"guess-{n}").status_code for n in range(12)]
    assert statuses[:5] == [401] * 5 and 429 in statuses
    # The owner, from the address where she signed in before, is not slowed down.
    assert sign_in_from(owner, "anna", PASSWORDS["anna"]).status_code == 303
    # Nor from a new address, in the browser that signed in before (its device cookie).
    travelling = from_address(site, "127.0.0.3")
    travelling.cookies.update({"tonebot_device": owner.cookies["tonebot_device"]})
    assert sign_in_from(travelling, "anna", PASSWORDS["anna"]).status_code == 303
    # A stranger's browser at a new address is slowed down like the attacker.
    stranger = from_address(site, "127.0.0.4")
    assert sign_in_from(stranger, "anna", PASSWORDS["anna"]).status_code == 429


def test_one_address_guessing_many_names_is_refused_without_a_password_check(site: Site) -> None:
    guesser = from_address(site, "127.0.0.5")
    statuses = [sign_in_from(guesser, f"name{n}", "guess-guess").status_code for n in range(20)]
    assert statuses == [401] * 20
    refused = sign_in_from(guesser, "boris", PASSWORDS["boris"])
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 60
    # The budget is per address: boris elsewhere signs in as usual.
    assert sign_in_from(from_address(site, "127.0.0.6"), "boris", PASSWORDS["boris"]).status_code == 303


def test_a_hash_of_an_older_cost_is_renewed_at_sign_in(site: Site) -> None:
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"olga-old-pass-1", salt=salt, n=2**14, r=8, p=1, dklen=32)
    old = f"scrypt${2**14}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    site.runtime.desk_store.set_password("olga", old)
    olga = site.sign_in("olga", "olga-old-pass-1")
    stored = site.runtime.desk_store.operator("olga")
    assert stored is not None
    assert stored.password_hash.startswith(f"scrypt${N}$8$1$")
    assert verify_password("olga-old-pass-1", stored.password_hash)
    # The renewal keeps the session that was just opened.
    assert olga.http.get("/console").status_code == 200


def test_throttle_delay_grows_and_stops_at_its_cap() -> None:
    throttle = SignInThrottle(name_max_delay_s=60.0)
    now = 1000.0
    waits: list[int] = []
    while len(waits) < 8:
        wait = throttle.begin("anna", "10.0.0.9", now)
        if wait:
            waits.append(round(wait))
            now += wait
            continue
        throttle.finish("anna", "10.0.0.9", False, now)
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60]
    # The owner somewhere new waits at most the cap, then her right password is checked.
    assert 0 < throttle.begin("anna", "10.0.0.1", now - 0.5) <= 60.0
    assert throttle.begin("anna", "10.0.0.1", now) == 0.0
    throttle.finish("anna", "10.0.0.1", True, now)
    # From then on her address is known: the guesser's next failure does not slow her down.
    assert throttle.begin("anna", "10.0.0.9", now) == 0.0
    throttle.finish("anna", "10.0.0.9", False, now)
    assert throttle.begin("anna", "10.0.0.1", now + 0.1) == 0.0


def test_throttle_memory_is_bounded() -> None:
    throttle = SignInThrottle()
    for n in range(30_000):
        address, name = f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", f"name{n}"
        assert throttle.begin(name, address, float(n)) == 0.0
        throttle.finish(name, address, False, float(n))
    assert len(throttle._by_address) <= 10_000 and len(throttle._by_name) <= 10_000
    assert not throttle._in_flight


# --- a very long word in the persona cues wraps ----------------------------------------------------------


@pytest.mark.browser
def test_a_very_long_cue_does_not_widen_the_conversation_page(site: Site) -> None:
    visitor = site.visitor()
    visitor.say("позовите оператора")
    cid = visitor.conversation_id
    with site.runtime.store.engine.begin() as connection:
        state = json.loads(
            connection.execute(
                select(conversations.c.state_json).where(conversations.c.id == cid)
            ).scalar_one()
        )
        state["persona_cues"] = ["aggressor:" + "ы" * 4000]
        connection.execute(
            update(conversations).where(conversations.c.id == cid).values(state_json=json.dumps(state))
        )
    anna = site.sign_in("anna")
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies(
            [{"name": SESSION_COOKIE, "value": anna.http.cookies[SESSION_COOKIE], "url": site.url}]
        )
        page = context.new_page()
        page.goto(f"{site.url}/console/conversations/{cid}")
        assert page.locator(".cues li").count() == 1
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1280, f"the page is {width} px wide"


# --- the task page and the campaign pages: every route, the same checks first ---------------------------

CAMPAIGN = "autumn_offer"
SECRET_CHAT = "secret-chat-7777"
CALLBACK_PHONE = "+79135550000"
TASK_FORM = {"due": "2030-01-02T10:00", "outcome": "сделано", "converted": "1", "note": "перенесли"}


def work_routes() -> list[tuple[str, str]]:
    """(method, path) of every route of the task, campaign, inbox and analytics pages, as their routers
    declare them."""
    found = []
    for router in (tasks_pages.router, campaign_pages.router, inbox_pages.router, analytics_pages.router):
        for route in router.routes:
            assert isinstance(route, APIRoute)
            found += [(method, route.path) for method in sorted(route.methods)]
    return found


def task_and_recipient(site: Site) -> tuple[int, str]:
    """A call-back the web chat's client asked for, and a campaign's recipient in that conversation."""
    visitor = site.visitor()
    for text in ("перезвоните мне", CALLBACK_PHONE, "завтра с 10 до 12"):
        visitor.say(text)
    cid = visitor.conversation_id
    with site.runtime.store.engine.begin() as connection:
        task_id = int(connection.execute(select(tasks.c.id)).scalar_one())
        connection.execute(
            recipients.insert().values(
                campaign=CAMPAIGN,
                channel="telegram",
                chat_id=SECRET_CHAT,
                conversation_id=cid,
                persona="talker",
                time_zone="",
                status="replied",
                reason="",
                event_id="",
                steps_sent=1,
                attempt=1,
                external_id="",
                queued_at=datetime.now(UTC),
            )
        )
    return task_id, str(cid)


def work_state(site: Site) -> tuple[list[Any], list[Any]]:
    """The tasks and recipients rows as they stand."""
    with site.runtime.store.engine.connect() as connection:
        return (
            [tuple(row) for row in connection.execute(select(tasks).order_by(tasks.c.id))],
            [tuple(row) for row in connection.execute(select(recipients).order_by(recipients.c.id))],
        )


def filled(path: str, task_id: int) -> str:
    # The inbox's conversation pages: any id, the refusals come before it is looked up.
    return path.format(task_id=task_id, campaign=CAMPAIGN, conversation_id=task_id)


def test_the_work_pages_have_get_and_post_routes_to_check() -> None:
    routes = work_routes()
    assert {method for method, _ in routes} == {"GET", "POST"}
    assert ("GET", "/console/tasks") in routes and (
        "GET",
        "/console/campaigns/{campaign}/recipients",
    ) in routes
    assert sum(method == "POST" for method, _ in routes) >= 3


def test_work_pages_are_refused_before_anything_renders_without_a_session(site: Site) -> None:
    task_id, _cid = task_and_recipient(site)
    before = work_state(site)
    # A CSRF token from a real session: the token alone signs nobody in.
    csrf = site.sign_in("anna").csrf
    audit_before = audit_lines(site)
    anonymous = site.client()
    forged = site.client()
    forged.cookies.set(SESSION_COOKIE, "x" * 43)
    for http in (anonymous, forged):
        for method, path in work_routes():
            url = filled(path, task_id)
            if method == "GET":
                response = http.get(url)
                assert response.status_code == 303, url
                assert response.headers["location"].startswith("/console/login"), url
            else:
                response = http.post(url, data={"csrf": csrf, **TASK_FORM})
                assert response.status_code == 401, url
            for secret in (CALLBACK_PHONE, SECRET_CHAT, "Обратный звонок", "ответили"):
                assert secret not in response.text, (url, secret)
    assert work_state(site) == before
    assert audit_lines(site) == audit_before


def test_task_actions_need_the_sessions_csrf_token(site: Site) -> None:
    task_id, _cid = task_and_recipient(site)
    anna = site.sign_in("anna")
    boris = site.sign_in("boris")
    before = work_state(site)
    audit_before = audit_lines(site)
    posts = [filled(path, task_id) for method, path in work_routes() if method == "POST"]
    for url in posts:
        for bad in ("forged-token-123", boris.csrf, ""):
            response = anna.http.post(url, data={"csrf": bad, **TASK_FORM})
            assert response.status_code in ((403, 422) if not bad else (403,)), (url, bad)
            assert CALLBACK_PHONE not in response.text and "Обратный звонок" not in response.text
            if response.status_code == 403:
                assert response.headers["cache-control"] == "no-store"
        missing = anna.http.post(url, data=TASK_FORM)
        assert missing.status_code in (403, 422), url
    assert work_state(site) == before
    assert audit_lines(site) == audit_before
    # With her own token the same form works: the refusals above were the token's.
    taken = anna.http.post(f"/console/tasks/{task_id}/take", data={"csrf": anna.csrf})
    assert taken.status_code == 303
    assert work_state(site) != before


@pytest.mark.parametrize("raw_id", [str(2**70), str(2**63), "0", "123456"])
def test_task_ids_out_of_range_or_unknown_are_not_found(site: Site, raw_id: str) -> None:
    anna = site.sign_in("anna")
    for action in ("take", "done", "reschedule"):
        response = anna.http.post(f"/console/tasks/{raw_id}/{action}", data={"csrf": anna.csrf, **TASK_FORM})
        assert response.status_code == 404, (raw_id, action, response.text[:200])
        assert "Такой задачи нет" in response.text


def test_campaign_pages_refuse_operators_before_reading_and_serve_team_leads(site: Site) -> None:
    task_id, cid = task_and_recipient(site)
    anna = site.sign_in("anna")
    gets = [
        filled(path, task_id) for method, path in work_routes() if method == "GET" and "campaigns" in path
    ]
    assert len(gets) >= 3
    for url in gets:
        response = anna.http.get(url + "?step=replied")
        assert response.status_code == 403, url
        assert "руководители групп и администраторы" in response.text
        assert SECRET_CHAT not in response.text and CAMPAIGN not in response.text.split("<main", 1)[1]
        assert response.headers["cache-control"] == "no-store"
    refused = [
        detail for op, action, _cid, detail in audit_lines(site) if (op, action) == ("anna", "refused")
    ]
    assert len(refused) == len(gets) and all(detail.startswith("campaign") for detail in refused)
    # A team lead sees them all, and the campaign's conversation they link to.
    site.runtime.desk_store.add_operator(
        "lena", hash_password("lena-pass-1234"), "Лена", "lead", datetime.now(UTC)
    )
    lena = site.sign_in("lena", "lena-pass-1234")
    for url in gets:
        response = lena.http.get(url + "?step=replied")
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == "no-store"
    assert SECRET_CHAT in lena.http.get(f"/console/campaigns/{CAMPAIGN}/recipients?step=replied").text
    assert lena.page(int(cid)).status_code == 200
    for bad in ("../x", "A-B", "x" * 101):
        assert lena.http.get(f"/console/campaigns/{bad}").status_code == 404
    assert lena.http.get(f"/console/campaigns/{CAMPAIGN}/recipients?step=nonsense").status_code == 404
