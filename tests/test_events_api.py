"""POST /api/events over real HTTP (uvicorn on 127.0.0.1) on SQLite and PostgreSQL: signed events queue a
campaign's recipient once, everything unsigned, stale, oversized or malformed is refused, a phone names a
client only when it is verified, and `consent` and `converted` move consent and the funnel."""

from __future__ import annotations

import json
import select as io_select
import signal
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, func, insert, select

from common.messages import IncomingMessage
from common.names import FunnelStatus, company_source
from storage.identity import PHONE, vouch
from storage.tables import conversations, details, preferences, recipients, trigger_events
from tests.support.botapi import BotApiStandin
from tests.support.events import (
    SECRET,
    campaign_message,
    content_open_around_the_clock,
    missed_call_in_chat,
    running_demo,
    signed_headers,
)
from tests.support.webserver import always_open, web_runtime
from web.app import create_app
from web.background import serving_in_thread
from web.events_api import EventsSettings
from wiring.runtime import Runtime
from wiring.settings import SettingsError

PHONE_NUMBER = "+79131234567"
KIB = 1024


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path, database_url: str) -> Iterator[Runtime]:
    runtime = web_runtime(tmp_path, always_open(content_copy), database_url)
    try:
        yield runtime
    finally:
        runtime.close()


@contextmanager
def served(runtime: Runtime, settings: EventsSettings | None = None) -> Iterator[httpx.Client]:
    app = create_app(runtime, events=settings or EventsSettings(secret=SECRET))
    with serving_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        yield http


def post(http: httpx.Client, event: dict[str, Any] | bytes, **signing: Any) -> httpx.Response:
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    return http.post("/api/events", content=body, headers=signed_headers(body, **signing))


def missed_call(event_id: str, **client: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "kind": "missed_call",
        "client": client or {"phone": PHONE_NUMBER},
        "at": "2026-12-07T10:15:00+07:00",
        "data": {"line": "8 800 000-00-00"},
    }


def client_writes(runtime: Runtime, channel: str, chat: str, text: str = "здравствуйте") -> int:
    """A client's message in a chat (the door opened); the chat's client id."""
    runtime.service.handle(IncomingMessage(channel, chat, chat, text, datetime.now(UTC), f"{chat}-{text}"))
    with runtime.store.engine.connect() as connection:
        return int(
            connection.execute(
                select(conversations.c.client_id).where(
                    conversations.c.channel == channel, conversations.c.chat_id == chat
                )
            ).scalar_one()
        )


def verify_phone(runtime: Runtime, client_id: int, phone: str = PHONE_NUMBER) -> None:
    with runtime.store.engine.begin() as connection:
        vouch(connection, client_id, PHONE, phone, company_source("crm"), datetime.now(UTC))


def type_phone(runtime: Runtime, client_id: int, phone: str = PHONE_NUMBER) -> None:
    """A phone the client typed: a detail the bot collected, which vouches for nothing."""
    with runtime.store.engine.begin() as connection:
        conversation = connection.execute(
            select(conversations.c.id).where(conversations.c.client_id == client_id)
        ).scalar_one()
        connection.execute(
            insert(details).values(
                conversation_id=conversation,
                client_id=client_id,
                name="phone",
                value=phone,
                raw=phone,
                superseded=False,
                at=datetime.now(UTC),
            )
        )


def count(runtime: Runtime, table: Any) -> int:
    with runtime.store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def add_recipient(
    runtime: Runtime, client_id: int, chat: str, status: str, campaign: str = "missed_call"
) -> int:
    with runtime.store.engine.begin() as connection:
        result = connection.execute(
            insert(recipients).values(
                campaign=campaign,
                client_id=client_id,
                channel="telegram",
                chat_id=chat,
                persona="neutral",
                time_zone="",
                status=status,
                reason="",
                event_id="",
                steps_sent=1,
                attempt=1,
                external_id="",
                queued_at=datetime.now(UTC) - timedelta(hours=1),
            )
        )
        return int(result.inserted_primary_key[0])


def recipient_row(runtime: Runtime, recipient_id: int) -> Any:
    with runtime.store.engine.connect() as connection:
        return connection.execute(select(recipients).where(recipients.c.id == recipient_id)).one()


