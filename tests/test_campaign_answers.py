"""A client's answer to a campaign: what the engine says and decides (buttons, «СТОП», a short yes or no,
their own words), and what storage makes of it on a real SQLite file and a real PostgreSQL server (the
funnel moves forward only, an opt-out reaches every campaign, tasks with their due time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from common.events import CampaignAnswered, HandoffRequested, TaskCreated
from common.messages import IncomingMessage
from common.names import CampaignAction, FunnelStatus, TaskKind
from common.state import ConversationState
from dialogs.campaigns import load_campaigns
from dialogs.content import LiveContent
from dialogs.engine import Engine
from dialogs.service import ConversationService
from storage import SqlStore, connect
from storage.tables import conversations, handoffs, preferences, recipients, tasks

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
BANK = Path(__file__).resolve().parent.parent / "content" / "bank"


@pytest.fixture(scope="module")
def bank() -> Engine:
    return Engine(LiveContent(BANK))


def incoming(text: str = "", number: int = 0, press: str | None = None, chat: str = "7") -> IncomingMessage:
    at = START + timedelta(minutes=number)
    return IncomingMessage("telegram", chat, "u" + chat, text, at, f"m{number}", button_payload=press)


def answer(
    engine: Engine, state: ConversationState, text: str = "", press: str | None = None
) -> list[object]:
    turn = engine.handle(state, incoming(text, state.turns + 1, press))
    return list(turn.events)


def test_the_message_speaks_in_the_clients_tone_with_buttons_and_a_way_out(bank: Engine) -> None:
    calm, angry = ConversationState(), ConversationState(persona="aggressor")
    first = bank.reach_out(calm, "credit_card", 0)
    assert first is not None and calm.campaign == "credit_card"
    (reply,) = first.replies
    assert "СТОП" in reply.text  # advertising always says how to stop
    assert [b.payload for b in reply.buttons] == [
        "campaign:credit_card:interested",
        "campaign:credit_card:callback",
        "campaign:credit_card:later",
        "campaign:credit_card:stop",
    ]
    service = bank.reach_out(ConversationState(), "missed_call", 0)
    assert service is not None and "СТОП" not in service.replies[0].text
    assert [b.text for b in service.replies[0].buttons] == ["Перезвоните мне", "Не сейчас"]
    reminder = bank.reach_out(ConversationState(), "missed_call", 1)
    assert reminder is not None and reminder.explain["moments"] == ["campaign.missed_call.reminder"]
    assert bank.reach_out(angry, "credit_card", 0) is not None
    assert bank.reach_out(ConversationState(), "no_such_campaign", 0) is None


@pytest.mark.parametrize(
    "words", ["СТОП", "stop", "Отписаться!", "хватит присылать эту рекламу", "не пишите мне"]
)
def test_stop_in_any_words_opts_out(bank: Engine, words: str) -> None:
    state = ConversationState()
    bank.reach_out(state, "credit_card", 0)
    assert answer(bank, state, words) == [CampaignAnswered("credit_card", CampaignAction.STOP)]
    assert state.campaign is None


def test_the_stop_button_works_even_after_the_campaign_was_answered(bank: Engine) -> None:
    state = ConversationState()
    bank.reach_out(state, "credit_card", 0)
    answer(bank, state, press="campaign:credit_card:later")
    assert answer(bank, state, press="campaign:credit_card:stop") == [
        CampaignAnswered("credit_card", CampaignAction.STOP)
    ]


def test_call_me_back_asks_phone_and_time_and_sets_a_task_due_then(bank: Engine) -> None:
    state = ConversationState()
    bank.reach_out(state, "missed_call", 0)
    assert answer(bank, state, press="campaign:missed_call:callback") == [
        CampaignAnswered("missed_call", CampaignAction.CALLBACK)
    ]
    answer(bank, state, "8 913 123 45 67")
    events = answer(bank, state, "завтра после 18")
    task = next(e for e in events if isinstance(e, TaskCreated))
    assert (task.kind, task.details["phone"]) == ("callback", "+79131234567")
    # The bank's clock is Moscow's: "завтра после 18" is 18:00 there, the next day.
    assert datetime.fromisoformat(task.due_at) == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def test_interest_goes_to_sales_with_a_task(bank: Engine) -> None:
    state = ConversationState()
    bank.reach_out(state, "credit_card", 0)
    events = answer(bank, state, "да, интересно")
    assert events[0] == CampaignAnswered("credit_card", CampaignAction.INTERESTED)
    task = next(e for e in events if isinstance(e, TaskCreated))
    handoff = next(e for e in events if isinstance(e, HandoffRequested))
    assert (task.kind, task.category, handoff.category) == (TaskKind.SALES, "loans", "loans")
    assert state.handed_off


def test_own_words_are_an_answer_once_and_then_heard_as_usual(bank: Engine) -> None:
    state = ConversationState()
    bank.reach_out(state, "missed_call", 0)
    events = answer(bank, state, "а что случилось? у меня карта заблокирована")
    assert events == [CampaignAnswered("missed_call")]
    assert state.active is not None and state.active.scenario_id == "card_blocked"
    # A later "да" answers the bot's own question, not the campaign's offer.
    assert not any(isinstance(e, CampaignAnswered) for e in answer(bank, state, "да"))


def test_a_no_means_not_now(bank: Engine) -> None:
    state = ConversationState()
    bank.reach_out(state, "missed_call", 0)
    assert answer(bank, state, "нет, не надо") == [CampaignAnswered("missed_call", CampaignAction.LATER)]


def test_a_campaign_file_error_names_file_and_line(tmp_path: Path) -> None:
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "x.yaml").write_text(
        "campaigns:\n  - id: x\n    title: X\n    purpose: advertising\n    audience: {triggered: true}\n"
        "    message: campaign.x\n    rate: {telegram: 100}\n",
        encoding="utf-8",
    )
    with pytest.raises(Exception) as raised:
        load_campaigns([folder])
    assert "x.yaml:7" in str(raised.value) and "Telegram allows up to 30" in str(raised.value)
    (folder / "x.yaml").write_text(
        "campaigns:\n  - id: x\n    title: X\n    purpose: service\n    audience: {triggered: true}\n"
        "    message: campaign.x\n",
        encoding="utf-8",
    )
    with pytest.raises(Exception) as raised:
        load_campaigns([folder])
    assert "x.yaml:2" in str(raised.value) and "needs `trigger`" in str(raised.value)


# --- storage ------------------------------------------------------------------------------------------
def _recipient(
    store: SqlStore, campaign: str, status: str, chat: str = "7", client: int | None = None
) -> int:
    with store.engine.begin() as connection:
        row = connection.execute(
            insert(recipients)
            .values(
                campaign=campaign,
                client_id=client,
                channel="telegram",
                chat_id=chat,
                persona="neutral",
                time_zone="",
                status=status,
                reason="",
                event_id="",
                steps_sent=1,
                attempt=1,
                next_at=START + timedelta(hours=4),
                external_id="",
                queued_at=START,
                sent_at=START,
            )
            .returning(recipients.c.id)
        )
        return int(row.scalar_one())


def _in_campaign(store: SqlStore, bank: Engine, campaign: str, chat: str = "7") -> int:
    """A conversation whose client just got the campaign's message (the state the sender stores)."""
    service = ConversationService(bank, store)
    service.handle(incoming("/start", 0, chat=chat))
    with store.engine.begin() as connection:
        conversation_id, state_json = connection.execute(
            select(conversations.c.id, conversations.c.state_json).where(conversations.c.chat_id == chat)
        ).one()
        state = ConversationState.from_json(state_json)
        bank.reach_out(state, campaign, 0)
        connection.execute(
            update(conversations)
            .where(conversations.c.id == conversation_id)
            .values(state_json=state.to_json())
        )
    return int(conversation_id)


