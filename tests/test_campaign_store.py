"""The campaign store on a real SQLite file and a real PostgreSQL database: who may be written to and why
not, consent and opt-out, enqueuing twice, the funnel moving only forward, and claims that never let two
senders send one step."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from common.events import DetailCollected, Event, TaskCreated
from common.messages import Button, IncomingMessage, Reply
from common.names import Author, CampaignState, Delivery, Direction, FunnelStatus
from storage import SqlStore, connect
from storage.campaigns import (
    BLOCKED,
    INTERRUPTED,
    NO_CONSENT,
    NO_DOOR,
    OPTED_OUT,
    WINDOW_CLOSED,
    CampaignStore,
    Target,
)
from storage.identity import PHONE, merge, vouch
from storage.tables import conversations, messages, preferences, recipients, trigger_events, write_lock_for

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CAMPAIGN = "winter_offer"


@dataclass
class Outcome:
    """A turn's outcome as the store takes it."""

    replies: list[Reply] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass
class Stores:
    """The conversation store and the campaign store over one database."""

    turns: SqlStore
    campaigns: CampaignStore

    def wrote(
        self,
        channel: str,
        chat: str,
        at: datetime = NOW - timedelta(hours=1),
        *,
        persona: str | None = None,
        events: Sequence[Event] = (),
        state: dict[str, Any] | None = None,
        user: str | None = None,
    ) -> None:
        """The client of a chat wrote to the bot (the turn stored as the service stores it)."""
        message = IncomingMessage(
            channel, chat, user or chat, "Здравствуйте", at, message_id=f"{chat}:{at.timestamp()}"
        )

        def run(_conversation_id: int, conversation_state: Any) -> Outcome:
            if persona:
                conversation_state.persona = persona
            for name, value in (state or {}).items():
                setattr(conversation_state, name, value)
            return Outcome(events=list(events))

        self.turns.run_turn(message, run)

    def client_of(self, channel: str, chat: str) -> int:
        with self.turns.engine.connect() as connection:
            return int(
                connection.execute(
                    select(conversations.c.client_id).where(
                        conversations.c.channel == channel, conversations.c.chat_id == chat
                    )
                ).scalar_one()
            )

    def row(self, chat: str, campaign: str = CAMPAIGN, channel: str = "telegram") -> Any:
        with self.turns.engine.connect() as connection:
            return connection.execute(
                select(recipients).where(
                    recipients.c.campaign == campaign,
                    recipients.c.channel == channel,
                    recipients.c.chat_id == chat,
                )
            ).one()


@pytest.fixture
def stores(database_url: str) -> Iterator[Stores]:
    engine = connect(database_url)
    lock = write_lock_for(engine)
    yield Stores(SqlStore(engine, lock), CampaignStore(engine, lock))
    engine.dispose()


def tg(*chats: str, **options: Any) -> list[Target]:
    return [Target("telegram", chat, **options) for chat in chats]


def test_who_may_be_written_to_and_why_not(stores: Stores) -> None:
    store = stores.campaigns
    stores.wrote("telegram", "1")
    stores.wrote("whatsapp", "79130000001", NOW - timedelta(hours=25))
    stores.wrote("whatsapp", "79130000002", NOW - timedelta(hours=2))
    stores.wrote("telegram", "4")
    store.opt_out(stores.client_of("telegram", "4"), "campaign:spring", NOW - timedelta(days=3))
    targets = [
        *tg("1", "2", "4"),
        Target("whatsapp", "79130000001"),
        Target("whatsapp", "79130000002"),
    ]
    done = store.enqueue(CAMPAIGN, False, targets, NOW)
    assert done.added == {"queued": 2, "not_allowed": 2, "opted_out": 1}
    assert (stores.row("1").status, stores.row("1").reason) == ("queued", "")
    assert (stores.row("2").status, stores.row("2").reason) == ("not_allowed", NO_DOOR)
    assert stores.row("2").client_id is None
    assert (stores.row("4").status, stores.row("4").reason) == ("opted_out", OPTED_OUT)
    closed = stores.row("79130000001", channel="whatsapp")
    assert (closed.status, closed.reason) == ("not_allowed", WINDOW_CLOSED)
    assert stores.row("79130000002", channel="whatsapp").status == "queued"
    # Only the queued are due; the ended carry when they ended.
    assert stores.row("1").next_at is not None and stores.row("2").next_at is None
    assert stores.row("2").ended_at is not None