# --- refusals ---------------------------------------------------------------------------------------


def test_without_a_secret_the_api_is_off(runtime: Runtime) -> None:
    with served(runtime, EventsSettings(secret="")) as http:
        response = post(http, missed_call("e1"), secret="")
        assert response.status_code == 503
        assert response.json() == {"error": "events API is off"}
    assert count(runtime, trigger_events) == 0


def test_wrong_missing_and_stale_signatures_get_the_same_401(runtime: Runtime) -> None:
    client_writes(runtime, "telegram", "555")
    event = missed_call("e1", channel="telegram", chat_id="555")
    body = json.dumps(event).encode()
    with served(runtime) as http:
        answers = [
            post(http, event, secret="another-secret-" + "y" * 40),
            post(http, event, at=time.time() - 301),
            post(http, event, at=time.time() + 301),
            http.post("/api/events", content=body, headers={"Content-Type": "application/json"}),
            # Signed, then changed on the way.
            http.post("/api/events", content=body.replace(b"555", b"556"), headers=signed_headers(body)),
            http.post(
                "/api/events", content=body, headers={**signed_headers(body), "X-Tonebot-Timestamp": "x"}
            ),
        ]
        assert [answer.status_code for answer in answers] == [401] * len(answers)
        assert {answer.text for answer in answers} == {'{"error":"unauthorized"}'}
        # A timestamp within five minutes is fine.
        assert post(http, missed_call("e2", phone="+70000000000"), at=time.time() - 290).status_code == 404
    assert count(runtime, trigger_events) == 0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_oversized_body_is_refused_while_it_streams_in(runtime: Runtime, chunked: bool) -> None:
    with served(runtime) as http:
        port = int(str(http.base_url).rstrip("/").rsplit(":", 1)[1])
        size = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {64 * 1024 * KIB}"
        head = f"POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{size}\r\n\r\n"
        answer, sent = push(port, head.encode(), chunked)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b'"request body too large"' in answer
        assert sent < 16 * 1024 * KIB, "the answer came only after the client gave up sending"
        # Just under the limit is read (and then refused for its signature, not its size).
        assert post(http, b"{" + b" " * (64 * KIB - 2) + b"}", secret="wrong-" + "z" * 40).status_code == 401


def push(port: int, head: bytes, chunked: bool) -> tuple[bytes, int]:
    """Send a request head and then up to 64 MiB of body in 256 KiB pieces, reading any answer meanwhile;
    the answer and how many body bytes went out before it."""
    piece, sent, answer = b"x" * (256 * KIB), 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        try:
            while sent < 64 * 1024 * KIB and not answer:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
                if io_select.select([sock], [], [], 0)[0]:
                    answer = sock.recv(65536) or b"(closed)"
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: its answer is on the way
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "Invalid JSON"),
        (b"[]", "body: Input should be an object"),
        (
            json.dumps({"kind": "missed_call", "client": {"phone": PHONE_NUMBER}}).encode(),
            "id: Field required",
        ),
        (json.dumps({**missed_call("e1"), "client": {}}).encode(), "client: Value error, give either phone"),
        (json.dumps({**missed_call("e1"), "client": {"phone": "звоните"}}).encode(), "not a phone number"),
        (
            json.dumps({**missed_call("e1"), "client": {"channel": "web", "chat_id": "1"}}).encode(),
            "channel must be one of telegram, vk, max, whatsapp",
        ),
        (
            json.dumps({**missed_call("e1"), "client": {"channel": "telegram"}}).encode(),
            "a chat needs both channel and chat_id",
        ),
        (
            json.dumps({**missed_call("e1"), "at": "2026-12-07T10:15:00"}).encode(),
            "at: Input should have timezone",
        ),
        (json.dumps({**missed_call("e 1")}).encode(), "id: String should match pattern"),
        (
            json.dumps({**missed_call("e1"), "kind": "Missed Call"}).encode(),
            "kind: String should match pattern",
        ),
        (json.dumps({**missed_call("e1"), "clinet": {}}).encode(), "clinet: Extra inputs are not permitted"),
        (json.dumps({**missed_call("e1"), "kind": "converted"}).encode(), "needs data.campaign"),
    ],
)
def test_malformed_events_are_a_400_saying_what_is_wrong(runtime: Runtime, body: bytes, says: str) -> None:
    with served(runtime) as http:
        response = post(http, body)
        assert response.status_code == 400, response.text
        assert says in response.json()["error"], response.json()
    assert count(runtime, trigger_events) == 0


