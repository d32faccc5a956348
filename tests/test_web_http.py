"""The web app over real HTTP (uvicorn on 127.0.0.1, httpx clients): sign-in, CSRF, escaping, the web chat
API and the operators' console flow, checked against what the database holds afterwards."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from common.messages import IncomingMessage
from operators.passwords import hash_password, verify_password
from storage.tables import clients, conversations
from tests.support.webserver import add_operator, always_open, serving, web_runtime
from web.webchat import visitor_id
from wiring.runtime import Runtime

PASSWORDS = {"anna": "anna-pass-1234", "boris": "boris-pass-5678", "olga": "olga-pass-9012"}
DISPLAY_NAMES = {"anna": "Анна", "boris": "Борис", "olga": "Ольга"}
CHAT_HEADERS = {"X-Tonebot-Chat": "1"}
SESSION_COOKIE = "tonebot_session"
LOGIN_CSRF_COOKIE = "tonebot_login_csrf"
VISITOR_COOKIE = "tonebot_visitor"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
ACTIONS = ("take", "reply", "hand-back", "close", "transfer", "merge")


# --- the site and its users -------------------------------------------------------------------------


class Site:
    """A served app over a fresh database, with the clients opened on it (closed at the end)."""

    def __init__(self, runtime: Runtime, url: str) -> None:
        self.runtime, self.url = runtime, url
        self._clients: list[httpx.Client] = []

    def client(self) -> httpx.Client:
        http = httpx.Client(base_url=self.url, timeout=10, follow_redirects=False)
        self._clients.append(http)
        return http

    def close(self) -> None:
        for http in self._clients:
            http.close()

    def visitor(self) -> Visitor:
        return Visitor(self)

    def sign_in(self, name: str, password: str | None = None) -> Operator:
        http = self.client()
        password = PASSWORDS[name] if password is None else password
        response = http.post(
            "/console/login",
            data={"name": name, "password": password, "csrf": login_csrf(http), "next": "/console"},
        )
        assert response.status_code == 303, response.text
        queue = http.get("/console")
        assert queue.status_code == 200
        return Operator(self, name, http, csrf_of(queue.text))

    def handoff(self, conversation_id: int) -> Any:
        view = self.runtime.desk_store.conversation(conversation_id)
        assert view is not None and view.handoff is not None
        return view.handoff

    def status(self, conversation_id: int) -> str:
        view = self.runtime.desk_store.conversation(conversation_id)
        assert view is not None
        return str(view.conversation.status)

    def conversation_id(self, channel: str, chat_id: str) -> int:
        with self.runtime.store.engine.connect() as connection:
            found = connection.execute(
                select(conversations.c.id)
                .where(conversations.c.channel == channel, conversations.c.chat_id == chat_id)
                .order_by(conversations.c.id.desc())
            ).first()
        assert found is not None, f"no conversation in {channel} chat {chat_id}"
        return int(found.id)

    def telegram(self, chat: str, text: str) -> None:
        """A Telegram client's message, through the same conversation service the adapter uses."""
        count = len(self.runtime.desk_store.chat_messages("telegram", chat, 0))
        self.runtime.service.handle(
            IncomingMessage(
                channel="telegram",
                chat_id=chat,
                user_id=chat,
                text=text,
                at=datetime.now(UTC),
                message_id=f"tg-{count}",
            )
        )