def test_advertising_needs_consent_and_a_csv_column_records_it(stores: Stores) -> None:
    store = stores.campaigns
    for chat in ("1", "2", "3"):
        stores.wrote("telegram", chat)
    targets = [
        Target("telegram", "1", consent=True, consent_source="csv:offer.csv"),
        Target("telegram", "2", consent=False, consent_source="csv:offer.csv"),
        Target("telegram", "3"),
    ]
    done = store.enqueue(CAMPAIGN, True, targets, NOW)
    assert done.consents == 1
    assert stores.row("1").status == "queued"
    assert (stores.row("2").status, stores.row("2").reason) == ("not_allowed", NO_CONSENT)
    assert (stores.row("3").status, stores.row("3").reason) == ("not_allowed", NO_CONSENT)
    with stores.turns.engine.connect() as connection:
        consent = connection.execute(
            select(preferences).where(preferences.c.client_id == stores.client_of("telegram", "1"))
        ).one()
    assert consent.advertising_consent_source == "csv:offer.csv"
    # Consent stays with the client: a later advertising campaign needs no CSV column.
    store.enqueue("another_offer", True, tg("1"), NOW)
    assert stores.row("1", campaign="another_offer").status == "queued"
    # A service campaign needs none at all.
    store.enqueue("service_notice", False, tg("3"), NOW)
    assert stores.row("3", campaign="service_notice").status == "queued"


def test_an_opt_out_holds_in_every_channel_of_the_person(stores: Stores) -> None:
    store = stores.campaigns
    stores.wrote("telegram", "100")
    stores.wrote("vk", "200")
    stores.wrote("telegram", "300")
    stores.wrote("vk", "400")
    # Telegram 100 and VK 200 are one client (an operator merged them); 300 and 400 are one person by a
    # phone both messengers vouched for.
    ids = {chat: stores.client_of(channel, chat) for channel, chat in (("telegram", "100"), ("vk", "200"))}
    ids.update(
        {chat: stores.client_of(channel, chat) for channel, chat in (("telegram", "300"), ("vk", "400"))}
    )
    with stores.turns.engine.begin() as connection:
        merge(connection, ids["100"], ids["200"])
        for chat in ("300", "400"):
            vouch(connection, ids[chat], PHONE, "+79131234567", "telegram_contact", NOW)
    store.opt_out(stores.client_of("telegram", "100"), "campaign:first", NOW)
    store.opt_out(stores.client_of("telegram", "300"), "campaign:first", NOW)
    store.enqueue(CAMPAIGN, False, [Target("vk", "200"), Target("vk", "400")], NOW)
    assert stores.row("200", channel="vk").status == "opted_out"
    assert stores.row("400", channel="vk").status == "opted_out"
    # The first opt-out is the one kept.
    assert not store.opt_out(stores.client_of("telegram", "100"), "api", NOW)


def test_enqueuing_again_adds_only_new_chats_and_leaves_rows_alone(stores: Stores) -> None:
    store = stores.campaigns
    for chat in ("1", "2", "3"):
        stores.wrote("telegram", chat)
    store.start(CAMPAIGN, NOW)
    first = store.enqueue(CAMPAIGN, False, tg("1", "2", "1"), NOW)
    assert first.added == {"queued": 2} and first.existing == 0
    [claim] = store.claim_due([CAMPAIGN], "telegram", NOW, limit=1)
    assert store.record_sent(claim, [Reply("Привет")], "m1", None, NOW)
    again = store.enqueue(CAMPAIGN, False, tg("1", "2", "3"), NOW + timedelta(hours=1))
    assert again.added == {"queued": 1} and again.existing == 2
    assert stores.row(claim.chat_id).status == "sent"
    assert stores.row(claim.chat_id).steps_sent == 1
    with stores.turns.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(recipients)).scalar_one()
    assert count == 3


