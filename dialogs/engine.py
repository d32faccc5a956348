"""The dialog engine: one client message and the conversation state in, replies and events out.

Pure and platform-free: no I/O, no clock (time comes with the message), no messenger or web imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from dialogs.content import Content, LiveContent
from dialogs.details.base import DetailKind
from dialogs.details.choice import choice_payload
from dialogs.details.extractor import Extraction
from dialogs.details.phone import phone_for_display
from dialogs.events import DetailCollected, Event, HandoffRequested, RatingGiven, TaskCreated
from dialogs.matcher import Match
from dialogs.messages import Button, IncomingMessage, Reply
from dialogs.scenarios import Scenario
from dialogs.state import ConversationState, DetailValue, PendingRequest
from dialogs.teams import HandoffPlan
from dialogs.text import MAX_ANALYSED_CHARS, clean
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


@dataclass(slots=True)
class Turn:
    """The outcome of one message: replies, events, and an explanation for `--explain` and operators."""

    replies: list[Reply] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    explain: dict[str, Any] = field(default_factory=dict)


class _Say:
    """Collects phrasings of one turn into replies; keeps the no-repeat memory of the conversation."""

    def __init__(self, content: Content, state: ConversationState, seed: str) -> None:
        self.content, self.state, self.seed = content, state, seed
        self.blocks: list[tuple[list[str], tuple[Button, ...]]] = [([], ())]

    def text(self, moment: str, **values: str) -> str:
        rendered = self.content.guides.render(
            moment, self.state.persona, values, self.state.used_phrases, seed=self.seed
        )
        if not moment.startswith(("button.", "problem.")):
            self.state.remember_phrase(rendered.key)
        return rendered.text

    def __call__(self, moment: str, **values: str) -> None:
        self.blocks[-1][0].append(self.text(moment, **values))

    def buttons(self, *buttons: Button) -> None:
        parts, _ = self.blocks[-1]
        self.blocks[-1] = (parts, tuple(buttons))
        self.blocks.append(([], ()))

    def button(self, moment: str, payload: str) -> Button:
        return Button(self.text(moment), payload)

    def empty(self) -> bool:
        """Whether nothing has been said in this turn yet."""
        return not any(parts for parts, _ in self.blocks)

    def new_block(self) -> None:
        if self.blocks[-1][0]:
            self.blocks.append(([], ()))

    def replies(self) -> list[Reply]:
        return [Reply(" ".join(parts), buttons) for parts, buttons in self.blocks if parts]


class Engine:
    """Runs scenarios over conversations."""

    def __init__(self, content: LiveContent) -> None:
        self.live = content

    def handle(self, state: ConversationState, message: IncomingMessage) -> Turn:
        """Process one client message, updating state in place."""
        content = self.live.get()
        run = _Run(content, state, message)
        run.go()
        run.turn.replies = run.say.replies()
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

    def _say(self, state: ConversationState) -> _Say:
        return _Say(self.live.get(), state, seed=f"operator:{state.turns}")

    @staticmethod
    def _release(state: ConversationState) -> None:
        state.handed_off = state.with_operator = False
        state.operator, state.handoff_reason, state.awaiting = "", None, None
        state.not_understood = 0

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
        self.say = _Say(content, state, seed=f"{message.channel}:{message.chat_id}")
        # Only the start of a huge message is analysed; storage keeps all of it.
        self.text = clean((message.text or "")[:MAX_ANALYSED_CHARS]).strip()
        # Dates the client writes are meant in the company's local time.
        self.local_now = message.at.astimezone(_zone(self.book.company.timezone))
        self.payload = message.button_payload

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
        if not pressed:
            state.remember_message(self.text, self.message.at.isoformat())
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
        state.persona = verdict.label
        explained = verdict.explain()
        self.turn.explain["persona"] = explained
        if verdict.cues:
            state.remember_cues(explained["cues"])
        if state.handed_off:
            self._collect(self._extract(asked=None, needed=()))
            if not state.with_operator:
                self.say("waiting_for_human")
            return
        if verdict.escalate:
            self._collect(self._extract(asked=None, needed=()))
            self._escalate()
            return
        if verdict.angry_now and state.persona == "aggressor":
            self.say("anger_heard")
        if self._awaited_answer():
            return
        human = self.content.human_requests.detect(self.text) if self.payload is None else None
        if human or self.payload == HUMAN:
            # "Позовите оператора, договор 7654321": the person should not have to ask again.
            self._collect(self._extract(asked=None, needed=()))
            self._handoff("client_asked", note=human.cue if human else "button")
            return
        if self.control.is_cancel(self.text) and len(self.text) < 60:
            self._cancel()
            return
        self._understand()

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

    def _escalate(self) -> None:
        """Anger or a threat: straight to a senior person, first in the queue."""
        scenario = self.book.scenario(self.state.active.scenario_id) if self.state.active else None
        category = scenario.category if scenario and scenario.category else DEFAULT_CATEGORY
        title = self.book.categories[category].title if category in self.book.categories else category
        self.say("escalation", category=title)
        self._say_when(self._handoff("escalation", category=category, priority="high", announce=False))

    def _no_text(self) -> None:
        kind = self.message.attachment
        self.say(f"attachment.{kind.value}" if kind else "empty_message")
        if self.state.active and self.state.active.asked:
            self._ask(self.state.active.asked)

    def _awaited_answer(self) -> bool:
        awaiting, self.state.awaiting = self.state.awaiting, None
        scenario_id, self.state.awaiting_scenario = self.state.awaiting_scenario, None
        if awaiting == AWAIT_HUMAN_OFFER:
            if self.payload == HUMAN or (self.payload is None and self.control.is_yes(self.text)):
                self._handoff("accepted_offer")
                return True
            if self.payload == NO_HUMAN or (self.payload is None and self.control.is_no(self.text)):
                self.say("handoff_declined")
                self._continue_active()
                return True
        if awaiting == AWAIT_SOLVED:
            scenario = self.book.scenario(scenario_id or "")
            solved = self.payload == SOLVED or (
                self.payload is None
                and (self.control.is_resolved(self.text) or self.control.is_yes(self.text))
            )
            if solved:
                self.say("solved")
                return True
            if self.payload == NOT_SOLVED or (self.payload is None and self.control.is_no(self.text)):
                self.say("not_solved")
                category = scenario.category if scenario and scenario.category else DEFAULT_CATEGORY
                self._handoff("not_solved", category=category, scenario=scenario)
                return True
        return False

    def _understand(self) -> None:
        state = self.state
        active = state.active
        scenario = self.book.scenario(active.scenario_id) if active else None
        asked = active.asked if active else None
        extraction = self._extract(asked, self._missing(scenario))
        match: Match | None = None
        if not (asked and asked in extraction.found):
            match = self.content.matcher.match(self.text)
        self.turn.explain["match"] = (
            {"scenario": match.scenario_id, "score": round(match.score, 3), "evidence": match.evidence}
            if match
            else None
        )
        new = self.book.scenario(match.scenario_id) if match else None
        if new:
            self.turn.explain.setdefault("scenarios", []).append(new.id)
        if new and not new.smalltalk and (scenario is None or new.id != scenario.id):
            extra = self._extract(None, self._missing(new))
            for name, found in extra.found.items():
                extraction.found.setdefault(name, found)
            extraction.invalid = None
        collected = self._collect(extraction)
        if new and new.smalltalk:
            state.not_understood = 0
            self._answer(new)
            if state.active and not collected:
                self.say.new_block()
                self._ask(state.active.asked or self._missing(scenario)[0])
            return
        if new and (scenario is None or new.id != scenario.id):
            state.not_understood = 0
            if active:
                state.suspended = [p for p in state.suspended if p.scenario_id != active.scenario_id]
                state.suspended.append(active)
            state.active = PendingRequest(new.id)
            self._continue_active()
            return
        if extraction.invalid and active and not collected:
            self._invalid(extraction.invalid.name, extraction.invalid.problem)
            return
        if collected or new:
            state.not_understood = 0
            if active:
                active.failures = 0
            self._continue_active()
            if self.say.empty() and collected:
                # A detail on its own ("договор 1234567"), with no request yet: take it and ask what is up.
                spec = self.book.details[collected[0]]
                self.say("detail_noted", detail=spec.title, value=state.details[collected[0]].display)
                self.say("ask_request")
            return
        if active and self.control.is_resolved(self.text):
            self.say("solved")
            state.active = None
            return
        self._not_understood()

    # --- details ---------------------------------------------------------------------------------
    def _missing(self, scenario: Scenario | None) -> list[str]:
        if scenario is None:
            return []
        return [name for name in scenario.details if name not in self.state.details]

    def _extract(self, asked: str | None, needed: list[str] | tuple[str, ...]) -> Extraction:
        return self.content.extractor.extract(
            self.text, self.local_now, asked=asked, needed=needed, payload=self.payload
        )

    def _collect(self, extraction: Extraction) -> list[str]:
        """Store found details; say so for corrections. Returns the names newly set or changed."""
        changed = []
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
        values = self._values()
        if done.answer:
            moment = done.answer
            for name, detail in self.state.details.items():
                moment = moment.replace("{" + name + "}", detail.value)
            self.say(moment, **values)
        category = scenario.category or DEFAULT_CATEGORY
        if done.task:
            task_details = {name: self.state.details[name].value for name in scenario.details}
            self.turn.events.append(TaskCreated(done.task, category, scenario.id, task_details))
        if done.handoff:
            self._handoff("scenario", category=category, scenario=scenario, announce=True)
        elif done.ask_if_solved:
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
        self.turn.explain["fallback"] = True
        self.state.not_understood += 1
        if self.state.not_understood >= NOT_UNDERSTOOD_BEFORE_HANDOFF:
            self._handoff("stuck")
            return
        if self.state.not_understood >= NOT_UNDERSTOOD_BEFORE_OFFER:
            self.say("offer_human")
            self._offer_human()
            return
        self.say("not_understood")
        if self.state.active and self.state.active.asked:
            self._ask(self.state.active.asked)

    def _offer_human(self) -> None:
        self.say.buttons(self.say.button("button.human", HUMAN), self.say.button("button.no_human", NO_HUMAN))
        self.state.awaiting = AWAIT_HUMAN_OFFER

    def _handoff(
        self,
        reason: str,
        *,
        category: str | None = None,
        scenario: Scenario | None = None,
        note: str = "",
        priority: str = "normal",
        announce: bool = True,
    ) -> HandoffPlan:
        """Hand the conversation to people; returns when they will answer."""
        if scenario is None and self.state.active:
            scenario = self.book.scenario(self.state.active.scenario_id)
        category = category or (scenario.category if scenario and scenario.category else DEFAULT_CATEGORY)
        title = self.book.categories[category].title if category in self.book.categories else category
        if self.state.persona == "aggressor":
            priority = "high"
        self.state.handed_off = True
        self.state.handoff_reason = reason
        self.state.awaiting = None
        plan = self.content.teams.plan(category, self.message.channel, self.message.at)
        self.turn.events.append(
            HandoffRequested(reason, category, priority, note, due_at=plan.due_at.isoformat())
        )
        if announce:
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
