"""The operators' tasks in storage, on a real SQLite file and a real PostgreSQL server: overdue first, take,
done and reschedule each with its audit line, someone else's task refused without a change, and a sale
moving the campaign's funnel forward, never back."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from common.names import FunnelStatus, TaskStatus
from storage import connect
from storage.desk import DeskStore, TaskConflict
from storage.tables import actions, as_utc, clients, conversations, recipients, tasks, write_lock_for

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = connect(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def store(engine: Engine) -> DeskStore:
    desk = DeskStore(engine, write_lock_for(engine))
    for name, shown in (("anna", "Анна"), ("boris", "Борис")):
        desk.add_operator(name, "scrypt$unused", shown, "operator", NOW)
    return desk


def conversation(engine: Engine, chat: str, name: str = "") -> int:
    with engine.begin() as connection:
        client = connection.execute(
            insert(clients).values(created_at=NOW, display_name=name)
        ).inserted_primary_key
        assert client is not None
        row = connection.execute(
            insert(conversations).values(
                client_id=client[0],
                channel="telegram",
                chat_id=chat,
                state_json="{}",
                created_at=NOW,
                updated_at=NOW,
            )
        ).inserted_primary_key
    assert row is not None
    return int(row[0])


def task(engine: Engine, conversation_id: int, kind: str = "callback", **values: Any) -> int:
    row = {
        "conversation_id": conversation_id,
        "kind": kind,
        "category": "general",
        "scenario_id": kind,
        "payload_json": '{"phone": "+79131234567"}',
        "status": TaskStatus.OPEN,
        "created_at": NOW - timedelta(hours=5),
        **values,
    }
    with engine.begin() as connection:
        key = connection.execute(insert(tasks).values(**row)).inserted_primary_key
    assert key is not None
    return int(key[0])


def recipient(
    engine: Engine, campaign: str, chat: str, conversation_id: int | None, status: str, **values: Any
) -> int:
    row = {
        "campaign": campaign,
        "channel": "telegram",
        "chat_id": chat,
        "conversation_id": conversation_id,
        "persona": "neutral",
        "time_zone": "",
        "status": status,
        "reason": "",
        "event_id": "",
        "steps_sent": 1,
        "attempt": 1,
        "external_id": "",
        "queued_at": NOW - timedelta(days=1),
        **values,
    }
    with engine.begin() as connection:
        key = connection.execute(insert(recipients).values(**row)).inserted_primary_key
    assert key is not None
    return int(key[0])


def audit_lines(engine: Engine) -> list[tuple[str, str, int | None, str]]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(actions).where(actions.c.action.like("task_%")).order_by(actions.c.id)
        )
        return [(str(r.operator), str(r.action), r.conversation_id, str(r.detail)) for r in rows]


def funnel_row(engine: Engine, recipient_id: int) -> tuple[str, datetime | None]:
    with engine.connect() as connection:
        row = connection.execute(select(recipients).where(recipients.c.id == recipient_id)).one()
    return str(row.status), as_utc(row.converted_at)


def test_overdue_tasks_come_first_then_by_due_time(engine: Engine, store: DeskStore) -> None:
    cid = conversation(engine, "1", "Иван")
    later = task(engine, cid, due_at=NOW + timedelta(hours=2))
    # No due time: due when it was set up, five hours ago.
    oldest = task(engine, cid, "moving")
    late = task(engine, cid, due_at=NOW - timedelta(hours=1))
    soon = task(engine, cid, "follow_up", due_at=NOW + timedelta(minutes=30))
    task(engine, cid, status=TaskStatus.DONE, due_at=NOW - timedelta(days=2))
    listed = store.active_tasks(NOW)
    assert [t.id for t in listed] == [oldest, late, soon, later]
    assert [t.overdue for t in listed] == [True, True, False, False]
    assert listed[0].due_at == NOW - timedelta(hours=5)
    assert (listed[0].client_name, listed[0].channel, listed[0].details) == (
        "Иван",
        "telegram",
        {"phone": "+79131234567"},
    )
    assert [t.id for t in store.active_tasks(NOW, "callback")] == [late, later]
    assert store.active_counts() == {"callback": 2, "moving": 1, "follow_up": 1}


def test_take_reschedule_and_done_are_each_audited(engine: Engine, store: DeskStore) -> None:
    cid = conversation(engine, "2")
    tid = task(engine, cid, due_at=NOW - timedelta(minutes=10))
    taken = store.take_task(tid, "anna", NOW)
    assert (taken.status, taken.taken_by, taken.taken_by_name, taken.taken_at) == (
        "taken",
        "anna",
        "Анна",
        NOW,
    )
    # Taking one's own task again (a double click) changes nothing and adds no line.
    assert store.take_task(tid, "anna", NOW + timedelta(minutes=1)).taken_at == NOW
    moved = store.reschedule_task(tid, "anna", NOW, NOW + timedelta(days=1), "  просила   завтра ")
    assert (moved.due_at, moved.overdue, moved.status, moved.outcome) == (
        NOW + timedelta(days=1),
        False,
        "taken",
        "просила завтра",
    )
    done = store.finish_task(tid, "anna", NOW + timedelta(hours=1), "дозвонилась, всё решили")
    assert (done.status, done.done_at, done.outcome) == (
        "done",
        NOW + timedelta(hours=1),
        "дозвонилась, всё решили",
    )
    assert store.active_tasks(NOW) == []
    assert [t.id for t in store.done_tasks(NOW)] == [tid]
    assert audit_lines(engine) == [
        ("anna", "task_take", cid, f"task {tid} (callback)"),
        (
            "anna",
            "task_reschedule",
            cid,
            f"task {tid} (callback): due 2026-11-23T08:50:00+00:00 → 2026-11-24T09:00:00+00:00; "
            "просила завтра",
        ),
        ("anna", "task_done", cid, f"task {tid} (callback): дозвонилась, всё решили"),
    ]


def test_an_open_task_may_be_done_at_once_by_whoever_does_it(engine: Engine, store: DeskStore) -> None:
    tid = task(engine, conversation(engine, "3"))
    done = store.finish_task(tid, "boris", NOW)
    assert (done.status, done.taken_by, done.taken_at, done.outcome) == ("done", "boris", NOW, "")


def test_someone_elses_task_is_a_conflict_and_nothing_changes(engine: Engine, store: DeskStore) -> None:
    cid = conversation(engine, "4")
    tid = task(engine, cid, due_at=NOW)
    store.take_task(tid, "anna", NOW)
    before = store.task(tid, NOW)
    for attempt in (
        lambda: store.take_task(tid, "boris", NOW),
        lambda: store.finish_task(tid, "boris", NOW, "чужая"),
        lambda: store.reschedule_task(tid, "boris", NOW, NOW + timedelta(days=3)),
    ):
        with pytest.raises(TaskConflict) as refused:
            attempt()
        assert (refused.value.status, refused.value.taken_by, refused.value.taken_by_name) == (
            "taken",
            "anna",
            "Анна",
        )
    assert store.task(tid, NOW) == before
    assert [line[0] for line in audit_lines(engine)] == ["anna"]
    store.finish_task(tid, "anna", NOW)
    with pytest.raises(TaskConflict) as finished:
        store.take_task(tid, "boris", NOW)
    assert finished.value.status == "done"
    with pytest.raises(LookupError):
        store.take_task(tid + 100, "anna", NOW)
    assert store.task(tid + 100, NOW) is None


def test_operators_taking_one_task_at_once_one_wins(engine: Engine, store: DeskStore) -> None:
    names = [f"op{n}" for n in range(8)]
    for name in names:
        store.add_operator(name, "scrypt$unused", name, "operator", NOW)
    tid = task(engine, conversation(engine, "5"))
    won: list[str] = []
    lost: list[str] = []
    start = threading.Barrier(len(names))

    def take(name: str) -> None:
        start.wait()
        try:
            store.take_task(tid, name, NOW)
            won.append(name)
        except TaskConflict:
            lost.append(name)

    threads = [threading.Thread(target=take, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1 and len(lost) == len(names) - 1
    found = store.task(tid, NOW)
    assert found is not None and found.taken_by == won[0]
    assert [line[0] for line in audit_lines(engine)] == won


def test_a_sale_moves_the_campaigns_recipient_forward_never_back(engine: Engine, store: DeskStore) -> None:
    cid = conversation(engine, "6")
    other_chat = conversation(engine, "7")
    replied = recipient(engine, "autumn", "6", cid, FunnelStatus.REPLIED)
    # The same conversation in another campaign: the task names its campaign, so that one stays.
    elsewhere = recipient(engine, "winter", "6", cid, FunnelStatus.CONSENTED)
    # Another conversation of the same campaign stays too.
    stranger = recipient(engine, "autumn", "7", other_chat, FunnelStatus.REPLIED)
    sale = task(engine, cid, "sales", scenario_id="campaign:autumn", payload_json='{"campaign": "Осень"}')
    done = store.finish_task(sale, "anna", NOW, "карта оформлена", converted=True)
    assert done.outcome == "converted: карта оформлена"
    assert funnel_row(engine, replied) == ("converted", NOW)
    assert funnel_row(engine, elsewhere) == ("consented", None)
    assert funnel_row(engine, stranger) == ("replied", None)
    assert audit_lines(engine)[-1] == (
        "anna",
        "task_done",
        cid,
        f"task {sale} (sales): converted: карта оформлена; campaign recipients converted: 1",
    )


def test_a_sale_never_moves_an_ended_or_converted_recipient(engine: Engine, store: DeskStore) -> None:
    cid = conversation(engine, "8")
    earlier = NOW - timedelta(days=2)
    converted = recipient(engine, "autumn", "8", cid, FunnelStatus.CONVERTED, converted_at=earlier)
    opted_out = recipient(engine, "spring", "8", cid, FunnelStatus.OPTED_OUT)
    consented = recipient(engine, "summer", "8", cid, FunnelStatus.CONSENTED)
    # A sales task that names no campaign moves every campaign of its conversation that is still behind.
    sale = task(engine, cid, "sales", scenario_id="sales")
    store.finish_task(sale, "anna", NOW, converted=True)
    assert funnel_row(engine, converted) == ("converted", earlier)
    assert funnel_row(engine, opted_out) == ("opted_out", None)
    assert funnel_row(engine, consented) == ("converted", NOW)
    # Done without a sale: the funnel stays where it is.
    other = conversation(engine, "9")
    later_sale = task(engine, other, "sales", scenario_id="campaign:autumn")
    waiting = recipient(engine, "autumn", "9", other, FunnelStatus.REPLIED)
    store.finish_task(later_sale, "anna", NOW, "не сейчас")
    assert funnel_row(engine, waiting) == ("replied", None)