def test_a_sent_step_is_stored_in_the_chats_conversation(stores: Stores) -> None:
    store = stores.campaigns
    stores.wrote("telegram", "1", persona="aggressor")
    store.start(CAMPAIGN, NOW)
    store.enqueue(CAMPAIGN, False, tg("1"), NOW)
    [claim] = store.claim_due([CAMPAIGN], "telegram", NOW)
    assert (claim.attempt, claim.step, claim.persona) == (1, 0, "aggressor")
    assert claim.key == f"campaign:{CAMPAIGN}:{claim.recipient_id}:0"
    assert '"aggressor"' in claim.state_json

    def reached(state: Any) -> None:
        state.campaign = CAMPAIGN

    reply = Reply("Предложение", (Button("Интересно", f"campaign:{CAMPAIGN}:interested"),))
    follow_up_at = NOW + timedelta(hours=24)
    assert store.record_sent(claim, [reply], "555", follow_up_at, NOW, run=reached)
    row = stores.row("1")
    assert (row.status, row.steps_sent, row.attempt, row.claimed_at) == ("sent", 1, 1, None)
    assert row.external_id == "555" and row.sent_at is not None and row.next_at is not None
    with stores.turns.engine.connect() as connection:
        sent = connection.execute(
            select(messages).where(
                messages.c.direction == Direction.OUT, messages.c.author == Author.CAMPAIGN
            )
        ).one()
        state_json = connection.execute(
            select(conversations.c.state_json).where(conversations.c.id == sent.conversation_id)
        ).scalar_one()
    assert (sent.text, sent.delivery, sent.external_id) == ("Предложение", Delivery.SENT, "555")
    assert "interested" in sent.buttons_json
    assert sent.conversation_id == row.conversation_id
    assert f'"campaign":"{CAMPAIGN}"' in state_json
    # The same claim cannot be recorded twice.
    assert not store.record_sent(claim, [reply], "555", None, NOW)


def test_a_chat_whose_conversations_are_closed_gets_a_new_one_in_its_persona(stores: Stores) -> None:
    store = stores.campaigns
    stores.wrote("telegram", "1", persona="sysadmin")
    with stores.turns.engine.begin() as connection:
        connection.execute(update(conversations).values(status="closed"))
    store.start(CAMPAIGN, NOW)
    store.enqueue(CAMPAIGN, False, tg("1"), NOW)
    [claim] = store.claim_due([CAMPAIGN], "telegram", NOW)
    assert claim.state_json == "" and claim.persona == "sysadmin"
    assert store.record_sent(claim, [Reply("Здравствуйте")], "", None, NOW)
    with stores.turns.engine.connect() as connection:
        rows = connection.execute(select(conversations).order_by(conversations.c.id)).all()
    assert [r.status for r in rows] == ["closed", "bot"]
    assert rows[1].persona == "sysadmin" and rows[1].client_id == rows[0].client_id
    assert stores.row("1").conversation_id == rows[1].id


