"""A client's data exported, forgotten, and deleted after retention, on SQLite and PostgreSQL; the console
lets only admins export and only lets operators open conversations handed to people."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, insert, select

from common.messages import IncomingMessage
from operators.passwords import hash_password
from storage.desk import actions
from storage.tables import clients, conversations, details, identities, messages, preferences, recipients
from tests.support.webserver import always_open, serving, web_runtime
from wiring.runtime import Runtime

T0 = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path, database_url: str) -> Runtime:
    return web_runtime(tmp_path, always_open(content_copy), database_url)


def say(runtime: Runtime, chat: str, text: str, minute: int, at: datetime = T0) -> None:
    runtime.service.handle(
        IncomingMessage("telegram", chat, chat, text, at + timedelta(minutes=minute), f"{chat}-{minute}")
    )


def client_of(runtime: Runtime, chat: str) -> int:
    with runtime.store.engine.connect() as connection:
        return int(
            connection.execute(
                select(conversations.c.client_id).where(conversations.c.chat_id == chat)
            ).scalar_one()
        )


def count(runtime: Runtime, table: object, *where: object) -> int:
    with runtime.store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one())  # type: ignore[arg-type]


def test_export_holds_everything_about_the_client_and_is_recorded(runtime: Runtime) -> None:
    say(runtime, "a", "не работает интернет, договор 7654321", 0)
    say(runtime, "a", "перезвоните мне на +7 913 123-45-67", 1)
    say(runtime, "b", "договор 1111111", 0)
    client = client_of(runtime, "a")
    data = runtime.client_data.export(client, "admin", T0)
    assert data is not None
    texts = [m["text"] for m in data["messages"]]
    assert "не работает интернет, договор 7654321" in texts and not any("1111111" in t for t in texts)
    assert {d["value"] for d in data["details"]} >= {"7654321", "+79131234567"}
    assert [(i["channel"], i["external_id"]) for i in data["identities"]] == [("telegram", "a")]
    assert json.loads(json.dumps(data, ensure_ascii=False)) == data
    assert count(runtime, actions, actions.c.action == "export", actions.c.operator == "admin") == 1
    assert runtime.client_data.export(99_999, "admin", T0) is None


def test_forget_erases_the_client_and_leaves_others(runtime: Runtime) -> None:
    say(runtime, "a", "не работает интернет, договор 7654321", 0)
    say(runtime, "a", "позовите оператора", 1)
    say(runtime, "b", "привет", 0)
    client = client_of(runtime, "a")
    erased = runtime.client_data.forget(client, "admin", T0)
    assert erased is not None and erased.clients == 1 and erased.messages >= 4 and erased.handoffs == 1
    assert count(runtime, clients, clients.c.id == client) == 0
    assert count(runtime, identities, identities.c.external_id == "a") == 0
    assert count(runtime, details, details.c.value == "7654321") == 0
    assert count(runtime, conversations, conversations.c.chat_id == "a") == 0
    assert count(runtime, messages) >= 2, "the other client's messages stay"
    trail = count(runtime, actions, actions.c.action == "forget", actions.c.detail.like(f"client {client}:%"))
    assert trail == 1
    assert runtime.client_data.forget(client, "admin", T0) is None


def test_retention_deletes_old_conversations_only(runtime: Runtime) -> None:
    say(runtime, "old", "договор 7654321, не работает интернет", 0, at=T0 - timedelta(days=40))
    say(runtime, "new", "договор 2222222, не работает интернет", 0)
    erased = runtime.client_data.purge(T0 - timedelta(days=30), "retention", T0)
    assert erased.conversations == 1 and erased.clients == 1
    assert count(runtime, conversations, conversations.c.chat_id == "old") == 0
    assert count(runtime, details, details.c.value == "7654321") == 0
    assert count(runtime, conversations, conversations.c.chat_id == "new") == 1
    assert runtime.client_data.purge(T0 - timedelta(days=30), "retention", T0).conversations == 0


@pytest.mark.subprocess
def test_the_command_line_exports_and_forgets(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    env.pop("DATABASE_URL", None)

    def tonebot(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )

    assert tonebot("chat", "--db", str(db), stdin="договор 7654321, не работает интернет\n").returncode == 0
    out = tmp_path / "client.json"
    exported = tonebot("clients", "export", "1", "--db", str(db), "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert "7654321" in out.read_text(encoding="utf-8")
    refused = tonebot("clients", "forget", "1", "--db", str(db))
    assert refused.returncode == 2 and "--yes" in refused.stderr
    forgotten = tonebot("clients", "forget", "1", "--yes", "--db", str(db))
    assert forgotten.returncode == 0 and "1 clients" in forgotten.stdout, forgotten.stderr
    assert tonebot("clients", "export", "1", "--db", str(db)).returncode == 1
    env["TONEBOT_RETENTION_DAYS"] = "soon"
    bad = tonebot("clients", "purge", "--db", str(db))
    assert bad.returncode == 2 and "whole number of days" in bad.stderr and "Traceback" not in bad.stderr


def _signed_in(base: str, name: str, password: str) -> httpx.Client:
    http = httpx.Client(base_url=base)
    form = http.get("/console/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form)
    assert csrf
    assert (
        http.post("/console/login", data={"name": name, "password": password, "csrf": csrf[1]}).status_code
        == 303
    )
    return http


def test_only_admins_export_and_operators_see_only_handed_off_conversations(runtime: Runtime) -> None:
    runtime.desk_store.add_operator("anna", hash_password("operator-pass"), "Анна", "operator", T0)
    runtime.desk_store.add_operator("root", hash_password("admin-pass-1"), "Админ", "admin", T0)
    say(runtime, "handed", "позовите оператора, договор 7654321", 0)
    say(runtime, "bot-only", "не работает интернет", 0)
    handed = client_of(runtime, "handed")
    with runtime.store.engine.connect() as connection:
        ids = dict(connection.execute(select(conversations.c.chat_id, conversations.c.id)).all())
    with serving(runtime) as base:
        operator, admin = _signed_in(base, "anna", "operator-pass"), _signed_in(base, "root", "admin-pass-1")
        assert operator.get(f"/console/clients/{handed}/export").status_code == 403
        assert operator.get(f"/console/conversations/{ids['bot-only']}").status_code == 403
        assert operator.get(f"/console/conversations/{ids['bot-only']}/live").status_code == 403
        assert operator.get(f"/console/conversations/{ids['handed']}").status_code == 200
        assert admin.get(f"/console/conversations/{ids['bot-only']}").status_code == 200
        page = admin.get(f"/console/conversations/{ids['handed']}").text
        assert f"/console/clients/{handed}/export" in page
        exported = admin.get(f"/console/clients/{handed}/export")
        assert exported.status_code == 200 and "attachment" in exported.headers["content-disposition"]
        assert any(d["value"] == "7654321" for d in exported.json()["details"])
        operator.close()
        admin.close()
    trail = [(row.operator, row.action) for row in runtime.desk_store.audit(ids["handed"])]
    assert ("anna", "view") in trail and ("root", "view") in trail
    assert count(runtime, actions, actions.c.action == "export", actions.c.operator == "root") == 1


def test_the_retention_job_runs_in_the_serving_app(runtime: Runtime) -> None:
    import time

    say(runtime, "old", "договор 7654321, не работает интернет", 0, at=datetime.now(UTC) - timedelta(days=40))
    say(runtime, "new", "договор 2222222, не работает интернет", 0, at=datetime.now(UTC))
    runtime.retention_days = 30
    with serving(runtime):
        deadline = time.monotonic() + 10
        while count(runtime, conversations, conversations.c.chat_id == "old") and time.monotonic() < deadline:
            time.sleep(0.1)
    assert count(runtime, conversations, conversations.c.chat_id == "old") == 0
    assert count(runtime, conversations, conversations.c.chat_id == "new") == 1
    assert count(runtime, actions, actions.c.action == "purge", actions.c.operator == "retention") == 1


def test_forget_takes_the_client_out_of_campaigns_and_export_shows_them(runtime: Runtime) -> None:
    say(runtime, "a", "привет", 0)
    say(runtime, "b", "привет", 0)
    client, other = client_of(runtime, "a"), client_of(runtime, "b")
    with runtime.store.engine.begin() as connection:
        for chat, owner in (("a", None), ("b", other)):
            connection.execute(
                insert(recipients).values(
                    campaign="missed_call",
                    client_id=owner,
                    channel="telegram",
                    chat_id=chat,
                    persona="neutral",
                    time_zone="",
                    status="sent",
                    reason="",
                    event_id=f"evt-{chat}",
                    steps_sent=1,
                    attempt=1,
                    external_id="",
                    queued_at=T0,
                )
            )
        connection.execute(
            insert(preferences).values(
                client_id=client, advertising_consent_source="csv", opted_out_at=T0, opted_out_via="x"
            )
        )
    exported = runtime.client_data.export(client, "admin", T0)
    assert exported is not None
    assert [r["chat_id"] for r in exported["campaign_recipients"]] == ["a"]
    assert exported["preferences"][0]["opted_out_via"] == "x"
    erased = runtime.client_data.forget(client, "admin", T0)
    assert erased is not None and erased.campaign_recipients == 1
    assert count(runtime, recipients, recipients.c.chat_id == "a") == 0
    assert count(runtime, preferences) == 0
    assert count(runtime, recipients, recipients.c.chat_id == "b") == 1, "the other client's place stays"