def test_requests_per_address_are_limited(runtime: Runtime) -> None:
    with served(runtime, EventsSettings(secret=SECRET, per_window=3, window_s=600)) as http:
        statuses = [post(http, missed_call(f"e{n}", phone="+70000000000")).status_code for n in range(5)]
        assert statuses == [404, 404, 404, 429, 429]
        refused = post(http, missed_call("e9"))
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json() == {"error": "too many requests"}
        transport = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=http.base_url, transport=transport, timeout=10) as elsewhere:
            assert post(elsewhere, missed_call("e10", phone="+70000000000")).status_code == 404


def test_settings_from_the_environment_fail_loudly_on_nonsense() -> None:
    assert EventsSettings.from_env({}).secret == ""
    assert EventsSettings.from_env({"TONEBOT_EVENTS_SECRET": SECRET}).secret == SECRET
    with pytest.raises(SettingsError, match="at least 32"):
        EventsSettings.from_env({"TONEBOT_EVENTS_SECRET": "short"})
    limited = EventsSettings.from_env(
        {"TONEBOT_EVENTS_SECRET": SECRET, "TONEBOT_EVENTS_PER_ADDRESS": "50/10"}
    )
    assert (limited.per_window, limited.window_s) == (50, 10.0)
    with pytest.raises(SettingsError, match="N/SECONDS"):
        EventsSettings.from_env({"TONEBOT_EVENTS_PER_ADDRESS": "many"})


# --- queueing ------------------------------------------------------------------------------------------


def test_a_signed_event_queues_the_client_once_in_the_chat_they_used_last(runtime: Runtime) -> None:
    telegram = client_writes(runtime, "telegram", "555")
    vk = client_writes(runtime, "vk", "777")  # wrote here last
    verify_phone(runtime, telegram)
    verify_phone(runtime, vk)
    woken: list[str] = []
    app = create_app(runtime, events=EventsSettings(secret=SECRET))
    app.state.campaign_listeners.append(lambda: woken.append("sender"))
    with serving_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        first = post(http, missed_call("call-1"))
        assert first.status_code == 202, first.text
        answer = first.json()
        assert answer["queued"] is True
        [queued] = answer["recipients"]
        assert queued["campaign"] == "missed_call" and queued["status"] == "queued"
        assert woken == ["sender"]
        repeat = post(http, missed_call("call-1"))
        assert repeat.status_code == 200 and repeat.json() == {"duplicate": True, "queued": False}
        assert woken == ["sender"]
        # Another call: the campaign holds this chat already, and its one recipient is the answer.
        later = post(http, missed_call("call-2"))
        assert [r["recipient"] for r in later.json()["recipients"]] == [queued["recipient"]]
    row = recipient_row(runtime, queued["recipient"])
    assert (row.channel, row.chat_id, row.client_id, row.event_id) == ("vk", "777", vk, "call-1")
    assert row.status == FunnelStatus.QUEUED and row.next_at is not None
    assert count(runtime, recipients) == 1 and count(runtime, trigger_events) == 2
    with runtime.store.engine.connect() as connection:
        stored = connection.execute(select(trigger_events).where(trigger_events.c.id == "call-1")).one()
    assert (stored.id, stored.kind, stored.campaign, stored.recipient_id) == (
        "call-1",
        "missed_call",
        "missed_call",
        queued["recipient"],
    )
    assert json.loads(stored.payload_json) == {
        "at": "2026-12-07T10:15:00+07:00",
        "data": {"line": "8 800 000-00-00"},
    }


def test_a_named_chat_is_the_one_written_to(runtime: Runtime) -> None:
    client_writes(runtime, "telegram", "555")
    client_writes(runtime, "telegram", "556")
    with served(runtime) as http:
        answer = post(http, missed_call("call-2", channel="telegram", chat_id="555"))
        assert answer.status_code == 202, answer.text
    row = recipient_row(runtime, answer.json()["recipients"][0]["recipient"])
    assert (row.channel, row.chat_id) == ("telegram", "555")