def test_statuses_only_move_forward(stores: Stores) -> None:
    store = stores.campaigns
    for chat in ("1", "2", "3"):
        stores.wrote("telegram", chat)
    store.start(CAMPAIGN, NOW)
    store.enqueue(CAMPAIGN, False, tg("1", "2", "3"), NOW)
    claims = store.claim_due([CAMPAIGN], "telegram", NOW)
    for claim in claims:
        store.record_sent(claim, [Reply("Привет")], "", NOW + timedelta(hours=1), NOW)
    # The messenger reported one read (a later step than sent).
    with stores.turns.engine.begin() as connection:
        connection.execute(update(recipients).where(recipients.c.chat_id == "1").values(status="read"))
    later = NOW + timedelta(hours=2)
    follow_ups = {claim.chat_id: claim for claim in store.claim_due([CAMPAIGN], "telegram", later)}
    assert {c.attempt for c in follow_ups.values()} == {2}
    store.record_sent(follow_ups["1"], [Reply("Напоминаем")], "", None, later)
    assert stores.row("1").status == "read"  # not back to sent
    assert stores.row("1").sent_at is not None and stores.row("1").steps_sent == 2
    # A follow-up the messenger rejected stops the follow-ups; the recipient stays sent.
    store.record_failed(follow_ups["2"], "сообщение отклонено", later)
    assert (stores.row("2").status, stores.row("2").next_at) == ("sent", None)
    # A refusal ends the recipient: the client blocked the bot.
    store.record_refused(follow_ups["3"], BLOCKED, later)
    assert (stores.row("3").status, stores.row("3").reason) == ("not_allowed", BLOCKED)
    assert stores.row("3").steps_sent == 1


def test_a_refusal_closes_the_door_until_the_client_writes_again(stores: Stores) -> None:
    store = stores.campaigns
    stores.wrote("telegram", "1")
    store.start("first", NOW)
    store.enqueue("first", False, tg("1"), NOW)
    [claim] = store.claim_due(["first"], "telegram", NOW)
    store.record_refused(claim, BLOCKED, NOW)
    assert (stores.row("1", "first").status, stores.row("1", "first").ended_at) != ("queued", None)
    store.enqueue("second", False, tg("1"), NOW + timedelta(minutes=5))
    assert (stores.row("1", "second").status, stores.row("1", "second").reason) == ("not_allowed", BLOCKED)
    stores.wrote("telegram", "1", NOW + timedelta(minutes=10))
    store.enqueue("third", False, tg("1"), NOW + timedelta(minutes=15))
    assert stores.row("1", "third").status == "queued"


def test_a_failed_outbox_message_closes_the_door_too(stores: Stores) -> None:
    stores.wrote("telegram", "1")
    with stores.turns.engine.begin() as connection:
        conversation_id = connection.execute(select(conversations.c.id)).scalar_one()
        connection.execute(
            messages.insert().values(
                conversation_id=conversation_id,
                direction=Direction.OUT,
                text="Ответ оператора",
                delivery=Delivery.FAILED,
                handled=True,
                raw_json="",
                at=NOW,
            )
        )
    stores.campaigns.enqueue(CAMPAIGN, False, tg("1"), NOW)
    assert stores.row("1").reason == BLOCKED


def test_paused_campaigns_are_not_claimed(stores: Stores) -> None:
    store = stores.campaigns
    stores.wrote("telegram", "1")
    assert store.state_of(CAMPAIGN) is None
    store.enqueue(CAMPAIGN, False, tg("1"), NOW)
    assert store.claim_due([CAMPAIGN], "telegram", NOW) == []  # never started
    assert store.start(CAMPAIGN, NOW) == CampaignState.RUNNING
    assert store.pause(CAMPAIGN, NOW)
    assert store.start(CAMPAIGN, NOW) == CampaignState.PAUSED  # start keeps a pause
    assert store.claim_due([CAMPAIGN], "telegram", NOW) == []
    assert store.running() == [] and store.started() == [CAMPAIGN]
    assert store.resume(CAMPAIGN, NOW)
    assert len(store.claim_due([CAMPAIGN], "telegram", NOW)) == 1
    assert store.due([CAMPAIGN], NOW) == 1  # claimed, still counted until recorded


def test_a_recipient_is_due_only_at_its_time(stores: Stores) -> None:
    store = stores.campaigns
    stores.wrote("telegram", "1")
    store.start(CAMPAIGN, NOW)
    store.enqueue(CAMPAIGN, False, tg("1"), NOW)
    [claim] = store.claim_due([CAMPAIGN], "telegram", NOW)
    assert store.postpone(claim, NOW + timedelta(hours=10))
    assert store.claim_due([CAMPAIGN], "telegram", NOW + timedelta(hours=9)) == []
    [again] = store.claim_due([CAMPAIGN], "telegram", NOW + timedelta(hours=10))
    assert again.attempt == 1 and not again.repeat


