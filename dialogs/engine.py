"""The dialog engine: one client message and the conversation state in, replies and events out.

Pure and platform-free: no I/O, no clock (time comes with the message), no messenger or web imports.
A message is heard in layers: first as an answer to what the bot asked, then as a dialogue act (thanks,
goodbye, a question inside the flow, a complaint about the bot), then as a request, then as something the
company does not serve; "not understood" is the last resort. `explain["layer"]` says which layer took it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from common.events import (
    CampaignAnswered,
    DetailCollected,
    Event,
    HandoffRequested,
    NotUnderstood,
    RatingGiven,
    TaskCreated,
)
from common.messages import Button, IncomingMessage, Reply
from common.names import (
    NOT_UNDERSTOOD,
    NOT_UNDERSTOOD_HANDOFFS,
    CampaignAction,
    HandoffReason,
    Priority,
    TaskKind,
    urgent_reason,
)
from common.state import ConversationState, DetailValue, PendingRequest
from common.text import MAX_ANALYSED_CHARS, clean
from dialogs.campaigns import parse_payload
from dialogs.content import Content, LiveContent
from dialogs.details.base import DetailKind, Found
from dialogs.details.choice import choice_payload
from dialogs.details.extractor import Extraction
from dialogs.details.phone import phone_for_display
from dialogs.details.when import due_moment
from dialogs.hearing import QUESTION_PREFIX, Heard
from dialogs.matcher import Match, Ranking
from dialogs.outreach import campaign_message, is_stop, typed_action
from dialogs.saying import Say
from dialogs.scenarios import Scenario
from dialogs.teams import HandoffPlan
from dialogs.urgent import Urgent
from personas.classifier import Verdict

MAX_DETAIL_FAILURES = 3
NOT_UNDERSTOOD_BEFORE_OFFER = 2
# Flood control: a client may send this many messages at once, and one more per FLOOD_REFILL_S;
# faster than that the bot stops answering each one (they are still stored) and asks, once, to slow down.
FLOOD_BURST = 8
FLOOD_REFILL_S = 1.0
# Past this many misunderstandings in a row the bot stops trying and hands the conversation over.
NOT_UNDERSTOOD_BEFORE_HANDOFF = 3
DEFAULT_CATEGORY = "general"
# Below this much evidence for any request, plain Russian is about something the company does not serve.
UNRELATED_BELOW = 1.0
# A complaint about the bot this strong hands over even when a request is named with it.
STRONG_COMPLAINT = 12.0
# While the bot waits for an answer, a new request must be this clear to take over.
SWITCH_SCORE = 6.0
# ... and this far ahead of every other reading ("муж говорит звони провайдеру" is no call-back request).
SWITCH_MARGIN = 2.0
# A question this clear ("а это платно?") asked while the bot waits for an answer is about the open request.
QUESTION_OVER_SWITCH = 5.0
# ... unless the request is named much more clearly than the question ("я вчера платил, а деньги не дошли?").
QUESTION_SHARE_OVER_SWITCH = 0.8
WELL_FORMED_SHARE = 0.6
START_COMMAND = "/start"

# Awaited answers.
AWAIT_HUMAN_OFFER = "human_offer"
AWAIT_SOLVED = "solved"
AWAIT_RATING = "rating"
RATING_PREFIX = "rate:"
RATING_SCALE = range(1, 6)
# Only the ASCII digits of the scale: "²" or "①" pass isdigit() yet are no rating.
RATING_TEXTS = frozenset(str(n) for n in RATING_SCALE)
# Below this a rating flags the conversation for a follow-up by the responsible person.
GOOD_RATING = 4

# Button payloads.
HUMAN, NO_HUMAN, SOLVED, NOT_SOLVED = "human", "no_human", "solved", "not_solved"

_SHOWN_AS_WRITTEN = (DetailKind.CHOICE, DetailKind.DATETIME, DetailKind.ADDRESS, DetailKind.TEXT)
# Acts that end a conversation (or a request) rather than ask for anything.
_CLOSINGS = ("thanks", "goodbye")
_NUMBERS = re.compile(r"\d+")
# "не 30, а 38" and "38, а не 30": a number taken back in favour of another.
_NOT_THIS_BUT_THAT = re.compile(r"(?i)\bне\s+(?P<wrong>\d+[а-я]?)\s*,?\s*а\s+(?P<right>\d+[а-я]?)\b")
_THAT_NOT_THIS = re.compile(r"(?i)\b(?P<right>\d+[а-я]?)\s*,?\s*а\s+не\s+(?P<wrong>\d+[а-я]?)\b")
# Layers after which a question the bot asked is still open.
_ASIDES = frozenset({"question", "aside", "out_of_scope", "wait", "capabilities"})


@dataclass(slots=True)
class Turn:
    """The outcome of one message: replies, events, and an explanation for `--explain` and operators."""

    replies: list[Reply] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    explain: dict[str, Any] = field(default_factory=dict)


class Engine:
    """Runs scenarios over conversations."""

    def __init__(self, content: LiveContent) -> None:
        self.live = content

    def handle(self, state: ConversationState, message: IncomingMessage) -> Turn:
        """Process one client message, updating state in place."""
        content = self.live.get()
        run = _Run(content, state, message)
        run.go()
        if run.say.empty() and not run.turn.explain.get("flood") and not state.with_operator:
            # Every message gets an answer: a rule that took a message and said nothing is a bug, not a
            # silence the client should meet.
            run.turn.explain["unanswered"] = run.turn.explain.get("layer")
            run.say("waiting_for_human" if state.handed_off else "ask_request")
        run.turn.replies = run.say.replies()
        run.turn.explain["moments"] = list(run.say.moments)
        run.turn.explain.update(
            persona_label=state.persona,
            active=state.active.scenario_id if state.active else None,
            asked=state.active.asked if state.active else None,
            details={name: d.value for name, d in state.details.items()},
            awaiting=state.awaiting,
            handed_off=state.handed_off,
        )
        return run.turn

    def operator_joined(self, state: ConversationState, operator: str) -> Turn:
        """A person took the conversation: tell the client who; the bot falls silent."""
        state.with_operator, state.operator, state.awaiting = True, operator, None
        say = self._say(state)
        say("operator_joined", operator=operator)
        return Turn(replies=say.replies())

    def operator_left(self, state: ConversationState) -> Turn:
        """The person handed the conversation back to the bot."""
        self._release(state)
        say = self._say(state)
        say("bot_back")
        return Turn(replies=say.replies())

    def operator_closed(self, state: ConversationState) -> Turn:
        """The person closed the conversation: ask the client to rate the help, 1 to 5, with buttons."""
        self._release(state)
        state.active, state.suspended = None, []
        say = self._say(state)
        say("rating_request")
        say.buttons(*(Button(str(score), f"{RATING_PREFIX}{score}") for score in RATING_SCALE))
        state.awaiting, state.rating_due = AWAIT_RATING, True
        return Turn(replies=say.replies())

    def operator_transferred(self, state: ConversationState, category_title: str) -> Turn:
        """The conversation moved to another category's people; the client is told whose."""
        state.with_operator, state.operator = False, ""
        say = self._say(state)
        say("handoff", category=category_title)
        return Turn(replies=say.replies())

    def _say(self, state: ConversationState) -> Say:
        return Say(self.live.get(), state, seed=f"operator:{state.turns}")

    @staticmethod
    def _release(state: ConversationState) -> None:
        state.handed_off = state.with_operator = False
        state.operator, state.handoff_reason, state.awaiting = "", None, None
        state.handoff_category = None
        state.not_understood = 0

    def reach_out(self, state: ConversationState, campaign_id: str, step: int) -> Turn | None:
        """A campaign's message at `step` (0: the first, then follow-ups) in the client's tone, the state
        set to hear the answer; None when the content has no such campaign (any more)."""
        content = self.live.get()
        campaign = content.campaigns.get(campaign_id)
        if campaign is None:
            return None
        say = campaign_message(content, state, campaign, step)
        explain = {"campaign": campaign_id, "step": step, "moments": list(say.moments)}
        return Turn(replies=say.replies(), explain=explain)

    def apologise(self, state: ConversationState) -> Turn:
        """The turn to give when handling a message failed: a short apology from the guides."""
        content = self.live.get()
        rendered = content.guides.render("internal_error", state.persona, {}, state.used_phrases)
        return Turn(replies=[Reply(rendered.text)], explain={"error": True})