def test_a_client_who_may_not_be_written_to_is_counted_not_queued(runtime: Runtime) -> None:
    client = client_writes(runtime, "telegram", "555")
    with runtime.store.engine.begin() as connection:
        connection.execute(
            insert(preferences).values(
                client_id=client,
                advertising_consent_source="",
                opted_out_at=datetime.now(UTC),
                opted_out_via="credit_card",
            )
        )
    woken: list[str] = []
    app = create_app(runtime, events=EventsSettings(secret=SECRET))
    app.state.campaign_listeners.append(lambda: woken.append("sender"))
    with serving_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        answer = post(http, missed_call("call-3", channel="telegram", chat_id="555"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["queued"] is False
        [counted] = answer.json()["recipients"]
        assert counted["status"] == "opted_out" and counted["reason"] == "отписался"
        assert (
            post(http, missed_call("call-3", channel="telegram", chat_id="555")).json()["duplicate"] is True
        )
    assert woken == []
    assert count(runtime, recipients) == 1


# --- who an event names -------------------------------------------------------------------------------


def test_unknown_clients_and_kinds_are_a_404_and_nothing_is_stored(runtime: Runtime) -> None:
    client_writes(runtime, "telegram", "555")
    with served(runtime) as http:
        by_phone = post(http, missed_call("e1"))
        assert by_phone.status_code == 404
        assert by_phone.json() == {"queued": False, "reason": "no client has this phone verified"}
        by_chat = post(http, missed_call("e2", channel="vk", chat_id="555"))
        assert by_chat.status_code == 404 and "no client in vk chat 555" in by_chat.json()["reason"]
        no_campaign = post(http, {**missed_call("e3", channel="telegram", chat_id="555"), "kind": "no_such"})
        assert no_campaign.status_code == 404 and "no campaign" in no_campaign.json()["reason"]
    # A verified person who only ever wrote in the web chat: campaigns cannot reach them there.
    web = client_writes(runtime, "web", "web-0123456789abcdef")
    verify_phone(runtime, web)
    with served(runtime) as http:
        nowhere = post(http, missed_call("e4"))
        assert nowhere.status_code == 404 and "no chat in a messenger" in nowhere.json()["reason"]
    assert count(runtime, trigger_events) == 0 and count(runtime, recipients) == 0


def test_a_typed_phone_names_no_one_and_a_verified_one_does(runtime: Runtime) -> None:
    typed = client_writes(runtime, "telegram", "555")
    type_phone(runtime, typed)
    event = {"id": "c1", "kind": "consent", "client": {"phone": "8 (913) 123-45-67"}}
    with served(runtime) as http:
        refused = post(http, event)
        assert refused.status_code == 404, refused.text
        assert count(runtime, preferences) == 0
        verified = client_writes(runtime, "vk", "777")
        verify_phone(runtime, verified)
        accepted = post(http, event)
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["consent"] == "recorded"
    with runtime.store.engine.connect() as connection:
        held = connection.execute(select(preferences)).all()
    assert [(row.client_id, row.advertising_consent_source) for row in held] == [(verified, "api")]


# --- consent and converted ------------------------------------------------------------------------------


def test_consent_is_recorded_once_for_the_whole_person_and_moves_the_funnel(runtime: Runtime) -> None:
    telegram = client_writes(runtime, "telegram", "555")
    vk = client_writes(runtime, "vk", "777")
    verify_phone(runtime, telegram)
    verify_phone(runtime, vk)  # the same phone: one person
    sent = add_recipient(runtime, telegram, "555", FunnelStatus.SENT, campaign="credit_card")
    event = {
        "id": "consent-1",
        "kind": "consent",
        "client": {"channel": "vk", "chat_id": "777"},
        "at": "2026-12-01T12:00:00+00:00",
        "data": {"campaign": "credit_card", "form": "branch"},
    }
    with served(runtime) as http:
        first = post(http, event)
        assert first.status_code == 200, first.text
        assert first.json() == {
            "queued": False,
            "recorded": True,
            "consent": "recorded",
            "recipient": sent,
            "status": "consented",
            "moved": True,
        }
        again = post(http, event)
        assert again.status_code == 200 and again.json() == {"duplicate": True, "queued": False}
        later = post(http, {**event, "id": "consent-2", "at": "2026-12-05T12:00:00+00:00"})
        assert later.json()["consent"] == "already recorded" and later.json()["moved"] is False
    with runtime.store.engine.connect() as connection:
        rows = connection.execute(select(preferences).order_by(preferences.c.client_id)).all()
        stored = connection.execute(select(trigger_events).where(trigger_events.c.id == "consent-1")).one()
    assert [row.client_id for row in rows] == sorted([telegram, vk])
    assert {row.advertising_consent_at.replace(tzinfo=UTC).day for row in rows} == {1}
    assert stored.kind == "consent" and stored.campaign == "credit_card" and stored.recipient_id == sent
    assert json.loads(stored.payload_json)["data"] == {"campaign": "credit_card", "form": "branch"}
    assert PHONE_NUMBER not in stored.payload_json
    row = recipient_row(runtime, sent)
    assert row.status == FunnelStatus.CONSENTED and row.consented_at is not None


def test_converted_moves_only_forward(runtime: Runtime) -> None:
    client = client_writes(runtime, "telegram", "555")
    verify_phone(runtime, client)
    replied = add_recipient(runtime, client, "555", FunnelStatus.REPLIED)
    out = add_recipient(runtime, client, "556", FunnelStatus.OPTED_OUT, campaign="credit_card")
    converted = {"id": "conv-1", "kind": "converted", "client": {"phone": PHONE_NUMBER}}
    with served(runtime) as http:
        moved = post(http, {**converted, "data": {"campaign": "missed_call", "product": "card"}})
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == "converted" and moved.json()["moved"] is True
        assert post(http, {**converted, "data": {"campaign": "missed_call"}}).json()["duplicate"] is True
        # Opted out is an end: nothing moves it back into the funnel.
        ended = post(http, {**converted, "id": "conv-2", "data": {"campaign": "credit_card"}})
        assert ended.status_code == 200 and ended.json()["moved"] is False
        assert ended.json()["status"] == "opted_out"
        never = post(http, {**converted, "id": "conv-3", "data": {"campaign": "speed_upgrade"}})
        assert (
            never.status_code == 404 and "no recipient of campaign 'speed_upgrade'" in never.json()["reason"]
        )
    assert recipient_row(runtime, replied).status == FunnelStatus.CONVERTED
    assert recipient_row(runtime, replied).converted_at is not None
    assert recipient_row(runtime, out).status == FunnelStatus.OPTED_OUT
    assert count(runtime, trigger_events) == 2


# --- end to end: `tonebot demo` and a Telegram stand-in -----------------------------------------------


@pytest.mark.anyio
@pytest.mark.subprocess
async def test_missed_call_reaches_telegram_standin(tmp_path: Path) -> None:
    """End to end: a chat that started the bot gets the missed-call campaign's message from a running
    `tonebot demo` after one signed event, and a repeat of the event is a duplicate."""
    chat = 424_242
    content = content_open_around_the_clock(tmp_path)
    async with BotApiStandin() as api, running_demo(tmp_path, content, api) as demo:
        api.add_start(chat)
        await api.wait_for_sent(1, timeout=30, chat_id=chat, method="sendMessage")
        body = missed_call_in_chat("pbx-0001", chat)
        async with httpx.AsyncClient(base_url=demo.url, timeout=30) as http:
            answer = await http.post("/api/events", content=body, headers=signed_headers(body))
            assert answer.status_code == 202, answer.text
            message = await campaign_message(api, chat)
            again = await http.post("/api/events", content=body, headers=signed_headers(body))
            assert again.json() == {"duplicate": True, "queued": False}
        buttons = json.dumps(message.params["reply_markup"], ensure_ascii=False)
        assert "campaign:missed_call:callback" in buttons and "Перезвоните мне" in buttons
        assert message.text
    assert demo.returncode in (0, 130, -signal.SIGINT), demo.errors
    assert "Traceback" not in demo.errors
    with create_engine(f"sqlite:///{demo.database}").connect() as connection:
        [row] = connection.execute(select(recipients)).all()
    assert (row.chat_id, row.status, row.steps_sent, row.event_id) == (str(chat), "sent", 1, "pbx-0001")