def _status(store: SqlStore, recipient: int) -> tuple[str, object, object]:
    with store.engine.connect() as connection:
        row = connection.execute(
            select(recipients.c.status, recipients.c.replied_at, recipients.c.next_at).where(
                recipients.c.id == recipient
            )
        ).one()
    return str(row.status), row.replied_at, row.next_at


def test_answers_move_the_funnel_forward_and_stop_follow_ups(database_url: str, bank: Engine) -> None:
    store = SqlStore(connect(database_url))
    _in_campaign(store, bank, "missed_call")
    sent = _recipient(store, "missed_call", FunnelStatus.SENT)
    service = ConversationService(bank, store)
    service.handle(incoming("а что случилось?", 2))
    status, replied_at, next_at = _status(store, sent)
    assert status == FunnelStatus.REPLIED and replied_at is not None and next_at is None
    service.handle(incoming(press="campaign:missed_call:callback", number=3))
    assert _status(store, sent)[0] == FunnelStatus.CONSENTED


def test_the_funnel_never_moves_back(database_url: str, bank: Engine) -> None:
    store = SqlStore(connect(database_url))
    _in_campaign(store, bank, "missed_call")
    converted = _recipient(store, "missed_call", FunnelStatus.CONVERTED)
    ConversationService(bank, store).handle(incoming(press="campaign:missed_call:callback", number=2))
    assert _status(store, converted)[0] == FunnelStatus.CONVERTED


def test_stop_takes_the_client_off_every_campaign(database_url: str, bank: Engine) -> None:
    store = SqlStore(connect(database_url))
    conversation_id = _in_campaign(store, bank, "credit_card")
    with store.engine.connect() as connection:
        client = connection.execute(
            select(conversations.c.client_id).where(conversations.c.id == conversation_id)
        ).scalar_one()
    this = _recipient(store, "credit_card", FunnelStatus.SENT, client=client)
    other = _recipient(store, "missed_call", FunnelStatus.QUEUED, client=client)
    stranger = _recipient(store, "missed_call", FunnelStatus.QUEUED, chat="8")
    ConversationService(bank, store).handle(incoming("СТОП", 2))
    assert _status(store, this)[0] == FunnelStatus.OPTED_OUT
    assert _status(store, other)[0] == FunnelStatus.OPTED_OUT
    assert _status(store, stranger)[0] == FunnelStatus.QUEUED
    with store.engine.connect() as connection:
        preference = connection.execute(select(preferences).where(preferences.c.client_id == client)).one()
    assert preference.opted_out_at is not None and preference.opted_out_via == "credit_card"


def test_a_low_rating_becomes_a_follow_up_task(database_url: str, bank: Engine) -> None:
    store = SqlStore(connect(database_url))
    service = ConversationService(bank, store)
    service.handle(incoming("позовите оператора", 0))
    with store.engine.begin() as connection:
        connection.execute(update(handoffs).values(status="closed", closed_at=START))
        connection.execute(
            update(conversations).values(state_json='{"rating_due": true, "awaiting": "rating"}')
        )
    service.handle(incoming(press="rate:2", number=1))
    with store.engine.connect() as connection:
        rows = connection.execute(select(tasks.c.kind, tasks.c.due_at, tasks.c.payload_json)).all()
    assert [(row.kind, row.payload_json) for row in rows] == [(TaskKind.FOLLOW_UP, '{"rating":"2"}')]
    assert rows[0].due_at is not None