def test_concurrent_senders_never_claim_one_recipient_twice(database_url: str, stores: Stores) -> None:
    store = stores.campaigns
    chats = [str(n) for n in range(1, 121)]
    for chat in chats:
        stores.wrote("telegram", chat)
    store.start(CAMPAIGN, NOW)
    store.enqueue(CAMPAIGN, False, tg(*chats), NOW)
    claimed: list[int] = []
    guard = threading.Lock()
    start = threading.Barrier(6)
    # Six senders, each with an engine of its own (as six processes would be) on PostgreSQL; SQLite's
    # senders share the file's write lock, as one process's threads do.
    separate = stores.turns.engine.dialect.name == "postgresql"

    def sender() -> None:
        engine = connect(database_url) if separate else stores.turns.engine
        own = CampaignStore(engine, store.write_lock)
        start.wait()
        while batch := own.claim_due([CAMPAIGN], "telegram", NOW, limit=7):
            with guard:
                claimed.extend(claim.recipient_id for claim in batch)

    threads = [threading.Thread(target=sender) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(claimed) == len(chats)
    assert max(Counter(claimed).values()) == 1


def test_a_stale_claim_is_given_up_where_a_send_cannot_be_recognised(stores: Stores) -> None:
    store = stores.campaigns
    stores.wrote("telegram", "1")
    stores.wrote("telegram", "2")
    store.start(CAMPAIGN, NOW)
    store.enqueue(CAMPAIGN, False, tg("1", "2"), NOW)
    first = store.claim_due([CAMPAIGN], "telegram", NOW, limit=1)
    # A live sender's claim is not taken within the lease.
    assert [c.chat_id for c in store.claim_due([CAMPAIGN], "telegram", NOW + timedelta(seconds=5))] == ["2"]
    # The first sender died before recording: after the lease its step is given up, never repeated.
    assert store.claim_due([CAMPAIGN], "telegram", NOW + timedelta(seconds=30), lease_s=15) == []
    row = stores.row(first[0].chat_id)
    assert (row.status, row.reason, row.steps_sent, row.next_at) == ("failed", INTERRUPTED, 1, None)
    # The dead sender's late record finds its claim gone.
    assert not store.record_sent(first[0], [Reply("Привет")], "", None, NOW + timedelta(seconds=31))
    assert store.funnel(CAMPAIGN)


def test_a_stale_claim_is_sent_again_with_the_same_key_where_the_messenger_deduplicates(
    stores: Stores,
) -> None:
    store = stores.campaigns
    stores.wrote("vk", "5001")
    store.start(CAMPAIGN, NOW)
    store.enqueue(CAMPAIGN, False, [Target("vk", "5001")], NOW)
    [first] = store.claim_due([CAMPAIGN], "vk", NOW, resend_stale=True)
    assert store.claim_due([CAMPAIGN], "vk", NOW + timedelta(seconds=5), resend_stale=True) == []
    [again] = store.claim_due([CAMPAIGN], "vk", NOW + timedelta(seconds=20), resend_stale=True)
    assert again.repeat and not first.repeat
    assert (again.recipient_id, again.attempt, again.key) == (first.recipient_id, 1, first.key)
    assert store.record_sent(again, [Reply("Привет")], "", None, NOW + timedelta(seconds=21))
    assert not store.record_sent(first, [Reply("Привет")], "", None, NOW + timedelta(seconds=22))
    assert stores.row("5001", channel="vk").steps_sent == 1


def test_renewed_claims_stay_with_their_sender(stores: Stores) -> None:
    store = stores.campaigns
    stores.wrote("telegram", "1")
    store.start(CAMPAIGN, NOW)
    store.enqueue(CAMPAIGN, False, tg("1"), NOW)
    claims = store.claim_due([CAMPAIGN], "telegram", NOW)
    store.renew(claims, NOW + timedelta(seconds=14))
    assert store.claim_due([CAMPAIGN], "telegram", NOW + timedelta(seconds=20)) == []
    assert stores.row("1").status == "queued"  # not given up: its sender is alive


def test_a_trigger_event_queues_one_recipient_once(stores: Stores) -> None:
    store = stores.campaigns
    stores.wrote("telegram", "1", user="u1")
    stores.wrote("vk", "2", NOW - timedelta(days=2))
    targets = [Target("vk", "99"), Target("telegram", "1"), Target("vk", "2")]
    outcome = store.enqueue_for_event("missed_call", False, "missed_call", "ev-1", '{"x": 1}', targets, NOW)
    recipient_id, duplicate, status = outcome
    assert recipient_id is not None and not duplicate and status == "queued"
    assert stores.row("1", "missed_call").event_id == "ev-1"  # the first chat open to a message
    again = store.enqueue_for_event("missed_call", False, "missed_call", "ev-1", "{}", targets, NOW)
    assert again == (recipient_id, True, "queued")
    with stores.turns.engine.connect() as connection:
        events = connection.execute(select(trigger_events)).all()
        count = connection.execute(select(func.count()).select_from(recipients)).scalar_one()
    assert [(e.id, e.recipient_id, e.payload_json) for e in events] == [("ev-1", recipient_id, '{"x": 1}')]
    assert count == 1
    # Nobody open to a message: the recipient is counted, not messaged.
    closed = store.enqueue_for_event(
        "missed_call", False, "missed_call", "ev-2", "{}", [Target("vk", "9")], NOW
    )
    assert closed.status == "not_allowed" and closed.recipient_id is not None and not closed.duplicate
    nobody = store.enqueue_for_event("missed_call", False, "missed_call", "ev-3", "{}", [], NOW)
    assert nobody == (None, False, "")


def test_the_audience_query_narrows_known_clients(stores: Stores) -> None:
    store = stores.campaigns
    long_ago = NOW - timedelta(days=40)
    stores.wrote("telegram", "1", persona="talker", events=[TaskCreated("callback", "general", "callback")])
    stores.wrote("telegram", "2", persona="aggressor", state={"last_scenario": "no_internet"})
    stores.wrote("vk", "3", long_ago, events=[DetailCollected("contract", "1234567", "1234567")])
    stores.wrote("vk", "4", events=[DetailCollected("contract", "7654321", "7654321")])
    stores.wrote("whatsapp", "5")

    def chats(**query: Any) -> list[str]:
        query.setdefault("channels", ["telegram", "vk", "max", "whatsapp"])
        return [target.chat_id for target in store.audience(NOW, **query)]

    assert chats() == ["1", "2", "3", "4", "5"]
    assert chats(channels=["vk"]) == ["3", "4"]
    assert chats(scenarios=["callback"]) == ["1"]
    assert chats(scenarios=["no_internet", "callback"]) == ["1", "2"]
    assert chats(detail_names=["contract"]) == ["3", "4"]
    assert chats(detail_names=["contract", "phone"]) == []
    assert chats(personas=["aggressor", "talker"]) == ["1", "2"]
    assert chats(active_within_days=30) == ["1", "2", "4", "5"]
    assert chats(channels=[]) == []


def test_the_funnel_counts_by_channel_persona_status_and_reason(stores: Stores) -> None:
    store = stores.campaigns
    stores.wrote("telegram", "1", persona="positive")
    store.enqueue(CAMPAIGN, False, [*tg("1", "2"), Target("vk", "3")], NOW)
    lines = {
        (line.channel, line.persona, line.status, line.reason): line.count for line in store.funnel(CAMPAIGN)
    }
    assert lines == {
        ("telegram", "positive", "queued", ""): 1,
        ("telegram", "neutral", "not_allowed", NO_DOOR): 1,
        ("vk", "neutral", "not_allowed", NO_DOOR): 1,
    }
    assert FunnelStatus.QUEUED == "queued"