class Visitor:
    """A client of the web chat: has the visitor cookie the chat page gives."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.http = site.client()
        page = self.http.get("/chat")
        assert page.status_code == 200
        # The web chat stores a derived id, never the cookie's secret itself.
        self.id = visitor_id(self.http.cookies[VISITOR_COOKIE])
        self.sent = 0

    def post(self, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.http.post(
            "/chat/api/messages", json=body, headers=CHAT_HEADERS if headers is None else headers
        )

    def say(self, text: str = "", payload: str | None = None) -> list[Any]:
        """Send a message; the rows it added to the chat (the client's message and any answers)."""
        before = self.last_id()
        self.sent += 1
        body: dict[str, Any] = {"id": f"m{self.sent}", "text": text}
        if payload is not None:
            body["payload"] = payload
        response = self.post(body)
        assert response.status_code == 202, response.text
        return self.rows(before)

    def rows(self, after: int = 0) -> list[Any]:
        return self.site.runtime.desk_store.chat_messages("web", self.id, after)

    def last_id(self) -> int:
        rows = self.rows()
        return rows[-1].id if rows else 0

    @property
    def conversation_id(self) -> int:
        return self.site.conversation_id("web", self.id)


class Operator:
    """A signed-in console user."""

    def __init__(self, site: Site, name: str, http: httpx.Client, csrf: str) -> None:
        self.site, self.name, self.http, self.csrf = site, name, http, csrf

    def act(self, conversation_id: int, action: str, csrf: str | None = None, **form: str) -> httpx.Response:
        data = {"csrf": self.csrf if csrf is None else csrf, **form}
        return self.http.post(f"/console/conversations/{conversation_id}/{action}", data=data)

    def queue(self) -> str:
        response = self.http.get("/console")
        assert response.status_code == 200
        return response.text

    def page(self, conversation_id: int) -> httpx.Response:
        return self.http.get(f"/console/conversations/{conversation_id}")

    def live(self, conversation_id: int) -> httpx.Response:
        return self.http.get(f"/console/conversations/{conversation_id}/live")


def login_csrf(http: httpx.Client) -> str:
    form = http.get("/console/login")
    assert form.status_code == 200
    assert http.cookies.get(LOGIN_CSRF_COOKIE)
    return csrf_of(form.text)


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers of a response by cookie name."""
    found = {}
    for header in response.headers.get_list("set-cookie"):
        found[header.split("=", 1)[0].strip()] = header
    return found


def sections(queue_html: str) -> tuple[list[int], list[int]]:
    """Conversation ids in the queue's "Мои категории" and "Остальные" sections, in page order."""
    assert "Мои категории" in queue_html and "Остальные" in queue_html
    mine = queue_html.split("Мои категории", 1)[1].split("Остальные", 1)[0]
    others = queue_html.split("Остальные", 1)[1]

    def ids(part: str) -> list[int]:
        return [int(x) for x in re.findall(r'data-conversation="(\d+)"', part)]

    return ids(mine), ids(others)


def policy(response: httpx.Response) -> dict[str, list[str]]:
    header = response.headers.get("content-security-policy", "")
    assert header, f"{response.request.url} has no Content-Security-Policy"
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {d[0]: d[1:] for d in directives}


def bot_rows(rows: list[Any]) -> list[Any]:
    return [row for row in rows if row.direction == "out" and row.author == "bot"]


@pytest.fixture(scope="module")
def password_hashes() -> dict[str, str]:
    """scrypt is slow on purpose: hash the operators' passwords once for the module."""
    return {name: hash_password(password) for name, password in PASSWORDS.items()}


@pytest.fixture
def site(tmp_path: Path, content_copy: Path, password_hashes: dict[str, str]) -> Iterator[Site]:
    runtime = web_runtime(tmp_path, always_open(content_copy))
    for name, hashed in password_hashes.items():
        runtime.desk_store.add_operator(name, hashed, DISPLAY_NAMES[name], "operator", datetime.now(UTC))
    with serving(runtime) as url:
        served = Site(runtime, url)
        try:
            yield served
        finally:
            served.close()


def waiting_web_conversation(site: Site, first: str = "позовите оператора") -> tuple[Visitor, int]:
    visitor = site.visitor()
    visitor.say(first)
    conversation_id = visitor.conversation_id
    assert site.handoff(conversation_id).status == "waiting"
    return visitor, conversation_id


# --- 1. nobody reads a conversation without signing in ------------------------------------------------


def test_console_pages_redirect_to_sign_in_without_showing_the_conversation(site: Site) -> None:
    _visitor, cid = waiting_web_conversation(site, "позовите оператора, секретный договор 7777777")
    anonymous = site.client()
    for path in ("/console", f"/console/conversations/{cid}", "/console/queue/rows"):
        response = anonymous.get(path)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/console/login"), path
        assert "7777777" not in response.text
    # A made-up session token is no session either.
    forged = site.client()
    forged.cookies.set(SESSION_COOKIE, "x" * 43)
    response = forged.get(f"/console/conversations/{cid}")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login")
    assert site.runtime.desk_store.audit(cid) == []


def test_live_fragment_and_stream_refuse_without_a_session(site: Site) -> None:
    _visitor, cid = waiting_web_conversation(site, "позовите оператора, секретный договор 7777777")
    anonymous = site.client()
    live = anonymous.get(f"/console/conversations/{cid}/live")
    assert live.status_code in (303, 401)
    if live.status_code == 303:
        assert live.headers["location"].startswith("/console/login")
    assert "7777777" not in live.text and "позовите" not in live.text
    stream = anonymous.get("/console/stream", timeout=5)
    assert stream.status_code == 401
    assert "text/event-stream" not in stream.headers.get("content-type", "")
    chat_stream = site.client().get("/chat/api/stream", timeout=5)
    assert chat_stream.status_code == 401


@pytest.mark.parametrize("action", ACTIONS)
def test_actions_without_a_session_change_nothing(site: Site, action: str) -> None:
    visitor, cid = waiting_web_conversation(site)
    rows_before = len(visitor.rows())
    # Even with a CSRF token taken from a real session: the token alone signs nobody in.
    csrf = site.sign_in("anna").csrf
    anonymous = site.client()
    response = anonymous.post(
        f"/console/conversations/{cid}/{action}",
        data={"csrf": csrf, "text": "ответ без входа", "category": "billing"},
    )
    assert response.status_code == 401
    handoff = site.handoff(cid)
    assert (handoff.status, handoff.category, handoff.taken_by) == ("waiting", "general", "")
    assert site.status(cid) == "handed_off"
    assert len(visitor.rows()) == rows_before
    assert site.runtime.desk_store.audit(cid) == []


# --- 2. sign-in ----------------------------------------------------------------------------------------


def test_wrong_password_is_refused_without_a_session(site: Site) -> None:
    http = site.client()
    for name, password in (("anna", "not-the-password"), ("nobody", PASSWORDS["anna"])):
        response = http.post(
            "/console/login",
            data={"name": name, "password": password, "csrf": login_csrf(http), "next": "/console"},
        )
        assert response.status_code == 401
        assert SESSION_COOKIE not in set_cookies(response)
        assert "Неверное имя или пароль" in response.text
    assert SESSION_COOKIE not in http.cookies
    assert http.get("/console").status_code == 303


def test_right_password_gives_an_httponly_session_cookie(site: Site) -> None:
    http = site.client()
    response = http.post(
        "/console/login",
        data={"name": "anna", "password": PASSWORDS["anna"], "csrf": login_csrf(http), "next": "/console"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console"
    cookie = set_cookies(response)[SESSION_COOKIE].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    token = http.cookies[SESSION_COOKIE]
    assert len(token) >= 32
    queue = http.get("/console")
    assert queue.status_code == 200
    assert "Анна" in queue.text


def test_sign_in_never_redirects_off_the_console(site: Site) -> None:
    for target in ("https://evil.example/", "//evil.example/console", "/chat"):
        http = site.client()
        response = http.post(
            "/console/login",
            data={"name": "anna", "password": PASSWORDS["anna"], "csrf": login_csrf(http), "next": target},
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/console", target


def test_five_wrong_passwords_slow_that_name_down(site: Site) -> None:
    http = site.client()
    csrf = login_csrf(http)
    for _ in range(5):
        wrong = http.post("/console/login", data={"name": "anna", "password": "guess-guess", "csrf": csrf})
        assert wrong.status_code == 401
    right = http.post("/console/login", data={"name": "anna", "password": PASSWORDS["anna"], "csrf": csrf})
    assert right.status_code == 429
    assert int(right.headers["retry-after"]) >= 1
    assert "Слишком много попыток входа" in right.text
    assert SESSION_COOKIE not in set_cookies(right)
    assert http.get("/console").status_code == 303
    # The delay is for the guessed name only: another operator signs in as usual.
    boris = site.sign_in("boris")
    assert "Борис" in boris.queue()


def test_four_wrong_passwords_do_not_pause(site: Site) -> None:
    http = site.client()
    csrf = login_csrf(http)
    for _ in range(4):
        wrong = http.post("/console/login", data={"name": "anna", "password": "guess-guess", "csrf": csrf})
        assert wrong.status_code == 401
    right = http.post("/console/login", data={"name": "anna", "password": PASSWORDS["anna"], "csrf": csrf})
    assert right.status_code == 303
    assert SESSION_COOKIE in set_cookies(right)


def test_parallel_guesses_get_no_more_checks_than_guessing_one_by_one(site: Site) -> None:
    """From one address one password check at a time: the rest are refused without a check."""
    http = site.client()
    csrf = login_csrf(http)
    cookie = http.cookies[LOGIN_CSRF_COOKIE]
    statuses: list[int] = []

    def guess(attempt: int) -> None:
        guesser = site.client()
        guesser.cookies.set(LOGIN_CSRF_COOKIE, cookie)
        response = guesser.post(
            "/console/login", data={"name": "anna", "password": f"guess-{attempt}", "csrf": csrf}
        )
        statuses.append(response.status_code)

    checked_per_burst = []
    for burst in range(10):
        before = statuses.count(401)
        threads = [threading.Thread(target=guess, args=(burst * 10 + i,)) for i in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        checked_per_burst.append(statuses.count(401) - before)
        if statuses.count(401) >= 5:
            break
    # Ten guesses at once from one address: one is checked, the others are refused unchecked (a second may
    # slip in after the first ends).
    assert all(1 <= checked <= 2 for checked in checked_per_burst), checked_per_burst
    assert set(statuses) == {401, 429}
    right = http.post("/console/login", data={"name": "anna", "password": PASSWORDS["anna"], "csrf": csrf})
    assert right.status_code == 429, "five wrong guesses in parallel, yet the name is not slowed down"
    assert SESSION_COOKIE not in set_cookies(right)


def test_stored_password_is_a_salted_scrypt_hash(site: Site) -> None:
    store = site.runtime.desk_store
    anna, boris = store.operator("anna"), store.operator("boris")
    assert anna is not None and boris is not None
    assert anna.password_hash.startswith("scrypt$")
    assert PASSWORDS["anna"] not in anna.password_hash
    assert verify_password(PASSWORDS["anna"], anna.password_hash)
    assert not verify_password(PASSWORDS["boris"], anna.password_hash)
    add_operator(site.runtime, "twin", PASSWORDS["anna"])
    twin = store.operator("twin")
    assert twin is not None and twin.password_hash != anna.password_hash


def test_sign_out_ends_the_session_on_the_server(site: Site) -> None:
    anna = site.sign_in("anna")
    token = anna.http.cookies[SESSION_COOKIE]
    response = anna.http.post("/console/logout", data={"csrf": anna.csrf})
    assert response.status_code == 303
    replay = site.client()
    replay.cookies.set(SESSION_COOKIE, token)
    assert replay.get("/console").status_code == 303


# --- 3. CSRF -------------------------------------------------------------------------------------------


def test_login_without_the_matching_csrf_cookie_is_refused(site: Site) -> None:
    # No login cookie at all: a form posted from another site.
    stranger = site.client()
    response = stranger.post(
        "/console/login", data={"name": "anna", "password": PASSWORDS["anna"], "csrf": "forged-token-123"}
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in set_cookies(response)
    # A login cookie, but the field does not match it.
    http = site.client()
    real = login_csrf(http)
    response = http.post(
        "/console/login", data={"name": "anna", "password": PASSWORDS["anna"], "csrf": real + "x"}
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in set_cookies(response)
    # An empty or missing field is refused too (FastAPI's form validation answers 422 first).
    for data in ({"csrf": ""}, {}):
        response = http.post("/console/login", data={"name": "anna", "password": PASSWORDS["anna"], **data})
        assert response.status_code in (403, 422), data
        assert SESSION_COOKIE not in set_cookies(response)
    assert SESSION_COOKIE not in http.cookies and SESSION_COOKIE not in stranger.cookies
    assert http.get("/console").status_code == 303


def test_console_actions_need_the_sessions_csrf_token(site: Site) -> None:
    visitor, cid = waiting_web_conversation(site)
    anna = site.sign_in("anna")
    boris = site.sign_in("boris")
    assert boris.csrf != anna.csrf

    def refused(action: str, csrf: str, **form: str) -> None:
        rows = len(visitor.rows())
        handoff = site.handoff(cid)
        audit = len(site.runtime.desk_store.audit(cid))
        response = anna.act(cid, action, csrf=csrf, **form)
        assert response.status_code == 403, (action, csrf)
        after = site.handoff(cid)
        assert (after.status, after.taken_by, after.category) == (
            handoff.status,
            handoff.taken_by,
            handoff.category,
        )
        assert len(visitor.rows()) == rows
        assert len(site.runtime.desk_store.audit(cid)) == audit

    # Wrong token, and another session's real token.
    for bad in ("wrong-token", boris.csrf):
        refused("take", bad)
    assert site.handoff(cid).status == "waiting"
    assert anna.act(cid, "take").status_code == 303
    assert site.handoff(cid).status == "taken"

    refused("reply", "wrong-token", text="поддельный ответ")
    assert not [row for row in visitor.rows() if row.author == "anna"]
    assert anna.act(cid, "reply", text="Настоящий ответ").status_code == 303
    assert [row.text for row in visitor.rows() if row.author == "anna"] == ["Настоящий ответ"]

    refused("transfer", boris.csrf, category="billing")
    refused("close", "wrong-token")
    assert site.handoff(cid).status == "taken"
    assert anna.act(cid, "close").status_code == 303
    assert site.handoff(cid).status == "closed"


def test_action_without_a_csrf_field_changes_nothing(site: Site) -> None:
    _visitor, cid = waiting_web_conversation(site)
    anna = site.sign_in("anna")
    response = anna.http.post(f"/console/conversations/{cid}/take", data={})
    assert response.status_code in (403, 422)
    assert site.handoff(cid).status == "waiting"


# --- 4. escaping ---------------------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"
SCRIPT_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
IMG_ESCAPED = "&lt;img src=x onerror=alert(2)&gt;"


def assert_no_raw_markup(html: str) -> None:
    assert "<script>alert" not in html
    assert "<img" not in html
    assert "onerror=alert(2)>" not in html
    # Every script element the console serves is a file of our own.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []


@pytest.mark.parametrize("channel", ["web", "telegram"])
def test_client_markup_is_shown_escaped_everywhere(site: Site, channel: str) -> None:
    if channel == "web":
        visitor = site.visitor()

        def send(text: str) -> None:
            visitor.say(text)

        chat = visitor.id
    else:
        chat = "4242"

        def send(text: str) -> None:
            site.telegram(chat, text)

    send(f"{SCRIPT} позовите оператора")
    send(IMG)
    cid = site.conversation_id(channel, chat)
    assert site.handoff(cid).status == "waiting"
    # What the database keeps is the client's text as written.
    texts = [row.text for row in site.runtime.desk_store.chat_messages(channel, chat, 0)]
    assert f"{SCRIPT} позовите оператора" in texts and IMG in texts

    anna = site.sign_in("anna")
    queue = anna.queue()
    assert f'data-conversation="{cid}"' in queue
    assert IMG_ESCAPED in queue  # the queue previews the last message
    assert_no_raw_markup(queue)
    send(SCRIPT)
    queue = anna.queue()
    assert SCRIPT_ESCAPED in queue
    assert_no_raw_markup(queue)
    rows = anna.http.get("/console/queue/rows")
    assert rows.status_code == 200 and SCRIPT_ESCAPED in rows.text
    assert_no_raw_markup(rows.text)

    for response in (anna.page(cid), anna.live(cid)):
        assert response.status_code == 200
        assert SCRIPT_ESCAPED in response.text
        assert IMG_ESCAPED in response.text
        assert_no_raw_markup(response.text)


def test_operator_display_name_and_reply_with_markup_are_escaped(site: Site) -> None:
    name = 'Ева"><b onmouseover=alert(3)>x</b>'
    add_operator(site.runtime, "eve", "eve-pass-3456", name)
    visitor, cid = waiting_web_conversation(site)
    eve = site.sign_in("eve", "eve-pass-3456")
    assert eve.act(cid, "take").status_code == 303
    reply = "<script>alert(5)</script><img src=y onerror=alert(6)>"
    assert eve.act(cid, "reply", text=reply).status_code == 303
    assert [row.text for row in visitor.rows() if row.author == "eve"] == [reply]
    # The client is told who joined: the name is stored as written, shown escaped.
    assert any(name in row.text for row in bot_rows(visitor.rows()))

    for response in (eve.page(cid), eve.live(cid), eve.http.get("/console")):
        assert response.status_code == 200
        html = response.text
        assert "<b onmouseover" not in html
        assert '"><b ' not in html
        assert "<script>alert" not in html and "<img" not in html
        assert "&lt;b onmouseover=alert(3)&gt;" in html
    page = eve.page(cid).text
    assert "&lt;script&gt;alert(5)&lt;/script&gt;&lt;img src=y onerror=alert(6)&gt;" in page
    # The suggestions carry the name inside an attribute: the quote must not end it.
    assert "data-text=" in page
    assert 'Ева"' not in page
    assert "Ева&#34;&gt;&lt;b" in page


def test_client_display_name_with_markup_is_escaped(site: Site) -> None:
    _visitor, cid = waiting_web_conversation(site)
    view = site.runtime.desk_store.conversation(cid)
    assert view is not None
    with site.runtime.store.engine.begin() as connection:
        connection.execute(
            update(clients)
            .where(clients.c.id == view.conversation.client_id)
            .values(display_name="<svg onload=alert(7)>")
        )
    anna = site.sign_in("anna")
    for html in (anna.queue(), anna.page(cid).text, anna.live(cid).text):
        assert "&lt;svg onload=alert(7)&gt;" in html
        assert "<svg" not in html


def test_login_form_escapes_the_next_parameter(site: Site) -> None:
    http = site.client()
    response = http.get("/console/login", params={"next": '/console"><script>alert(8)</script>'})
    assert response.status_code == 200
    assert "<script>alert(8)" not in response.text
    assert "&lt;script&gt;alert(8)" in response.text


def test_pages_forbid_inline_scripts(site: Site) -> None:
    _visitor, cid = waiting_web_conversation(site)
    anna = site.sign_in("anna")
    responses = [
        site.client().get("/console/login"),
        site.client().get("/chat"),
        anna.http.get("/console"),
        anna.http.get("/console/queue/rows"),
        anna.page(cid),
        anna.live(cid),
    ]
    for response in responses:
        assert response.status_code == 200
        directives = policy(response)
        assert directives["script-src"] == ["'self'"], response.request.url
        assert directives["default-src"] == ["'self'"]
        assert "'unsafe-inline'" not in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
    # Only the chat may be framed by other sites; the console may not.
    assert policy(responses[1])["frame-ancestors"] == ["*"]
    assert policy(responses[2])["frame-ancestors"] == ["'self'"]


# --- 5. the web chat API -------------------------------------------------------------------------------


def test_chat_post_needs_the_chat_header(site: Site) -> None:
    visitor = site.visitor()
    for headers in ({}, {"X-Tonebot-Chat": "0"}):
        response = visitor.post({"id": "h1", "text": "позовите оператора"}, headers=headers)
        assert response.status_code == 403
        assert "error" in response.json()
    assert visitor.rows() == []
    assert visitor.post({"id": "h1", "text": "здравствуйте"}).status_code == 202
    assert [row.text for row in visitor.rows() if row.direction == "in"] == ["здравствуйте"]


def test_chat_post_needs_a_visitor_cookie(site: Site) -> None:
    http = site.client()
    response = http.post("/chat/api/messages", json={"id": "1", "text": "привет"}, headers=CHAT_HEADERS)
    assert response.status_code == 401
    assert "error" in response.json()
    http.cookies.set(VISITOR_COOKIE, "short")
    response = http.post("/chat/api/messages", json={"id": "1", "text": "привет"}, headers=CHAT_HEADERS)
    assert response.status_code == 401
    with site.runtime.store.engine.connect() as connection:
        assert connection.execute(select(conversations.c.id)).first() is None


def test_chat_text_over_4096_characters_is_refused_politely(site: Site) -> None:
    visitor = site.visitor()
    for text in ("я" * 4097, "a" * 5000):
        response = visitor.post({"id": "long", "text": text})
        assert response.status_code == 413
        error = response.json()["error"]
        assert re.search("[а-яё]", error, re.IGNORECASE)
        assert "пожалуйста" in error
        assert "Traceback" not in response.text
    oversized = visitor.http.post(
        "/chat/api/messages",
        content=json.dumps({"id": "huge", "text": "x" * 70_000}),
        headers={**CHAT_HEADERS, "Content-Type": "application/json"},
    )
    assert oversized.status_code == 413
    assert "error" in oversized.json()
    assert visitor.rows() == []
    # The limit counts characters, not bytes: 4096 Cyrillic letters (8 KiB) are accepted.
    assert visitor.post({"id": "edge", "text": "я" * 4096}).status_code == 202
    assert [len(row.text) for row in visitor.rows() if row.direction == "in"] == [4096]


def test_chat_empty_text_without_payload_is_refused(site: Site) -> None:
    visitor = site.visitor()
    for body in ({"id": "e1", "text": ""}, {"id": "e2", "text": "   \n"}, {"id": "e3"}):
        response = visitor.post(body)
        assert response.status_code == 422, body
        assert response.json()["error"]
    assert visitor.rows() == []


def test_chat_malformed_json_is_a_422_without_internals(site: Site) -> None:
    visitor = site.visitor()
    bodies = [b"{not json", b"[]", b'{"text": "no id"}', b'{"id": 5, "text": "id is a number"}', b"\xff\xfe"]
    for body in bodies:
        response = visitor.http.post(
            "/chat/api/messages",
            content=body,
            headers={**CHAT_HEADERS, "Content-Type": "application/json"},
        )
        assert response.status_code == 422, body
        payload = response.json()
        assert set(payload) == {"error"}
        assert re.search("[а-яё]", payload["error"], re.IGNORECASE)
        for internal in ("Traceback", "pydantic", "ValidationError", "json_invalid", 'File "'):
            assert internal not in response.text
    assert visitor.rows() == []


def test_a_repeated_message_id_is_stored_once(site: Site) -> None:
    visitor = site.visitor()
    first = visitor.post({"id": "same-id", "text": "как оплатить интернет?"})
    assert first.status_code == 202
    rows = visitor.rows()
    assert [row.external_id for row in rows if row.direction == "in"] == ["same-id"]
    answers = len(bot_rows(rows))
    assert answers >= 1
    again = visitor.post({"id": "same-id", "text": "как оплатить интернет?"})
    assert again.status_code in (200, 202)
    rows = visitor.rows()
    assert [row.external_id for row in rows if row.direction == "in"] == ["same-id"]
    assert len(bot_rows(rows)) == answers


# --- 6. the console flow -------------------------------------------------------------------------------


def test_handoff_from_the_web_chat_is_in_my_categories(site: Site) -> None:
    visitor = site.visitor()
    answer = visitor.say("позовите оператора")
    assert bot_rows(answer), "the client is told a person will answer"
    cid = visitor.conversation_id
    handoff = site.handoff(cid)
    assert (handoff.category, handoff.reason, handoff.status) == ("general", "client_asked", "waiting")
    anna_mine, anna_others = sections(site.sign_in("anna").queue())
    assert cid in anna_mine and cid not in anna_others
    # boris answers tech only: for him the same conversation is somebody else's.
    boris_mine, boris_others = sections(site.sign_in("boris").queue())
    assert cid in boris_others and cid not in boris_mine


def test_urgent_conversations_come_first_in_the_queue(site: Site) -> None:
    _calm, calm_id = waiting_web_conversation(site)
    threatening = site.visitor()
    threatening.say("интернета нет неделю")
    threatening.say("я подам на вас в суд")
    rude = site.visitor()
    rude.say("вы там все дебилы что ли")
    rude.say("позовите оператора")
    threat_id, rude_id = threatening.conversation_id, rude.conversation_id
    assert (site.handoff(threat_id).reason, site.handoff(threat_id).priority) == ("escalation", "high")
    assert site.handoff(rude_id).priority == "high"
    assert site.handoff(calm_id).priority == "normal"

    queue = site.sign_in("anna").queue()
    mine, _others = sections(queue)
    assert mine == [threat_id, rude_id, calm_id]
    urgent_row = re.search(rf'<tr class="item priority-high[^"]*" data-conversation="{threat_id}"', queue)
    assert urgent_row is not None
    assert re.search(rf'<tr class="item priority-normal[^"]*" data-conversation="{calm_id}"', queue)
    assert queue.count('<strong class="urgent">срочно</strong>') == 2


def test_take_silences_the_bot_and_the_reply_carries_the_operators_name(site: Site) -> None:
    visitor, cid = waiting_web_conversation(site)
    # Waiting for a person, the bot still tells the client to wait.
    assert bot_rows(visitor.say("ну где вы?"))
    anna = site.sign_in("anna")
    assert anna.act(cid, "take").status_code == 303
    assert site.status(cid) == "with_operator"
    assert site.handoff(cid).taken_by == "anna"
    joined = bot_rows(visitor.rows())[-1]
    assert "Анна" in joined.text
    row = re.search(rf'data-conversation="{cid}".*?</tr>', anna.queue(), re.S)
    assert row is not None and "у anna" in row.group(0)

    for text in ("алло, вы тут?", "не работает интернет", "позовите оператора"):
        added = visitor.say(text)
        assert [(r.direction, r.text) for r in added] == [("in", text)], "the bot must stay silent"

    assert anna.act(cid, "reply", text="Здравствуйте, смотрю ваш вопрос").status_code == 303
    last = visitor.rows()[-1]
    assert (last.direction, last.author, last.text) == ("out", "anna", "Здравствуйте, смотрю ваш вопрос")
    assert last.delivery == "sent"
    assert site.handoff(cid).first_response_at is not None
    page = anna.page(cid).text
    assert "Здравствуйте, смотрю ваш вопрос" in page


def test_a_second_operator_cannot_take_a_taken_conversation(site: Site) -> None:
    visitor, cid = waiting_web_conversation(site)
    anna, boris = site.sign_in("anna"), site.sign_in("boris")
    assert anna.act(cid, "take").status_code == 303
    second = boris.act(cid, "take")
    assert second.status_code == 409
    assert 'id="take"' not in second.text
    assert (site.handoff(cid).status, site.handoff(cid).taken_by) == ("taken", "anna")
    assert boris.act(cid, "reply", text="Это Борис").status_code == 409
    assert not [row for row in visitor.rows() if row.author == "boris"]
    assert [(a.operator, a.action) for a in site.runtime.desk_store.audit(cid)] == [("anna", "take")]


def test_two_operators_taking_at_once_one_wins(site: Site) -> None:
    visitor, cid = waiting_web_conversation(site)
    anna, boris = site.sign_in("anna"), site.sign_in("boris")
    start = threading.Barrier(2)
    statuses: dict[str, int] = {}

    def take(operator: Operator) -> None:
        start.wait()
        statuses[operator.name] = operator.act(cid, "take").status_code

    threads = [threading.Thread(target=take, args=(op,)) for op in (anna, boris)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(statuses.values()) == [303, 409]
    winner = next(name for name, status in statuses.items() if status == 303)
    assert site.handoff(cid).taken_by == winner
    joined = [row for row in bot_rows(visitor.rows()) if "подключил" in row.text]
    assert len(joined) == 1 and DISPLAY_NAMES[winner] in joined[0].text


def test_hand_back_lets_the_bot_answer_again(site: Site) -> None:
    visitor, cid = waiting_web_conversation(site)
    anna = site.sign_in("anna")
    assert anna.act(cid, "take").status_code == 303
    assert not bot_rows(visitor.say("как оплатить интернет?"))
    assert anna.act(cid, "hand-back").status_code == 303
    assert site.status(cid) == "bot"
    assert site.handoff(cid).status == "returned"
    mine, others = sections(anna.queue())
    assert cid not in mine and cid not in others
    assert bot_rows(visitor.say("как оплатить интернет?")), "the bot answers again"


def test_transfer_moves_the_conversation_to_another_category(site: Site) -> None:
    visitor, cid = waiting_web_conversation(site)
    anna, olga = site.sign_in("anna"), site.sign_in("olga")
    assert cid in sections(olga.queue())[0]
    assert anna.act(cid, "take").status_code == 303
    before = len(bot_rows(visitor.rows()))
    assert anna.act(cid, "transfer", category="billing").status_code == 303
    handoff = site.handoff(cid)
    assert (handoff.category, handoff.status, handoff.taken_by) == ("billing", "waiting", "")
    assert site.status(cid) == "handed_off"
    [item] = [i for i in site.runtime.desk_store.queue(datetime.now(UTC)) if i.conversation_id == cid]
    assert item.category == "billing"
    billing = site.runtime.content.get().scenarios.categories["billing"].title
    row = re.search(rf'data-conversation="{cid}".*?</tr>', anna.queue(), re.S)
    assert row is not None and billing in row.group(0)
    assert len(bot_rows(visitor.rows())) == before + 1, "the client is told where the conversation went"
    # olga does not serve billing: it left her categories.
    mine, others = sections(olga.queue())
    assert cid in others and cid not in mine
    # An unknown category is refused and changes nothing.
    assert anna.act(cid, "transfer", category="no-such-category").status_code == 409
    assert site.handoff(cid).category == "billing"


def close_and_rate(site: Site, score: int) -> tuple[Visitor, int, Operator]:
    visitor, cid = waiting_web_conversation(site)
    anna = site.sign_in("anna")
    assert anna.act(cid, "reply", text="Готово, проверьте").status_code == 303
    assert anna.act(cid, "close").status_code == 303
    assert site.handoff(cid).status == "closed"
    request = visitor.rows()[-1]
    assert (request.direction, request.author) == ("out", "bot")
    buttons = json.loads(request.buttons_json)
    assert [b["payload"] for b in buttons] == [f"rate:{n}" for n in range(1, 6)]
    assert [b["text"] for b in buttons] == [str(n) for n in range(1, 6)]
    assert site.handoff(cid).rating is None
    assert bot_rows(visitor.say("", payload=f"rate:{score}")), "the rating is thanked for"
    return visitor, cid, anna


def test_a_low_rating_flags_a_follow_up(site: Site) -> None:
    _visitor, cid, anna = close_and_rate(site, 2)
    handoff = site.handoff(cid)
    assert (handoff.rating, bool(handoff.follow_up)) == (2, True)
    page = anna.page(cid).text
    assert re.search(r'<dd id="rating">2\b', page)
    assert 'id="follow-up"' in page and "нужно связаться" in page


def test_a_top_rating_does_not_flag(site: Site) -> None:
    _visitor, cid, anna = close_and_rate(site, 5)
    handoff = site.handoff(cid)
    assert (handoff.rating, bool(handoff.follow_up)) == (5, False)
    page = anna.page(cid).text
    assert re.search(r'<dd id="rating">5\b', page)
    assert 'id="follow-up"' not in page


def test_a_stale_rating_press_does_not_clear_the_follow_up(site: Site) -> None:
    visitor, cid, _anna = close_and_rate(site, 2)
    assert bool(site.handoff(cid).follow_up)
    # The rating was given; no rating is asked any more. An old "5" button pressed later (Telegram keeps
    # inline keyboards; the chat API takes any payload) must not wipe the follow-up the "2" asked for.
    visitor.say("", payload="rate:5")
    handoff = site.handoff(cid)
    assert bool(handoff.follow_up), "the follow-up flag was cleared by a later button press"
    assert handoff.rating == 2


def test_a_rating_button_pressed_while_an_operator_has_the_chat_gets_no_bot_reply(site: Site) -> None:
    visitor, cid, anna = close_and_rate(site, 5)
    visitor.say("позовите оператора")
    assert site.handoff(cid).status == "waiting"
    assert anna.act(cid, "take").status_code == 303
    assert site.status(cid) == "with_operator"
    added = visitor.say("", payload="rate:1")
    assert [(row.direction, row.text) for row in added] == [("in", "rate:1")], (
        "the bot spoke while an operator has the conversation: "
        + " | ".join(row.text for row in bot_rows(added))
    )
    view = site.runtime.desk_store.conversation(cid)
    assert view is not None
    closed = view.handoffs[0]
    assert (closed.status, closed.rating, bool(closed.follow_up)) == ("closed", 5, False)


# --- 7. the audit trail ----------------------------------------------------------------------------------


def test_audit_trail_names_the_operator_of_each_action(site: Site) -> None:
    _visitor, cid = waiting_web_conversation(site)
    anna, boris = site.sign_in("anna"), site.sign_in("boris")
    assert anna.page(cid).status_code == 200
    assert anna.act(cid, "take").status_code == 303
    assert anna.act(cid, "reply", text="Добрый день").status_code == 303
    assert boris.page(cid).status_code == 200
    # The live fragment refreshes a page already counted: it is not another view.
    assert anna.live(cid).status_code == 200
    assert anna.act(cid, "close").status_code == 303
    trail = site.runtime.desk_store.audit(cid)
    assert [(row.operator, row.action) for row in trail] == [
        ("anna", "view"),
        ("anna", "take"),
        ("anna", "reply"),
        ("boris", "view"),
        ("anna", "close"),
    ]
    assert all(row.conversation_id == cid for row in trail)
    assert trail[2].detail == f"{len('Добрый день')} characters"


def test_unknown_conversation_is_a_404_for_a_signed_in_operator(site: Site) -> None:
    anna = site.sign_in("anna")
    response = anna.page(9999)
    assert response.status_code == 404
    assert "Такого разговора нет" in response.text
    assert anna.live(9999).status_code == 404
    assert site.runtime.desk_store.audit(9999) == []
