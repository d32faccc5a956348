"""The web chat and the app's request bodies under abuse, over real HTTP (uvicorn on 127.0.0.1): bodies
refused while they stream in, new chats and streams per client address, the visitor's secret never
stored, streams that read the database only on a change, and the chat embedded on another site in
Chromium."""

from __future__ import annotations

import http.server
import re
import select as io_select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import event, func, select

from common.messages import IncomingMessage
from storage.tables import conversations, handoffs
from tests.support.browser import chromium
from tests.support.webserver import always_open, web_runtime
from web.app import create_app
from web.background import serving_in_thread
from web.limits import ChatLimits
from web.webchat import VISITOR_COOKIE, visitor_id
from wiring.runtime import Runtime

CHAT_HEADERS = {"X-Tonebot-Chat": "1"}
MIB = 1024 * 1024
# However a refused body is sent, the answer must come before this much of it: no route reads further.
SENT_AT_MOST = 16 * MIB
TIMEOUT_MS = 15_000


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path) -> Runtime:
    return web_runtime(tmp_path, always_open(content_copy))


@contextmanager
def served(runtime: Runtime, limits: ChatLimits | None = None, **options: Any) -> Iterator[str]:
    with serving_in_thread(create_app(runtime, chat_limits=limits or ChatLimits(), **options)) as url:
        yield url


def client(url: str, address: str = "127.0.0.1") -> httpx.Client:
    """An HTTP client whose connections come from `address` (any 127.x address reaches the server)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=url, timeout=10, transport=transport)


def new_visitor(url: str, address: str = "127.0.0.1") -> tuple[httpx.Client, str]:
    """A client with the chat page's visitor cookie; its secret."""
    http = client(url, address)
    assert http.get("/chat").status_code == 200
    return http, http.cookies[VISITOR_COOKIE]


def say(http: httpx.Client, text: str, message_id: str) -> httpx.Response:
    return http.post("/chat/api/messages", json={"id": message_id, "text": text}, headers=CHAT_HEADERS)


def waiting_handoffs(runtime: Runtime) -> int:
    with runtime.store.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(handoffs).where(handoffs.c.status == "waiting")
            ).scalar_one()
        )


# --- bodies -------------------------------------------------------------------------------------------


def push_body(url: str, head: str, chunked: bool, total: int = 1024 * MIB) -> tuple[bytes, int]:
    """Send a request head, then up to `total` generated body bytes in 1 MiB pieces, reading whatever the
    server answers meanwhile; the answer and how many body bytes went out before it came."""
    port = int(url.rsplit(":", 1)[1])
    piece = b"x" * MIB
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        try:
            while sent < total and not answer:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
                if io_select.select([sock], [], [], 0)[0]:
                    answer = sock.recv(65536) or b"(closed)"
                if sent >= SENT_AT_MOST:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer is already on the way
        sock.settimeout(10)
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent


def chat_post_head(url: str, secret: str, length: int | None) -> str:
    size = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    host = url.removeprefix("http://")
    return (
        f"POST /chat/api/messages HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"X-Tonebot-Chat: 1\r\nCookie: {VISITOR_COOKIE}={secret}\r\n{size}\r\n\r\n"
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_huge_chat_body_is_refused_while_it_streams_in(runtime: Runtime, chunked: bool) -> None:
    with served(runtime) as url:
        first, secret = new_visitor(url)
        first.close()
        head = chat_post_head(url, secret, None if chunked else 1024 * MIB)
        answer, sent = push_body(url, head, chunked)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert sent < SENT_AT_MOST, "the answer came only after the client gave up sending"
        assert "Разбейте его, пожалуйста".encode() in answer
        assert b"x-content-type-options: nosniff" in answer.lower()
        # The server is still there for everybody, the sender included.
        with client(url) as other:
            assert other.get("/healthz").status_code == 200
            http, _secret = new_visitor(url)
            assert say(http, "как оплатить интернет?", "after-flood").status_code == 202
            http.close()


@pytest.mark.parametrize(
    ("path", "size", "refused"),
    [
        ("/console/conversations/1/reply", 240_100, False),  # 20,000 four-byte characters, url-encoded
        ("/console/conversations/1/reply", 300_000, True),
        ("/console/login", 70_000, True),
        ("/healthz", 20_000, True),
        ("/chat/api/messages", 65_000, False),
        ("/api/events", 65_000, False),
        ("/api/events", 70_000, True),
    ],
)
def test_each_route_has_its_body_limit(runtime: Runtime, path: str, size: int, refused: bool) -> None:
    with served(runtime) as url, client(url) as http:
        response = http.post(
            path,
            content=b"a" * size,
            headers={**CHAT_HEADERS, "Content-Type": "application/x-www-form-urlencoded"},
        )
        assert (response.status_code == 413) is refused, (response.status_code, response.text[:200])


def test_every_response_says_nosniff(runtime: Runtime) -> None:
    with served(runtime) as url, client(url) as http:
        for path in ("/static/chat.js", "/healthz", "/no-such-page", "/chat", "/console/login"):
            response = http.get(path)
            assert response.headers.get("x-content-type-options") == "nosniff", path


# --- the visitor's secret -----------------------------------------------------------------------------


def test_the_visitor_secret_is_never_stored_only_a_derived_id(runtime: Runtime, tmp_path: Path) -> None:
    with served(runtime, secure_cookies=True) as url, client(url) as http:
        page = http.get("/chat")
        cookie = page.headers["set-cookie"]
        for attribute in ("secure", "httponly", "partitioned", "samesite=none"):
            assert re.search(rf";\s*{attribute}", cookie, re.IGNORECASE), cookie
        secret = cookie.split(";", 1)[0].split("=", 1)[1]
        # Over plain http the client keeps the Secure cookie to itself: the page's header carries it.
        sent = http.post(
            "/chat/api/messages",
            json={"id": "s1", "text": "позовите оператора"},
            headers={**CHAT_HEADERS, "X-Tonebot-Visitor": secret},
        )
        assert sent.status_code == 202, sent.text
        with runtime.store.engine.connect() as connection:
            chats = connection.execute(select(conversations.c.chat_id)).scalars().all()
        assert chats == [visitor_id(secret)]
        assert re.fullmatch(r"web-[0-9a-f]{16}", chats[0])
        runtime.store.engine.dispose()
        stored = b"".join(path.read_bytes() for path in tmp_path.glob("web.db*"))
        assert secret.encode() not in stored


def test_the_header_and_the_cookie_name_the_same_visitor(runtime: Runtime) -> None:
    with served(runtime) as url:
        http, secret = new_visitor(url)
        assert say(http, "здравствуйте", "c1").status_code == 202
        by_header = client(url)
        response = by_header.post(
            "/chat/api/messages",
            json={"id": "h1", "text": "как оплатить интернет?"},
            headers={**CHAT_HEADERS, "X-Tonebot-Visitor": secret},
        )
        assert response.status_code == 202
        rows = runtime.desk_store.chat_messages("web", visitor_id(secret), 0)
        assert [row.external_id for row in rows if row.direction == "in"] == ["c1", "h1"]
        # A header that is no secret is refused, not read as somebody else's chat.
        bad = by_header.post(
            "/chat/api/messages",
            json={"id": "h2", "text": "привет"},
            headers={**CHAT_HEADERS, "X-Tonebot-Visitor": "short"},
        )
        assert bad.status_code == 401
        by_header.close()
        http.close()


# --- new chats per address ----------------------------------------------------------------------------


def test_new_chats_from_one_address_are_limited_and_the_owner_keeps_theirs(runtime: Runtime) -> None:
    with served(runtime, ChatLimits(new_chats=5, new_chats_window_s=600)) as url:
        visitors = [new_visitor(url) for _ in range(20)]
        statuses = [say(http, "позовите оператора", "m1").status_code for http, _secret in visitors]
        assert statuses == [202] * 5 + [429] * 15
        refused = say(visitors[5][0], "позовите оператора", "m2")
        assert refused.status_code == 429
        assert "Попробуйте, пожалуйста" in refused.json()["error"]
        assert int(refused.headers["retry-after"]) >= 1
        assert waiting_handoffs(runtime) == 5
        # The first visitors' chats go on, from the same address.
        for http, _secret in visitors[:5]:
            assert say(http, "договор 7654321", "m3").status_code == 202
        # Another address has its own budget.
        elsewhere, _secret = new_visitor(url, "127.0.0.2")
        assert say(elsewhere, "позовите оператора", "m1").status_code == 202
        assert waiting_handoffs(runtime) == 6
        for http, _secret in [*visitors, (elsewhere, "")]:
            http.close()


# --- streams ------------------------------------------------------------------------------------------


@contextmanager
def open_stream(
    url: str, secret: str, address: str = "127.0.0.1", after: str = "0"
) -> Iterator[httpx.Response]:
    http = client(url, address)
    try:
        with http.stream(
            "GET", "/chat/api/stream", params={"after": after}, headers={"X-Tonebot-Visitor": secret}
        ) as response:
            yield response
    finally:
        http.close()


def test_streams_per_address_are_capped(runtime: Runtime) -> None:
    with served(runtime, ChatLimits(streams=3)) as url:
        _http, secret = new_visitor(url)
        with open_stream(url, secret) as a, open_stream(url, secret) as b, open_stream(url, secret) as c:
            assert [a.status_code, b.status_code, c.status_code] == [200, 200, 200]
            with open_stream(url, secret) as d:
                assert d.status_code == 429
                d.read()
                assert "Закройте, пожалуйста" in d.json()["error"]
            with open_stream(url, secret, "127.0.0.3") as elsewhere:
                assert elsewhere.status_code == 200
        # Closed streams give their slots back (the server notices the disconnect shortly).
        deadline = time.monotonic() + 10
        while True:
            with open_stream(url, secret) as again:
                if again.status_code == 200 or time.monotonic() > deadline:
                    assert again.status_code == 200
                    break
            time.sleep(0.1)
        _http.close()


@pytest.mark.parametrize(
    ("after", "last_event_id"),
    [("1" + "0" * 30, None), ("9223372036854775808", None), ("-1", None), ("abc", None), ("0", "9" * 25)],
)
def test_out_of_range_stream_positions_are_a_400(
    runtime: Runtime, after: str, last_event_id: str | None
) -> None:
    with served(runtime) as url:
        http, secret = new_visitor(url)
        headers = {"X-Tonebot-Visitor": secret}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        response = http.get("/chat/api/stream", params={"after": after}, headers=headers)
        assert response.status_code == 400
        assert "Traceback" not in response.text
        assert "error" in response.json()
        http.close()


def chat_reads(runtime: Runtime, chats: set[str]) -> list[str]:
    """Every read of one of `chats`' messages (what a stream does), as the server runs them."""
    reads: list[str] = []

    @event.listens_for(runtime.store.engine, "before_cursor_execute")
    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        named = set(parameters.values() if isinstance(parameters, dict) else parameters or ())
        if "FROM messages" in statement and named & chats:
            reads.append(statement)

    return reads


def data_lines(response: httpx.Response) -> Iterator[str]:
    """The data lines of a stream's events, as they come."""
    for line in response.iter_lines():
        if line.startswith("data: "):
            yield line.removeprefix("data: ")


def test_idle_streams_do_not_read_the_database_and_wake_on_changes(
    runtime: Runtime, tmp_path: Path, content_copy: Path
) -> None:
    with served(runtime) as url:
        http, secret = new_visitor(url)
        assert say(http, "здравствуйте", "m1").status_code == 202
        addresses = [f"127.0.0.{n}" for n in range(10, 15)]
        others = [new_visitor(url, address) for address in addresses]
        reads = chat_reads(runtime, {visitor_id(other) for _http, other in others} | {visitor_id(secret)})
        with ExitStack() as stack:
            mine = stack.enter_context(open_stream(url, secret))
            events = data_lines(mine)
            assert "здравствуйте" in next(events)
            for address, (_http, other) in zip(addresses, others, strict=True):
                assert stack.enter_context(open_stream(url, other, address)).status_code == 200
            time.sleep(1)  # the idle streams' first reads are done
            before = len(reads)
            time.sleep(3)  # a window for timer-driven reads to show, not a speed measurement
            assert len(reads) == before, "idle streams read the database"
            # A message in a chat nobody streams wakes no stream (one shared query finds whose chat it is).
            quiet, _secret = new_visitor(url, "127.0.0.20")
            assert say(quiet, "здравствуйте", "q1").status_code == 202
            quiet.close()
            time.sleep(1)
            assert len(reads) == before, "streams of other chats read the database"
            # Written by another process (its own service, not this app's): the shared watch finds it.
            elsewhere = web_runtime(tmp_path, content_copy)
            chat = visitor_id(secret)
            elsewhere.service.handle(
                IncomingMessage("web", chat, chat, "как оплатить?", datetime.now(UTC), "x1")
            )
            elsewhere.store.engine.dispose()
            assert any("как оплатить?" in data for data in events)
        for other_http, _secret in others:
            other_http.close()
        http.close()


# --- the chat embedded on another site, in Chromium -----------------------------------------------------


@contextmanager
def host_site(chat_url: str) -> Iterator[str]:
    """The company's own site: a page on another host name that frames the chat."""
    page = (
        "<!doctype html><html lang=ru><head><meta charset=utf-8><title>Компания</title></head><body>"
        f'<h1>Сайт компании</h1><iframe id=chat src="{chat_url}/chat" width=420 height=560></iframe>'
        "</body></html>"
    ).encode()

    class Host(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Host)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.mark.browser
def test_the_chat_works_in_an_iframe_on_another_site(runtime: Runtime) -> None:
    # Chromium here blocks third-party cookies and storage: only the partitioned cookie of a TLS deployment
    # (accepted on loopback over plain http) keeps the visitor across reloads.
    limits = ChatLimits(new_chats=1)
    with served(runtime, limits, secure_cookies=True) as url, host_site(url) as site, chromium() as browser:
        page = browser.new_context().new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"{site}/")
        chat = page.frame_locator("#chat")
        chat.locator("#chat-input").fill("не работает интернет")
        chat.locator("#chat-input").press("Enter")
        expect(chat.locator(".bubble.mine").first).to_have_text("не работает интернет")
        expect(chat.locator(".bubble.theirs").last).to_contain_text("договор")
        # The same visitor after a reload: the chat is theirs, with its history.
        page.reload()
        chat = page.frame_locator("#chat")
        expect(chat.locator(".bubble.mine").first).to_have_text("не работает интернет")
        chat.locator("#chat-input").fill("договор 7654321")
        chat.locator("#chat-input").press("Enter")
        expect(chat.locator(".bubble.mine")).to_have_count(2)
        with runtime.store.engine.connect() as connection:
            assert len(connection.execute(select(conversations.c.id)).all()) == 1
        # A second visitor from the same address is over this server's budget of new chats: told so.
        stranger = browser.new_context().new_page()
        stranger.set_default_timeout(TIMEOUT_MS)
        stranger.goto(f"{site}/")
        other = stranger.frame_locator("#chat")
        other.locator("#chat-input").fill("позовите оператора")
        other.locator("#chat-input").press("Enter")
        expect(other.locator("#chat-error")).to_contain_text("слишком много новых разговоров")