@lru_cache(maxsize=16)
def _zone(name: str) -> ZoneInfo:
    """The company's time zone; looked up once, not on every message."""
    return ZoneInfo(name)


class _Run:
    """One message's pass through the dialog rules."""

    def __init__(self, content: Content, state: ConversationState, message: IncomingMessage) -> None:
        self.content, self.state, self.message = content, state, message
        self.book = content.scenarios
        self.control = content.control
        self.turn = Turn()
        self.say = Say(content, state, seed=f"{message.channel}:{message.chat_id}")
        # Only the start of a huge message is analysed; storage keeps all of it.
        self.text = clean((message.text or "")[:MAX_ANALYSED_CHARS]).strip()
        # Dates the client writes are meant in the company's local time.
        self.local_now = message.at.astimezone(_zone(self.book.company.timezone))
        self.payload = message.button_payload
        self.heard = Heard()
        self.handed_off_now = False
        self.awaited: str | None = None

    def _layer(self, name: str, **why: Any) -> None:
        self.turn.explain["layer"] = name
        if why:
            self.turn.explain["layer_why"] = why

    # --- the rules, in order -------------------------------------------------------------------
    def go(self) -> None:
        state = self.state
        state.turns += 1
        if self._flooding():
            return
        if self.message.contact_phone and not self.text:
            # Cleaned like typed text: a contact or payload may carry control or bidi characters too.
            self.text = clean(self.message.contact_phone[:MAX_ANALYSED_CHARS]).strip()
        pressed = self.payload is not None
        if pressed and not self.text:
            # A pressed button carries only its payload; the rules below read it from there.
            self.text = clean((self.payload or "")[:MAX_ANALYSED_CHARS]).strip()
        if not self.text:
            self._no_text()
            return
        if self.payload and self.payload.startswith(RATING_PREFIX):
            # An old rating button pressed again, or pressed while a person has the chat: ignored.
            if state.rating_due and not state.handed_off:
                self._rated(self.payload.removeprefix(RATING_PREFIX))
            return
        typed = self.text.strip()
        if state.awaiting == AWAIT_RATING and state.rating_due and typed in RATING_TEXTS:
            self._rated(typed)
            return
        if self.text.split()[0].lower() == START_COMMAND and not state.handed_off:  # text is not blank here
            self.say("greeting", company=self.book.company.name)
            return
        # Commands ("/help") and buttons are not the client's own words: they say nothing about the persona.
        if pressed or self.text.startswith("/"):
            verdict = Verdict(state.persona, {})
        else:
            active = self.book.scenario(state.active.scenario_id) if state.active else None
            verdict = self.content.personas.judge(
                state.persona_memory,
                state.persona,
                self.text,
                self.message.at,
                in_trouble=bool(active and active.complaint),
            )
            self.heard = self.content.hearing.hear(self.text)
            if self.heard.acts:
                self.turn.explain["acts"] = self.heard.explain()
            better = any(act in self.heard.answers for act in ("helped", "partly"))
            if self.heard.has("tried") and not better:
                # "Перезагрузил, вроде стало лучше" is no "tried, and it still does not work".
                state.tried = True
        state.persona = verdict.label
        explained = verdict.explain()
        self.turn.explain["persona"] = explained
        if verdict.cues:
            state.remember_cues(explained["cues"])
        urgent = self.content.urgent.detect(self.text) if not pressed and not state.with_operator else None
        if urgent and state.urgent is None:
            self._urgent(urgent)
            return
        if (state.campaign or parse_payload(self.payload)) and self._campaign_answer(pressed):
            return
        if state.handed_off:
            self._layer("waiting")
            # What the client adds for the person is collected, the open request's details included.
            served = self._current_scenario()
            wanted = [n for n in served.details if n not in state.details] if served else []
            asked = state.active.asked if state.active else None
            collected = self._collect(self._extract(asked=asked, needed=wanted))
            if asked and asked in collected:
                state.active = None
            if not state.with_operator:
                self._while_waiting(noted=bool(collected))
            return
        if verdict.escalate:
            self._layer("escalation")
            self._collect(self._extract(asked=None, needed=()))
            self._escalate()
            return
        self._hear()
        heard_out = self.say.said("complaint_heard")
        if verdict.angry_now and state.persona == "aggressor" and not self.handed_off_now and not heard_out:
            # Said first, and only when no one is being called in this turn: "we'll sort it out now"
            # must not sit beside "people answer tomorrow at 9".
            self.say.first("anger_heard")

    def _hear(self) -> None:
        """The layers, in order, until one takes the message."""
        awaiting, awaiting_scenario = self.state.awaiting, self.state.awaiting_scenario
        self.awaited = awaiting
        if self._awaited_answer():
            return
        self._hear_the_rest()
        if awaiting and self.turn.explain.get("layer") in _ASIDES and not self.state.handed_off:
            # "Минутку, гляну" or "а это надолго?" instead of an answer: the question stays open.
            self.state.awaiting = self.state.awaiting or awaiting
            self.state.awaiting_scenario = self.state.awaiting_scenario or awaiting_scenario

    def _hear_the_rest(self) -> None:
        human = self.content.human_requests.detect(self.text) if self.payload is None else None
        if human or self.payload == HUMAN:
            self._layer("person", cue=human.cue if human else "button")
            # "Позовите оператора, договор 7654321": the person should not have to ask again.
            self._collect(self._extract(asked=None, needed=()))
            named = None if self._current_scenario() else self._named_request()
            self._handoff(HandoffReason.CLIENT_ASKED, scenario=named, note=human.cue if human else "button")
            return
        heard = self.heard
        if (heard.has("cancel") or self.control.is_cancel(self.text)) and len(self.text) < 60:
            self._layer("act", act="cancel")
            self._cancel()
            return
        self._understand()

    # --- answers to a campaign's message -------------------------------------------------------
    def _campaign_answer(self, pressed: bool) -> bool:
        """A campaign's button, «СТОП», or a short yes/no to its offer; the client's own words are noted
        as an answer (once) and go on through the usual layers. True when the message was taken here."""
        state = self.state
        chosen = parse_payload(self.payload)
        campaign_id = chosen[0] if chosen else state.campaign
        if campaign_id is None or (pressed and chosen is None):
            return False
        campaign = self.content.campaigns.get(campaign_id)
        if chosen:
            action: str | None = chosen[1]
        elif state.campaign_answered:
            # After the client's first answer, a "да" answers the bot's later questions, not the offer.
            action = CampaignAction.STOP if is_stop(self.text) else None
        else:
            action = typed_action(campaign, self.text, self.heard.has("yes"), self.heard.has("no"))
        if state.handed_off and action != CampaignAction.STOP:
            # A person has the conversation: only the way out is the bot's to take.
            return False
        if action is None:
            if not state.campaign_answered:
                state.campaign_answered = True
                self.turn.events.append(CampaignAnswered(campaign_id))
            return False
        self._layer("campaign", campaign=campaign_id, action=action)
        state.campaign, state.campaign_answered = None, True
        self.turn.events.append(CampaignAnswered(campaign_id, action))
        if action == CampaignAction.STOP:
            self.say("campaign.stopped")
        elif action == CampaignAction.LATER:
            self.say("campaign.later")
        elif action == CampaignAction.CALLBACK and self.book.scenario("callback") is not None:
            if state.active:
                state.suspended.append(state.active)
            state.active = PendingRequest("callback")
            self._continue_active()
        else:
            category = (campaign.spec.sales_category if campaign else None) or DEFAULT_CATEGORY
            kind = TaskKind.SALES if action == CampaignAction.INTERESTED else TaskKind.CALLBACK
            title = campaign.spec.title if campaign else campaign_id
            self.turn.events.append(
                TaskCreated(kind, category, f"campaign:{campaign_id}", {"campaign": title})
            )
            self.say("campaign.interested")
            self._handoff(HandoffReason.CAMPAIGN_INTEREST, category=category, note=title)
        return True

    # --- waiting for a person ------------------------------------------------------------------
    def _while_waiting(self, *, noted: bool = False) -> None:
        heard, say = self.heard, self.say
        question = heard.question
        if noted:
            say("waiting_noted")
            return
        if question in ("wait_person", "when", "hours"):
            say("waiting_when")
            self._say_when(self._plan(self.state.handoff_category or DEFAULT_CATEGORY))
        elif question:
            self._faq(question)
            say("waiting_for_human")
        elif any(heard.has(act) for act in _CLOSINGS):
            say("closing_waiting")
        elif any(heard.has(act) for act in ("wait", "yes", "no", "ok")):
            say("waiting_ack")
        else:
            say("waiting_for_human")

    # --- answers to the bot's own questions ----------------------------------------------------
    def _awaited_answer(self) -> bool:
        if self.payload is None and self.content.human_requests.detect(self.text):
            # "Можно с человеком поговорить?" instead of an answer: the request for a person comes first.
            self.state.awaiting = self.state.awaiting_scenario = None
            return False
        awaiting, self.state.awaiting = self.state.awaiting, None
        scenario_id, self.state.awaiting_scenario = self.state.awaiting_scenario, None
        heard, typed = self.heard, self.payload is None
        if awaiting == AWAIT_HUMAN_OFFER:
            leaning = heard.consent() if typed else None
            if typed and (heard.has("bot_complaint") or self.content.human_requests.detect(self.text)):
                # "Вы опять одно и то же пишете" to "Позвать специалиста?": that is a yes.
                leaning = True
            elif typed and self.content.human_requests.refuses(self.text):
                leaning = False  # "сама разберусь"
            if self.payload == HUMAN or leaning is True:
                self._layer("answer", to="human_offer", said="yes")
                self._handoff(HandoffReason.ACCEPTED_OFFER)
                return True
            if self.payload == NO_HUMAN or leaning is False:
                self._layer("answer", to="human_offer", said="no")
                if typed and self.state.active is None and self._names_a_request():
                    # "Извините, это ребёнок нажимал. У меня не работает интернет": no person, and the
                    # request is heard like any other.
                    return False
                self.say("handoff_declined")
                self._continue_active()
                return True
        if awaiting == AWAIT_SOLVED:
            scenario = self.book.scenario(scenario_id or "")
            if typed and self.content.human_requests.refuses(self.text):
                # "Не надо оператора, сам разберусь" to "Помогло?": no one is called.
                self._layer("answer", to="solved", said="no_person")
                self.say("handoff_declined_after_advice")
                return True
            if typed and heard.question and "?" in self.text and scenario is not None:
                # "А через сколько он сам разблокируется?": a question, not yet the answer.
                self._layer("question", question=heard.question, during="solved")
                self._faq(heard.question, scenario)
                self._ask_if_solved(scenario)
                return True
            if typed and scenario is not None and self._choice_corrected(scenario):
                return True
            leaning = heard.leaning() if typed else None
            if leaning is None and typed and any(heard.has(act) for act in _CLOSINGS):
                leaning = True  # "спасибо!" after the advice: it helped
            if self.payload == SOLVED or leaning is True:
                self._layer("answer", to="solved", said="yes")
                self.say("solved")
                return True
            if self.payload == NOT_SOLVED or leaning is False:
                self._layer("answer", to="solved", said="partly" if heard.has("partly") else "no")
                self.say("not_solved")
                category = scenario.category if scenario and scenario.category else DEFAULT_CATEGORY
                self._handoff(
                    HandoffReason.NOT_SOLVED, category=category, scenario=scenario, announce_category=False
                )
                return True
            if heard.question and scenario is not None:
                # "А это надолго?" instead of an answer: answered, and the question put again.
                self._layer("question", question=heard.question, during="solved")
                self._faq(heard.question, scenario)
                self._ask_if_solved(scenario)
                return True
        return False

    def _choice_corrected(self, scenario: Scenario) -> bool:
        """ "Ой, не так — это банк заблокировал" after the advice: the choice is corrected and the advice
        for the right one given instead."""
        choices = [n for n in scenario.details if self.book.details[n].type is DetailKind.CHOICE]
        if not choices:
            return False
        extraction = Extraction()
        for name in choices:
            found = self.content.extractor.choices[name].find(self.text, asked=False, first_named=True)
            if found is not None:
                extraction.found[name] = found
        named = [n for n in choices if n in extraction.found and n in self.state.details]
        if (
            named
            and all(extraction.found[n].value == self.state.details[n].value for n in named)
            and self.heard.leaning() is None
        ):
            # "Да говорю же, я сама её заблокировала": the same answer again, not whether it helped.
            self._layer("answer", to=named[0], repeated=True)
            self._ask_if_solved(scenario)
            return True
        # "Это вы её заблокировали" after the advice for "I did it myself": the choice was another one.
        if not named or not self._collect(extraction):
            return False
        changed = named
        self._layer("answer", to=changed[0], corrected=True)
        self._answer(scenario)
        return True

    # --- requests, details and acts ------------------------------------------------------------
    def _understand(self) -> None:
        state = self.state
        active = state.active
        scenario = self.book.scenario(active.scenario_id) if active else None
        asked = active.asked if active else None
        extraction = self._extract(asked, self._missing(scenario))
        if self.control.is_correction(self.text) and (corrected := self._correction()) is not None:
            for name, found in corrected.found.items():
                extraction.found.setdefault(name, found)
                if name in extraction.found and extraction.found[name] is not found:
                    extraction.found[name] = found
            extraction.invalid = None
        answered = bool(asked and asked in extraction.found)
        ranking = None
        match: Match | None = None
        if not answered:
            ranking = self.content.matcher.rank(self.text)
            match = self.content.matcher.decide(ranking)
        self.turn.explain["match"] = (
            {
                "scenario": match.scenario_id,
                "score": round(match.score, 2),
                "margin": round(match.margin, 2),
                "evidence": match.evidence,
            }
            if match
            else None
        )
        new = self.book.scenario(match.scenario_id) if match else None
        switching = bool(new and match and active and asked and not new.smalltalk)
        if (
            switching
            and new
            and active
            and new.id != active.scenario_id
            and match
            and (match.score < SWITCH_SCORE or match.margin < SWITCH_MARGIN)
        ):
            # A question is open: an answer that only sounds like another request does not switch to it.
            new = None
        question = self.heard.question
        if (
            new
            and active
            and asked
            and question
            and "?" in self.text
            and new.id != active.scenario_id
            and match is not None
            and self.heard.acts[QUESTION_PREFIX + question]
            >= max(QUESTION_OVER_SWITCH, QUESTION_SHARE_OVER_SWITCH * match.score)
        ):
            # "А это платно будет, если мастер придёт?" while a question is open: a question about the
            # request under way, not a new one (its words may sound like another request).
            new = None
        corrects = any(name in state.details for name in extraction.found)
        if new and (
            self._is_closing_of(new, match) or (corrects and new.id != (scenario.id if scenario else None))
        ):
            # "Хорошо, спасибо, ждём звонка" after a call-back was booked; "ой, номер другой: ..." while
            # another request is open: neither is a new request.
            new = None
        if new:
            self.turn.explain.setdefault("scenarios", []).append(new.id)
        if new and not new.smalltalk and (scenario is None or new.id != scenario.id):
            extra = self._extract(None, self._missing(new))
            for name, found in extra.found.items():
                extraction.found.setdefault(name, found)
            extraction.invalid = None
        collected = self._collect(extraction)
        if answered or (collected and asked):
            self._layer("answer", to=asked)
        new_request = bool(new and not new.smalltalk and (scenario is None or new.id != scenario.id))
        complaint = self.heard.acts.get("bot_complaint", 0.0)
        clear_request = new_request and match is not None and complaint < STRONG_COMPLAINT
        if complaint and complaint >= max(self.heard.acts.values()) and not clear_request:
            # "Вы опять про тарифы, я в третий раз объясняю...": a person, for the request named if any.
            self._layer("act", act="bot_complaint")
            self.say("missed_point")
            served = new if new and not new.smalltalk else scenario
            if served is not None:
                self.turn.explain.setdefault("scenarios", []).append(served.id)
            self._handoff(HandoffReason.MISSED_POINT, scenario=served)
            return
        # "Что ты умеешь?", "вы бот?": about the bot itself, never something the company does not do.
        about_the_bot = self.heard.has("capabilities") or bool(new and new.smalltalk)
        elsewhere = (
            ranking is not None
            and not about_the_bot
            and self.content.matcher.out_of_scope(ranking, mid_flow=bool(active or self.awaited))
        )
        if not answered and not new_request and not elsewhere and self._act(scenario, new):
            return
        if new and new.smalltalk:
            self._layer("smalltalk", scenario=new.id)
            state.not_understood = 0
            self._answer(new)
            if state.active and not collected and not self._closing_said():
                self.say.new_block()
                self._ask(state.active.asked or self._missing(scenario)[0])
            return
        if new and (scenario is None or new.id != scenario.id):
            self._layer("request", scenario=new.id)
            state.not_understood = 0
            if active:
                state.suspended = [p for p in state.suspended if p.scenario_id != active.scenario_id]
                state.suspended.append(active)
            state.active = PendingRequest(new.id)
            second = self.book.scenario(match.also) if match and match.also else None
            if second and all(p.scenario_id != second.id for p in state.suspended):
                # "Сменить тариф и узнать, как оплатить": the second request waits its turn.
                state.suspended.insert(0, PendingRequest(second.id))
                self.turn.explain.setdefault("scenarios", []).append(second.id)
                # Its details said in the same message ("ставки по вкладам") are not asked again.
                self._collect(self._extract(None, self._missing(second)))
            if new.complaint and new.id not in state.apologised:
                # Something of ours is broken: said once per request, before the first question.
                state.apologised.append(new.id)
                self.say(
                    "complaint_heard", category=self._category_title(new), company=self.book.company.name
                )
            if new.done.ask_if_solved and self.heard.has("tried") and self.heard.leaning() is False:
                # "Перезагружал пять раз, ваш совет не работает": the advice was tried already, so a person
                # now, and what they will need asked while they come.
                self._tried_then_person(new)
                return
            self._continue_active()
            return
        if extraction.invalid and active and not collected:
            self._layer("answer", to=asked, invalid=extraction.invalid.problem)
            self._invalid(extraction.invalid.name, extraction.invalid.problem)
            return
        if collected or new:
            state.not_understood = 0
            if active:
                active.failures = 0
            if collected and not answered and asked and all(name in state.details for name in collected):
                # A correction while something else is asked: noted above, and the question put again.
                self._reask(apart=False)
                return
            self._continue_active()
            if self.say.empty() and collected:
                # A detail on its own ("договор 1234567"), with no request yet: take it and ask what is up.
                self._layer("detail")
                spec = self.book.details[collected[0]]
                self.say("detail_noted", detail=spec.title, value=state.details[collected[0]].display)
                self.say("ask_request")
            return
        if active and self.control.is_resolved(self.text):
            self._layer("act", act="helped")
            self.say("solved")
            state.active = None
            return
        if elsewhere or (ranking is not None and not self.heard.answers and self._unrelated(ranking)):
            self._layer("out_of_scope")
            self.say("out_of_scope", topics=self._topics(), company=self.book.company.name)
            if not self._no_progress():
                self._reask()
            return
        if active and active.asked and self._repeats_known():
            # "5677" again, a value the bot already has: noted, and the open question put again.
            self._layer("aside", repeated=True)
            self.say("aside_noted")
            self._reask()
            return
        if active and active.asked and self._well_formed():
            # Words about something else while a question is open ("с самого утра"): kept for the people
            # who will read the conversation, and the question put again; a third one offers a person.
            # A question the bot has no answer for ("а интернет пока не отключат?") is told so.
            asked_something = "?" in self.text
            self._layer("aside", question=asked_something)
            self.say("faq.other" if asked_something else "aside_noted")
            if not self._no_progress():
                self._reask()
            return
        if "?" in self.text and self._well_formed() and (active or state.last_scenario):
            # "А в формате для 1С можно?" about the request: a question the bot cannot answer is told so.
            self._layer("question", question="other")
            self.say("faq.other")
            if not self._no_progress():
                self._reask()
            return
        self._not_understood()

    def _repeats_known(self) -> bool:
        """Whether the message only repeats a detail the bot already has ("а, понял. 6781")."""
        known = {"".join(ch for ch in v.value if ch.isalnum()).lower() for v in self.state.details.values()}
        numbers = _NUMBERS.findall(self.text)
        if numbers:
            return all(number in known for number in numbers)
        said = "".join(ch for ch in self.text if ch.isalnum()).lower()
        return bool(said) and said in known

    def _correction(self) -> Extraction | None:
        """ "Ой, номер другой: ..." while something else is asked: the detail of the kind given, read again
        as if it were the question."""
        patched = self._patched_number()
        if patched is not None:
            return patched
        for name in list(self.state.details):
            # "4521, а не 4512": the value being replaced is not the new one.
            old = self.state.details[name]
            text = self.text
            for said in {old.raw, old.value} - {""}:
                text = text.replace(said, " " * len(said))
            extraction = self.content.extractor.extract(
                text, self.local_now, asked=name, needed=(name,), payload=self.payload
            )
            if name in extraction.found and extraction.found[name].value != self.state.details[name].value:
                extraction.found = {name: extraction.found[name]}
                extraction.invalid = None
                return extraction
        return None

    def _patched_number(self) -> Extraction | None:
        """ "Ой, не 30, а 38" about an address the bot has: the house number in it is replaced."""
        said = _NOT_THIS_BUT_THAT.search(self.text) or _THAT_NOT_THIS.search(self.text)
        if said is None:
            return None
        wrong, right = said.group("wrong"), said.group("right")
        for name, value in self.state.details.items():
            spec = self.book.details.get(name)
            if spec is None or spec.type is not DetailKind.ADDRESS:
                continue
            pattern = re.compile(rf"(?<![\w]){re.escape(wrong)}(?![\w])")
            if len(pattern.findall(value.value)) == 1:
                fixed = pattern.sub(right, value.value)
                return Extraction(found={name: Found(name, fixed, fixed)})
        return None

    def _unrelated(self, ranking: Ranking) -> bool:
        """Whether a message is about something the company does not serve: its out-of-scope examples say
        so, or it is plain Russian with hardly a word any request of the company uses."""
        if self.content.matcher.out_of_scope(ranking):
            return True
        return self.content.matcher.evidence(ranking) < UNRELATED_BELOW and self._well_formed()

    def _well_formed(self) -> bool:
        """Real words, not a cat on the keyboard: most words are in the dictionary."""
        lemmatizer = self.content.hearing.lemmatizer
        # One-letter words ("а", "в") say nothing either way; codes like "1С" count as unknown.
        found = [word for word in lemmatizer.words(self.text) if len(word) > 1]
        known = sum(1 for word in found if lemmatizer.is_known(word))
        return known >= 2 and known >= WELL_FORMED_SHARE * len(found)

    def _is_closing_of(self, new: Scenario, match: Match | None) -> bool:
        """Thanks or goodbye that names the request just served, or barely names another ("спасибо, жду
        звонка" after a connection request was taken): a closing, not a request."""
        if not any(self.heard.has(act) for act in _CLOSINGS) or self.state.last_scenario is None:
            return False
        if new.id == self.state.last_scenario:
            return True
        return self.state.active is None and match is not None and match.score < SWITCH_SCORE

    def _closing_said(self) -> bool:
        return self.say.said("smalltalk.thanks") or self.say.said("smalltalk.goodbye")

    def _act(self, scenario: Scenario | None, new: Scenario | None) -> bool:
        """A dialogue act that is not an answer to anything pending; True when it took the message."""
        heard, state = self.heard, self.state
        question = heard.question
        pending = bool(state.active and state.active.asked)
        if question:
            self._layer("question", question=question)
            self._faq(question, scenario)
            if not (pending and self._no_progress()):
                self._reask()
            return True
        if heard.has("capabilities") and new is None:
            self._layer("capabilities")
            self.say("capabilities", topics=self._topics(), company=self.book.company.name)
            if not (pending and self._no_progress()):
                self._reask()
            return True
        if heard.has("goodbye"):
            self._layer("act", act="goodbye")
            self.say("smalltalk.goodbye")
            state.active, state.suspended = None, []
            return True
        if heard.has("thanks"):
            self._layer("act", act="thanks")
            self.say("smalltalk.thanks")
            if state.active:
                # Thanks while a question is open: no buttons pushed at the client again, only a reminder.
                request = self.book.scenario(state.active.scenario_id)
                self.say("pending_reminder", request=request.title if request else "")
            return True
        if heard.has("preamble") and scenario is None and not (new and new.smalltalk):
            self._layer("act", act="preamble")
            self.say("listening")
            return True
        if heard.has("ok") and scenario is None:
            self._layer("act", act="ok")
            self.say("noted")
            return True
        if heard.has("wait"):
            self._layer("wait")
            self.say("waiting_ack")
            return True
        if heard.has("tried") and scenario is not None:
            self._layer("act", act="tried")
            self._continue_active()
            return True
        served = self.book.scenario(state.last_scenario) if state.last_scenario else None
        if scenario is None and served and served.done.ask_if_solved and heard.leaning() is False:
            # "Сделал, как вы сказали, всё равно не раздаёт" after the advice: it did not help.
            self._layer("answer", to="solved", said="no", late=True)
            self.say("not_solved")
            self._handoff(HandoffReason.NOT_SOLVED, scenario=served, announce_category=False)
            return True
        if scenario is None and (heard.has("no") or heard.has("not_helped") or heard.has("yes")):
            # A yes or a no to nothing the bot asked: no step forward.
            self._layer("act", act="unasked_answer")
            if not self._no_progress():
                self.say("ask_request")
            return True
        return False

    def _reask(self, *, apart: bool = True) -> None:
        """After an aside, the question still open is put again (in a message of its own when `apart`)."""
        active = self.state.active
        if active and active.asked:
            if apart:
                self.say.new_block()
            self._ask(active.asked)

    def _faq(self, question: str, scenario: Scenario | None = None) -> None:
        """Answer a question asked inside a flow from the guides: the request's own answer, else a general
        one."""
        scenario = scenario or self._current_scenario()
        moment = f"faq.{question}"
        if scenario is not None and self.content.guides.has(f"faq.{scenario.id}.{question}"):
            moment = f"faq.{scenario.id}.{question}"
        if not self.content.guides.has(moment):
            moment = "faq.other"
        self.say(moment, company=self.book.company.name)

    def _names_a_request(self) -> bool:
        """Whether the message names a request (not small talk) clearly enough to serve it."""
        match = self.content.matcher.match(self.text)
        named = self.book.scenario(match.scenario_id) if match else None
        return named is not None and not named.smalltalk

    def _named_request(self) -> Scenario | None:
        """The request a message names when it is handed over at once ("интернет медленный, позовите
        живого"): noted, so the person sees what it is about and the right team takes it."""
        match = self.content.matcher.match(self.text)
        named = self.book.scenario(match.scenario_id) if match else None
        if named is None or named.smalltalk:
            return None
        self.state.last_scenario = named.id
        self.turn.explain.setdefault("scenarios", []).append(named.id)
        return named

    def _current_scenario(self) -> Scenario | None:
        state = self.state
        scenario_id = state.active.scenario_id if state.active else state.last_scenario
        return self.book.scenario(scenario_id) if scenario_id else None

    def _category_title(self, scenario: Scenario) -> str:
        category = scenario.category or DEFAULT_CATEGORY
        return self.book.categories[category].title if category in self.book.categories else category

    def _topics(self) -> str:
        """What the bot helps with, from the scenarios' titles."""
        titles = [s.title for s in self.book.scenarios if not s.smalltalk]
        return ", ".join(title[:1].lower() + title[1:] for title in titles)

    # --- details ---------------------------------------------------------------------------------
    def _missing(self, scenario: Scenario | None) -> list[str]:
        if scenario is None:
            return []
        missing = [name for name in scenario.details if name not in self.state.details]
        if self.state.tried and scenario.done.ask_if_solved:
            # The client already did the first steps: the questions that pick the advice are skipped.
            missing = [n for n in missing if self.book.details[n].type is not DetailKind.CHOICE]
        return missing

    def _extract(self, asked: str | None, needed: list[str] | tuple[str, ...]) -> Extraction:
        return self.content.extractor.extract(
            self.text, self.local_now, asked=asked, needed=needed, payload=self.payload
        )

    def _collect(self, extraction: Extraction) -> list[str]:
        """Store found details; say so for corrections. Returns the names newly set or changed."""
        changed = []
        for kind in extraction.refused:
            # A full card number or a CVV: not taken, not repeated, and the client is told why.
            if not self.say.said(f"refused.{kind}"):
                self.say(f"refused.{kind}")
        for name, found in extraction.found.items():
            spec = self.book.details[name]
            display = found.raw if spec.type in _SHOWN_AS_WRITTEN else found.value
            if spec.type is DetailKind.PHONE:
                display = phone_for_display(found.value)
            previous = self.state.details.get(name)
            if previous and previous.value == found.value:
                continue
            self.state.details[name] = DetailValue(found.value, found.raw, display)
            self.turn.events.append(
                DetailCollected(name, found.value, found.raw, previous.value if previous else None)
            )
            changed.append(name)
            if previous:
                self.say("detail_corrected", detail=spec.title, value=display)
        return changed

    def _ask(self, name: str) -> None:
        if name in self.state.details:
            self.turn.explain.setdefault("reasked", []).append(name)
        spec = self.book.details[name]
        moment = f"ask.{name}" if self.content.guides.has(f"ask.{name}") else "ask_detail"
        self.say(moment, detail=spec.title)
        if spec.type is DetailKind.CHOICE:
            self.say.buttons(*(Button(o.label, choice_payload(name, o.id)) for o in spec.options))

    def _invalid(self, name: str, problem: str) -> None:
        active = self.state.active
        if active is None:
            return
        active.failures += 1
        spec = self.book.details[name]
        if active.failures >= MAX_DETAIL_FAILURES:
            self.say("too_many_failures", detail=spec.title)
            self._offer_human()
            return
        problem_text = (
            self.say.text(f"problem.{problem}") if self.content.guides.has(f"problem.{problem}") else ""
        )
        self.say("detail_invalid", detail=spec.title, problem=problem_text or problem)
        if spec.type is DetailKind.CHOICE:
            self.say.buttons(*(Button(o.label, choice_payload(name, o.id)) for o in spec.options))

    # --- request flow ----------------------------------------------------------------------------
    def _continue_active(self) -> None:
        """Ask the next missing detail of the active request, or complete it."""
        state = self.state
        while state.active:
            scenario = self.book.scenario(state.active.scenario_id)
            if scenario is None:
                state.active = None
                break
            missing = self._missing(scenario)
            if missing:
                if state.active.asked != missing[0]:
                    state.active.failures = 0
                state.active.asked = missing[0]
                self._ask(missing[0])
                return
            state.active = None
            self._answer(scenario)
            if state.handed_off or state.awaiting:
                return
            if state.suspended:
                state.active = state.suspended.pop()
                resumed = self.book.scenario(state.active.scenario_id)
                self.say.new_block()
                self.say("resume", request=resumed.title if resumed else "")

    def _values(self) -> dict[str, str]:
        values = {name: d.display for name, d in self.state.details.items()}
        values["company"] = self.book.company.name
        return values

    def _answer(self, scenario: Scenario) -> None:
        done = scenario.done
        if not scenario.smalltalk:
            self.state.last_scenario = scenario.id
        if self.state.tried and done.ask_if_solved:
            # The first steps were done already: no advice to repeat, people look into it at once.
            self.say("tried_already")
            self._handoff(HandoffReason.TRIED_BASICS, scenario=scenario, announce_category=False)
            return
        values = self._values()
        if done.answer:
            moment = done.answer
            for name, detail in self.state.details.items():
                moment = moment.replace("{" + name + "}", detail.value)
            self.say(moment, **values)
        category = scenario.category or DEFAULT_CATEGORY
        if done.task:
            task_details = {name: self.state.details[name].value for name in scenario.details}
            when = task_details.get("callback_time", "")
            due = due_moment(when, self.local_now) if when else None
            self.turn.events.append(
                TaskCreated(done.task, category, scenario.id, task_details, due.isoformat() if due else "")
            )
        if done.handoff:
            self._handoff(
                HandoffReason.SCENARIO, category=category, scenario=scenario, priority=done.priority
            )
        elif done.ask_if_solved:
            self._ask_if_solved(scenario)

    def _ask_if_solved(self, scenario: Scenario) -> None:
        self.say("ask_if_solved")
        self.say.buttons(
            self.say.button("button.solved", SOLVED), self.say.button("button.not_solved", NOT_SOLVED)
        )
        self.state.awaiting, self.state.awaiting_scenario = AWAIT_SOLVED, scenario.id

    def _cancel(self) -> None:
        active = self.state.active
        if active is None:
            self.say("nothing_to_cancel")
            return
        scenario = self.book.scenario(active.scenario_id)
        self.say("cancelled", request=scenario.title if scenario else "")
        self.state.active = self.state.suspended.pop() if self.state.suspended else None
        if self.state.active:
            self.say.new_block()
            self._continue_active()

    def _not_understood(self) -> None:
        self._layer("not_understood")
        self.turn.explain["fallback"] = True
        self.state.not_understood += 1
        if self.state.not_understood >= NOT_UNDERSTOOD_BEFORE_HANDOFF:
            self._handoff(HandoffReason.STUCK)
            return
        self.turn.events.append(NotUnderstood(NOT_UNDERSTOOD, self.text))
        if self.state.not_understood >= NOT_UNDERSTOOD_BEFORE_OFFER:
            self.say("offer_human")
            self._offer_human()
            return
        self.say("not_understood")
        self._reask()

    def _no_progress(self) -> bool:
        """A turn that moved nothing forward (out of scope, an answer to nothing): after two in a row a
        person is offered, after three the conversation goes to one. True when that happened."""
        state = self.state
        state.not_understood += 1
        if state.not_understood >= NOT_UNDERSTOOD_BEFORE_HANDOFF:
            self._handoff(HandoffReason.STUCK)
            return True
        if state.not_understood >= NOT_UNDERSTOOD_BEFORE_OFFER and state.awaiting is None:
            self.say.new_block()
            self.say("offer_person")
            self._offer_human()
            return True
        return False

    def _offer_human(self) -> None:
        self.say.buttons(self.say.button("button.human", HUMAN), self.say.button("button.no_human", NO_HUMAN))
        self.state.awaiting = AWAIT_HUMAN_OFFER

    # --- people ------------------------------------------------------------------------------------
    def _flooding(self) -> bool:
        """Take a token for this message; without one, the message goes unanswered (once: a request to
        slow down). Time comes with the message, so every worker sees the same bucket."""
        state, now = self.state, self.message.at
        last = datetime.fromisoformat(state.flood_at) if state.flood_at else None
        tokens = float(FLOOD_BURST) if state.flood_tokens < 0 or last is None else state.flood_tokens
        if last is not None:
            tokens = min(float(FLOOD_BURST), tokens + max(0.0, (now - last).total_seconds()) / FLOOD_REFILL_S)
        state.flood_at = now.isoformat()
        if tokens >= 1.0:
            state.flood_tokens = tokens - 1.0
            if state.flood_tokens >= FLOOD_BURST / 2:
                state.flood_warned = False
            return False
        state.flood_tokens = tokens
        self.turn.explain["flood"] = True
        if not state.flood_warned:
            state.flood_warned = True
            self.say("flood")
        return True

    def _rated(self, score_text: str) -> None:
        self.state.awaiting = None
        self.state.rating_due = False
        if score_text not in RATING_TEXTS:
            return
        score = int(score_text)
        self.turn.events.append(RatingGiven(score))
        self.say("rating_good" if score >= GOOD_RATING else "rating_bad")

    def _urgent(self, urgent: Urgent) -> None:
        """A situation that cannot wait (money leaving the account, a stolen card, a death, a threat): a
        person at once, first in the queue, whatever else was going on; details said are kept."""
        self._layer("urgent", situation=urgent.situation, evidence=urgent.evidence)
        state = self.state
        match = self.content.matcher.match(self.text)
        named = self.book.scenario(match.scenario_id) if match else None
        served = named if named and not named.smalltalk else self._current_scenario()
        if served is not None:
            self.turn.explain.setdefault("scenarios", []).append(served.id)
            state.last_scenario = served.id
        wanted = [n for n in served.details if n not in state.details] if served else []
        self._collect(self._extract(asked=None, needed=wanted))
        state.urgent = urgent.situation
        category = urgent.category if urgent.category in self.book.categories else None
        moment = f"urgent.{urgent.situation}"
        self.say(moment if self.content.guides.has(moment) else "urgent")
        state.active, state.suspended = None, []
        self._handoff(
            urgent_reason(urgent.situation),
            category=category,
            scenario=served,
            priority=Priority.HIGH,
            note=urgent.evidence,
            announce_category=False,
        )
        missing = [n for n in wanted if n not in state.details]
        if served is not None and missing:
            # What the person will need first, asked while they come (the answer is kept for them).
            state.active = PendingRequest(served.id, asked=missing[0])
            self.say.new_block()
            self._ask(missing[0])

    def _tried_then_person(self, scenario: Scenario) -> None:
        state = self.state
        state.tried = True
        state.last_scenario = scenario.id
        self.say("tried_already")
        self._handoff(HandoffReason.TRIED_BASICS, scenario=scenario, announce_category=False)
        missing = self._missing(scenario)
        if missing:
            state.active = PendingRequest(scenario.id, asked=missing[0])
            self.say.new_block()
            self._ask(missing[0])

    def _escalate(self) -> None:
        """Anger or a threat: straight to a senior person, first in the queue, with the request the
        message names ("ТРЕТИЙ РАЗ ЗА НЕДЕЛЮ НЕТ ИНТЕРНЕТА") noted for them."""
        scenario = self._current_scenario() or self._named_request()
        category = scenario.category if scenario and scenario.category else DEFAULT_CATEGORY
        title = self.book.categories[category].title if category in self.book.categories else category
        self.say("escalation", category=title)
        self._say_when(
            self._handoff(
                HandoffReason.ESCALATION,
                category=category,
                scenario=scenario,
                priority=Priority.HIGH,
                announce=False,
            )
        )

    def _no_text(self) -> None:
        kind = self.message.attachment
        self.say(f"attachment.{kind.value}" if kind else "empty_message")
        if self.state.active and self.state.active.asked:
            self._ask(self.state.active.asked)

    def _plan(self, category: str) -> HandoffPlan:
        return self.content.teams.plan(category, self.message.channel, self.message.at)

    def _handoff(
        self,
        reason: str,
        *,
        category: str | None = None,
        scenario: Scenario | None = None,
        note: str = "",
        priority: str = Priority.NORMAL,
        announce: bool = True,
        announce_category: bool = True,
    ) -> HandoffPlan:
        """Hand the conversation to people; returns when they will answer. Without a request of its own the
        handoff goes to the category of the request served last, not to the general desk."""
        scenario = scenario or self._current_scenario()
        category = category or (scenario.category if scenario and scenario.category else DEFAULT_CATEGORY)
        title = self.book.categories[category].title if category in self.book.categories else category
        if self.state.persona == "aggressor":
            priority = Priority.HIGH
        self.state.handed_off = True
        self.state.handoff_reason = reason
        self.state.handoff_category = category
        self.state.awaiting = None
        self.handed_off_now = True
        if reason in NOT_UNDERSTOOD_HANDOFFS:
            self.turn.events.append(NotUnderstood(reason, self.text))
        plan = self._plan(category)
        self.turn.events.append(
            HandoffRequested(reason, category, priority, note, due_at=plan.due_at.isoformat())
        )
        if announce:
            if announce_category:
                self.say.new_block()
                self.say("handoff", category=title)
            self._say_when(plan)
        return plan

    def _say_when(self, plan: HandoffPlan) -> None:
        """When a person will answer: within the target, or when the team opens."""
        if plan.open_now:
            self.say("handoff_wait", wait=plan.wait)
        elif plan.opening:
            self.say("out_of_hours", opening=plan.opening)
