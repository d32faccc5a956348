"""Trust: hostile input. Hypothesis pushes over 100,000 generated client messages through the engine and a
few thousand through the conversation service on a real SQLite file.

Every generated conversation mixes realistic Russian client phrases (so dialogs reach asked details,
answers with echoed values, handoffs, operators and ratings) with hostile text: Unicode edge cases,
bidi and zero-width characters, huge numbers, deeply nested markup, emoji sequences, YAML- and
template-looking text, Python-looking text, very long, empty and blank messages, random button payloads,
attachments and shared contacts.

Properties checked after every message:
- no exception escapes `Engine.handle`;
- every reply is a non-empty string of guide text and values: no control or bidi characters, valid
  buttons, and a reply for every message unless a person has the chat or an old rating button was pressed;
- nothing the client did not write looks like an unfilled placeholder (`{name}`) or a brace;
- client text is never evaluated: `{{7*7}}` never turns into 49, `{company}` never into the company name,
  `{contract!r}` or `{__class__}` never into Python reprs;
- no Python internals (tracebacks, reprs, `None`, `[]`, `{'`) that the client did not write;
- details shown back as written are the client's own words, verbatim;
- the state survives JSON (as storage keeps it) unchanged, and the next turn runs on the reloaded copy.

Bugs the fuzz found are pinned by the explicit `test_known_bug_*` tests at the end, which fail until they
are fixed. The fuzz steps around exactly those inputs (see `_known_bug`) so it keeps guarding everything
else; set DODGE_KNOWN_BUGS = False to let it find them again.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dialogs.content import LiveContent
from dialogs.details.base import DetailKind
from dialogs.details.choice import choice_payload
from dialogs.engine import Engine, Turn
from dialogs.events import DetailCollected, HandoffRequested, RatingGiven, TaskCreated
from dialogs.messages import AttachmentKind, Button, IncomingMessage
from dialogs.service import ConversationService
from dialogs.state import ConversationState
from dialogs.text import MAX_ANALYSED_CHARS, clean, fold
from personas.guides import PLACEHOLDER_RE, fill
from storage import SqlStore, connect
from storage.database import sqlite_url
from storage.models import Conversation

# --- sizes -----------------------------------------------------------------------------------------

CONVERSATIONS = 4_000
MESSAGES_PER_CONVERSATION = 25
ENGINE_MESSAGES = CONVERSATIONS * MESSAGES_PER_CONVERSATION
SERVICE_CONVERSATIONS = 120
SERVICE_MESSAGES_PER_CONVERSATION = 25
LONG_MESSAGE_CHARS = 100_000

DODGE_KNOWN_BUGS = True

# --- what clients write ------------------------------------------------------------------------------

RUSSIAN = [
    "не работает интернет",
    "нет интернета совсем",
    "пропал интернет со вчерашнего дня",
    "медленный интернет",
    "тормозит интернет, видео не грузится",
    "как пополнить баланс",
    "оплатил а деньги не пришли",
    "хочу сменить тариф",
    "хочу подключить интернет",
    "я переезжаю",
    "перезвоните мне",
    "привет",
    "здравствуйте",
    "добрый день",
    "спасибо",
    "спс",
    "до свидания",
    "ты бот?",
    "как дела",
    "позовите оператора",
    "хочу поговорить с человеком",
    "отмена",
    "отменить заявку",
    "да",
    "нет",
    "ок",
    "помогло",
    "не помогло",
    "всё горит",
    "не горит значок интернета",
    "роутер не включается",
    "не знаю",
    "по wifi",
    "по кабелю",
    "турбо",
    "гига",
    "договор 1234567",
    "лицевой счет 7654321",
    "номер договора 12345",
    "мой телефон 8 913 123 45 67",
    "+7 (913) 000-11-22",
    "89131234567",
    "ул. Ленина, 5, кв. 12",
    "Кирова 86-15",
    "Красный проспект 101 кв 7",
    "завтра после 18",
    "в пн с 10 до 12",
    "25.11 в 15:00",
    "вчера",
    "1 декабря",
    "через 2 часа",
    "ivan@mail.ru",
    "вы издеваетесь?! третий день нет интернета!!!",
    "буду жаловаться в роспотребнадзор",
    "ухожу к другому провайдеру",
    "верните деньги, это ужас",
    "позовите оператора, договор 7654321",
    "нет интернета, договор 1234567",
    "/start",
    "/help",
    "абырвалг",
    "1",
    "3",
    "5",
]

UNICODE_EDGE = [
    "e\u0301\u0301\u0301\u0301",
    "и\u0306",
    "Z\u0337\u0322\u031ba\u0338l\u0337g\u0335o\u0336",
    "\x00",
    "\x00\x01\x02\x03\x7f",
    "\x1b[31mred\x1b[0m",
    "\ufeff",
    "\U0010ffff",
    "\U000e0001\U000e0072\U000e0075",
    "\ue000\uf8ff",
    "\uffff\ufffe",
    "\ufffd",
    "\u0085\u2028\u2029",
    "\r\n\r\n",
    "№",
    "№№№ 1234567",
    "\ufb01",
    "①②③",
    "²³",
    "٣٤٥",
    "１２３４５６７",
    "𝟏𝟐𝟑𝟒𝟓𝟔𝟕",
    "Ⅻ",
    "ǅ",
    "ß",
    "\u0130",
    "ﷺ",
    "𒀱",
    "\u3000",
    "ｐｈｏｎｅ",
    "\u0000договор\u0000 1234567",
]

RTL_AND_INVISIBLE = [
    "\u200f",
    "\u200e",
    "\u202e",
    "\u202d",
    "\u202a",
    "\u2066",
    "\u2069",
    "\u061c",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\u034f",
    "\u180e",
]

EMOJI = [
    "👨\u200d👩\u200d👧\u200d👦",
    "🏳\ufe0f\u200d🌈",
    "🇷🇺",
    "🇺🇦🇰🇿",
    "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
    "👍🏽",
    "👋🏿",
    "🤦🏼\u200d♂\ufe0f",
    "❤\ufe0f",
    "1\ufe0f\u20e3",
    "#\ufe0f\u20e3",
    "😡😡😡",
    "🤬",
    "🙏",
    "😂" * 40,
    "👩🏽\u200d🚀",
    "🧑\u200d🤝\u200d🧑",
]

# Template-looking text, with what an evaluating template engine would have turned it into.
INJECTIONS = [
    "{phone}",
    "{{7*7}}",
    "${7*7}",
    "#{7*7}",
    "<%= 7*7 %>",
    "{{7*'7'}}",
    "{{ 1337*3 }}",
    "{0}",
    "{1}",
    "{}",
    "{company}",
    "{contract}",
    "{address}",
    "{detail}",
    "{value}",
    "{category}",
    "{operator}",
    "{wait}",
    "{opening}",
    "{request}",
    "{problem}",
    "{router_lights}",
    "answer.no_internet.{router_lights}",
    "%(x)s",
    "%s %d",
    "{contract!r}",
    "{__class__}",
    "{0.__class__.__mro__}",
    "{phone.__init__.__globals__}",
    "{{config}}",
    "{% for x in y %}{{x}}{% endfor %}",
    "${jndi:ldap://x/a}",
    "}{",
    "{",
    "}",
    "{{",
    "}}",
    "{address}{phone}",
    "{{company}}",
    "{ company }",
    "{COMPANY}",
]
EVALUATED = ("49", "7777777", "4011")

YAML_LIKE = [
    "key: value",
    "- item",
    "&anchor",
    "*alias",
    "!!python/object:os.system",
    "!!python/object/apply:os.system ['ls']",
    "!!binary aGVsbG8=",
    "---",
    "...",
    "? complex",
    "|\n  block",
    ">\n  folded",
    "{a: 1, b: [1, 2]}",
    "[1, 2, 3]",
    "~",
    "null",
    "yes",
    "on",
    ".inf",
    ".nan",
    "0x1F",
    "<<: *alias",
    "%YAML 1.2",
    "# comment",
    "договор: 1234567",
    "- не работает интернет",
    "телефон: &tel +79131234567",
    "адрес: *tel",
]

PYTHON_LOOKING = [
    "None",
    "Traceback (most recent call last):",
    "<object object at 0x7f3a2c>",
    "{'a': 1}",
    "[]",
    "True",
    "KeyError: 'phone'",
    "__init__",
    "<class 'str'>",
    "DetailValue(value='1')",
    "\\n\\x00\\u202e",
]

MARKUP = [
    ("<b>", "</b>"),
    ("<i>", "</i>"),
    ("<a href='javascript:alert(1)'>", "</a>"),
    ("<script>", "</script>"),
    ("<div style='x'>", "</div>"),
    ("**", "**"),
    ("_", "_"),
    ("`", "`"),
    ("```\n", "\n```"),
    ("[b]", "[/b]"),
    ("[url=http://x]", "[/url]"),
    ("> ", ""),
    ("||", "||"),
    ("~~", "~~"),
    ("<![CDATA[", "]]>"),
    ("<!--", "-->"),
    ("[", "](http://x)"),
]

BLANK = [" ", "   ", "\n\n", "\t", "\u3000", "\u00a0", "\u2003", " \n \t ", "\u200b", "\ufeff", "\u202e"]

SEPARATORS = ["", " ", "  ", "\n", ", ", ". ", "\u200b", "\t"]

OPERATORS = ["Анна", "Борис", "Olga"]

PAYLOAD_GARBAGE = [
    "",
    "rate:0",
    "rate:6",
    "rate:-1",
    "rate:",
    "rate:3.5",
    "rate: 3",
    "rate:３",
    "rate:" + "9" * 300,
    "rate:{0}",
    "choice:router_lights:nope",
    "choice::",
    "choice:tariff:all_on",
    "choice:{phone}:x",
    "choice:router_lights:all_on:extra",
    "human ",
    "HUMAN",
    "\x00",
    "{{7*7}}",
    "{company}",
    "/start",
    "не работает интернет",
    "договор 1234567",
    "ул. {company} 5",
]

CONTACTS = ["+79131234567", "79131234567", "+7 913 000-11-22", "88005553535", "+49301234567", "12", "{phone}"]

# Answers to what the bot asked, by the kind of detail asked: clients answer, sometimes badly.
ANSWERS: dict[DetailKind, list[str]] = {
    DetailKind.CONTRACT: [
        "1234567",
        "договор 7654321",
        "12345",
        "123",
        "12345678901",
        "л/с 0012345",
        "{contract}",
        "договор {{7*7}}",
        "1234567 {phone}",
        "١٢٣٤٥٦٧",
        "１２３４５６７",
        "1 2 3 4 5 6 7",
        "№ 5554433",
    ],
    DetailKind.PHONE: [
        "8 913 123 45 67",
        "+7 (913) 000-11-22",
        "89131234567",
        "8 800 555-35-35",
        "12345",
        "+7 913 123 45 67 89 00",
        "+49 30 1234567",
        "{phone}",
        "tel:+79131234567",
        "8(913)123-45-67 {{7*7}}",
        "+７ ９１３ １２３ ４５ ６７",
    ],
    DetailKind.EMAIL: ["ivan@mail.ru", "ivan@@mail", "{email}@mail.ru", "ivan собака mail ru", "a@b.c"],
    DetailKind.ADDRESS: [
        "ул. Ленина, 5, кв. 12",
        "Кирова 86-15",
        "{company} 5",
        "ул. {company}, д. 5",
        "ул. Ленина {phone} 5",
        "${7*7} дом 5",
        "Ленина 5 кв {0}",
        "<b>ул. Ленина</b> 5",
        "ул. Ленина 5 \u202eкв 21",
        "{{7*7}} Ленина 5",
        "улица %(x)s 5",
        "ул. {contract!r} 7",
        "ул. {__class__} 1",
        "None 5",
        "просто текст без номера",
        "5",
        "Красный проспект 101 кв 7 🏠🏠",
        "key: value 5",
    ],
    DetailKind.DATETIME: [
        "завтра после 18",
        "в пн с 10 до 12",
        "25.11 в 15:00",
        "вчера",
        "сегодня",
        "1 декабря",
        "через 2 часа",
        "в любое время",
        "32.13",
        "25:99",
        "{callback_time}",
        "завтра после 18 {phone}",
        "{{7*7}} завтра",
        "31.02",
        "29.02",
        "сейчас",
        "никогда",
        "завтра {company}",
    ],
    DetailKind.TEXT: ["а", "подробности {value}", "{{7*7}}"],
}
YES_NO = ["да", "нет", "давайте", "не надо", "помогло", "не помогло", "ага", "неа"]
RATINGS = ["1", "2", "3", "4", "5", "5!", "0", "6", "пять", " 4 ", "３"]

VALID_PAYLOAD = re.compile(r"human|no_human|solved|not_solved|rate:[1-5]|choice:[a-z0-9_]+:[a-z0-9_]+")

# Python internals that must never reach a client unless the client wrote them first.
INTERNALS = tuple(
    re.compile(p)
    for p in (
        r"Traceback",
        r"object at 0x",
        r"\bNone\b",
        r"\{'",
        r"\[\]",
        r"<class\b",
        r"__\w+__",
        r"[A-Za-z]+(?:Error|Exception)\b",
        r"\b(?:True|False)\b",
        r"\b(?:DetailValue|PendingRequest|Found|Invalid|Extraction|Rendered|When|Turn|Reply|Button)\(",
        r"\\[nxu]",
    )
)
# Characters no reply may carry: replies are guide text plus cleaned client words.
FORBIDDEN_CATEGORIES = ("Cc", "Cf", "Cs", "Co", "Cn")

# --- helpers -------------------------------------------------------------------------------------------


def effective_text(message: IncomingMessage) -> str:
    """What the engine reads as the message's text (see `_Run.go`)."""
    text = clean((message.text or "")[:MAX_ANALYSED_CHARS]).strip()
    if message.contact_phone and not text:
        text = message.contact_phone
    if message.button_payload is not None and not text:
        text = message.button_payload
    return text


def _known_bug(message: IncomingMessage) -> str | None:
    """The pinned bug this message would trip, if any (the name of its explicit test below)."""
    text = effective_text(message)
    if text and not text.split():
        return "test_known_bug_blank_payload_or_contact_crashes_the_engine"
    payload = message.button_payload or ""
    if payload.startswith("rate:"):
        score = payload.removeprefix("rate:")
        if score.isdigit() and (not score.isdecimal() or len(score) > 4000):
            return "test_known_bug_rating_payload_that_is_not_a_plain_number_crashes_the_engine"
    stripped = fold(text).strip(" .)")
    if stripped.isdigit() and not stripped.isdecimal():
        return "test_known_bug_digit_like_answer_to_a_choice_crashes_the_engine"
    return None


def numbers_in(text: str) -> str:
    """Digits of a text run together: how far a reformatted number (phone display) can stray from it."""
    return re.sub(r"\D", "", text)


@dataclass
class Knowledge:
    """What the shipped content says, for the properties."""

    company: str
    company_contexts: list[tuple[str, str]]
    detail_kinds: dict[str, DetailKind]
    shown_as_written: set[str]
    choice_buttons: list[str]
    option_phrases: dict[str, list[str]]
    option_labels: set[str]

    @classmethod
    def of(cls, live: LiveContent) -> Knowledge:
        content = live.get()
        book, guides = content.scenarios, content.guides
        templates = [t for g in guides.guides.values() for ts in g.moments.values() for t in ts]
        contexts = []
        for template in templates:
            pieces = template.split("{company}")
            for before, after in zip(pieces, pieces[1:], strict=False):
                contexts.append((PLACEHOLDER_RE.split(before)[-1], PLACEHOLDER_RE.split(after)[0]))
        kinds = {name: spec.type for name, spec in book.details.items()}
        written = {DetailKind.CHOICE, DetailKind.DATETIME, DetailKind.ADDRESS, DetailKind.TEXT}
        phrases = {
            name: [
                phrase
                for option in spec.options
                for phrase in (option.label, *option.synonyms, choice_payload(name, option.id))
            ]
            for name, spec in book.details.items()
            if spec.type is DetailKind.CHOICE
        }
        knowledge = cls(
            company=book.company.name,
            company_contexts=contexts,
            detail_kinds=kinds,
            shown_as_written={n for n, k in kinds.items() if k in written},
            choice_buttons=[p for ps in phrases.values() for p in ps if p.startswith("choice:")],
            option_phrases=phrases,
            option_labels={o.label for spec in book.details.values() for o in spec.options},
        )
        # The properties below are sound only if the guides themselves never look like a leak.
        for template in templates:
            assert knowledge.company not in template
            assert not re.search(r"[{}]", PLACEHOLDER_RE.sub("", template)), template
            assert "}{" not in template, template
            for pattern in INTERNALS:
                assert not pattern.search(PLACEHOLDER_RE.sub("", template)), (pattern, template)
            for result in EVALUATED:
                assert not re.search(rf"(?<!\d){result}(?!\d)", template), template
        return knowledge


@dataclass
class Chat:
    """One generated conversation driven through the engine, with what the client has written so far."""

    engine: Engine
    knowledge: Knowledge
    clock: datetime
    channel: str
    state: ConversationState = field(default_factory=ConversationState)
    client_texts: list[str] = field(default_factory=list)
    client_numbers: list[str] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)
    sent: int = 0
    stats: Counter[str] = field(default_factory=Counter)

    @property
    def seen(self) -> str:
        return "\n".join(self.client_texts)

    def send(self, message: IncomingMessage) -> Turn:
        before = ConversationState.from_dict(self.state.to_dict())
        for raw in (message.text, message.contact_phone, message.button_payload):
            if raw:
                self.client_texts.append(raw[:MAX_ANALYSED_CHARS])
                self.client_numbers.append(numbers_in(clean(raw[:MAX_ANALYSED_CHARS])))
        self.client_texts.append(effective_text(message))
        turn = self.engine.handle(self.state, message)
        self.sent += 1
        self._check_replies(turn)
        self._check_answered(message, before, turn)
        self._check_details()
        self._roundtrip()
        self._note(turn)
        return turn

    def operator(self, action: Callable[[ConversationState], Turn]) -> None:
        turn = action(self.state)
        self._check_replies(turn)
        self._roundtrip()

    # --- properties ----------------------------------------------------------------------------------
    def _check_replies(self, turn: Turn) -> None:
        seen = self.seen
        numbers = "|".join(self.client_numbers)
        for reply in turn.replies:
            text = reply.text
            assert isinstance(text, str) and text.strip(), reply
            bad = [c for c in text if unicodedata.category(c) in FORBIDDEN_CATEGORIES and c not in "\n\t"]
            assert not bad, (text, bad)
            for placeholder in PLACEHOLDER_RE.finditer(text):
                assert placeholder.group() in seen, ("unfilled placeholder", placeholder.group(), text)
            for brace in "{}":
                assert brace not in text or brace in seen, ("stray brace", text)
            for result in EVALUATED:
                if re.search(rf"(?<!\d){result}(?!\d)", text):
                    assert result in numbers, ("client text evaluated", result, text)
            for pattern in INTERNALS:
                assert not pattern.search(text) or pattern.search(seen), ("internals", pattern, text)
            self._check_company(text, seen)
            for button in reply.buttons:
                assert isinstance(button.text, str) and button.text.strip(), button
                assert VALID_PAYLOAD.fullmatch(button.payload), button
        buttons = [b for r in turn.replies for b in r.buttons]
        if turn.replies:
            self.buttons = buttons

    def _check_company(self, text: str, seen: str) -> None:
        """The company name only where a guide puts {company}: a client's "{company}" stays as written."""
        name = self.knowledge.company
        if name not in text or name in seen:
            return
        start = text.find(name)
        while start >= 0:
            before, after = text[:start], text[start + len(name) :]
            assert any(
                before.endswith(b) and after.startswith(a) for b, a in self.knowledge.company_contexts
            ), ("company name outside a greeting", text)
            start = text.find(name, start + 1)

    def _check_answered(self, message: IncomingMessage, before: ConversationState, turn: Turn) -> None:
        if turn.replies or before.with_operator or self.state.with_operator:
            return
        if (message.button_payload or "").startswith("rate:"):
            return  # an old rating button pressed again is ignored on purpose
        volunteered = any(isinstance(e, DetailCollected) for e in turn.events)
        if DODGE_KNOWN_BUGS and volunteered and before.active is None and self.state.active is None:
            self.stats["silent on a volunteered detail (known bug)"] += 1
            return
        raise AssertionError(f"no reply to {message!r}")

    def _check_details(self) -> None:
        seen = self.seen
        for name, detail in self.state.details.items():
            assert isinstance(detail.value, str) and isinstance(detail.display, str)
            if name in self.knowledge.shown_as_written:
                assert detail.display in seen or detail.display in self.knowledge.option_labels, (
                    "a detail shown back is not the client's own words",
                    name,
                    detail,
                )

    def _roundtrip(self) -> None:
        dumped = json.dumps(self.state.to_dict(), ensure_ascii=False)
        restored = ConversationState.from_dict(json.loads(dumped))
        assert json.dumps(restored.to_dict(), ensure_ascii=False) == dumped
        # The service reloads the state from storage before every message: so does the fuzz.
        self.state = restored

    def _note(self, turn: Turn) -> None:
        state = self.state
        if state.active and state.active.asked:
            self.stats[f"asked:{state.active.asked}"] += 1
        for event in turn.events:
            if isinstance(event, TaskCreated):
                self.stats[f"task:{event.kind}"] += 1
            elif isinstance(event, HandoffRequested):
                self.stats[f"handoff:{event.reason}"] += 1
            elif isinstance(event, RatingGiven):
                self.stats["rating"] += 1
        if any(self.knowledge.company in r.text for r in turn.replies):
            self.stats["company named"] += 1
        if any(b in r.text for r in turn.replies for b in "{}"):
            self.stats["client braces echoed"] += 1


# --- strategies ------------------------------------------------------------------------------------------


def _mutate(draw: st.DrawFn, text: str, stats: Counter[str]) -> str:
    """Dress a phrase in hostile clothes (or leave it alone)."""
    how = draw(
        st.sampled_from(["plain"] * 6 + ["invisible", "rtl", "emoji", "markup", "inject", "case", "yaml"])
    )
    stats[f"mutation:{how}"] += 1
    if how == "invisible" and text:
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.sampled_from(RTL_AND_INVISIBLE)) + text[at:]
    if how == "rtl":
        return "\u202e" + text + "\u202c" + draw(st.sampled_from(["", "\u200f"]))
    if how == "emoji":
        return text + " " + draw(st.sampled_from(EMOJI))
    if how == "markup":
        opening, closing = draw(st.sampled_from(MARKUP))
        return opening + text + closing
    if how == "inject":
        return text + draw(st.sampled_from(SEPARATORS)) + draw(st.sampled_from(INJECTIONS))
    if how == "case":
        return text.upper()
    if how == "yaml":
        return draw(st.sampled_from(["- ", "key: ", "&a ", "!!str "])) + text
    return text


def _nested(seed: int, depth: int, inner: str) -> str:
    rng = random.Random(seed)
    tags = [rng.choice(MARKUP) for _ in range(depth)]
    return "".join(o for o, _ in tags) + inner + "".join(c for _, c in reversed(tags))


def _huge_number(seed: int, digits: int) -> str:
    rng = random.Random(seed)
    number = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(digits - 1))
    return rng.choice(["", "договор ", "+", "-", "8", "телефон ", "ул. Ленина ", "", "1e"]) + number


@st.composite
def client_text(draw: st.DrawFn, stats: Counter[str]) -> str:
    """One client message's text."""
    kind = draw(
        st.sampled_from(
            ["russian"] * 10
            + ["mixed"] * 5
            + ["unicode", "random", "random_cyrillic", "template", "template", "yaml", "python", "markup"]
            + ["emoji", "huge_number", "blank", "empty", "rtl"]
        )
    )
    if kind == "mixed":
        count = draw(st.integers(2, 4))
        pools = [
            RUSSIAN,
            RUSSIAN,
            UNICODE_EDGE,
            RTL_AND_INVISIBLE,
            EMOJI,
            INJECTIONS,
            YAML_LIKE,
            PYTHON_LOOKING,
        ]
        parts = [draw(st.sampled_from(draw(st.sampled_from(pools)))) for _ in range(count)]
        text = "".join(p + draw(st.sampled_from(SEPARATORS)) for p in parts)
    elif kind == "unicode":
        text = draw(st.sampled_from(UNICODE_EDGE)) + draw(st.sampled_from(["", " ", " договор "]))
        text += draw(st.sampled_from(RUSSIAN))
    elif kind == "random":
        text = draw(st.text(st.characters(), max_size=30))
    elif kind == "random_cyrillic":
        text = draw(
            st.text(st.characters(min_codepoint=0x400, max_codepoint=0x4FF) | st.just(" "), max_size=40)
        )
    elif kind == "template":
        text = draw(st.sampled_from(INJECTIONS))
        if draw(st.booleans()):
            text = draw(st.sampled_from(RUSSIAN)) + " " + text
    elif kind == "yaml":
        text = draw(st.sampled_from(YAML_LIKE))
    elif kind == "python":
        text = draw(st.sampled_from(PYTHON_LOOKING))
    elif kind == "markup":
        text = _nested(draw(st.integers(0, 2**16)), draw(st.integers(1, 300)), draw(st.sampled_from(RUSSIAN)))
    elif kind == "emoji":
        text = "".join(draw(st.lists(st.sampled_from(EMOJI), min_size=1, max_size=6)))
    elif kind == "huge_number":
        text = _huge_number(draw(st.integers(0, 2**16)), draw(st.integers(100, 700)))
    elif kind == "blank":
        text = draw(st.sampled_from(BLANK))
    elif kind == "empty":
        text = ""
    elif kind == "rtl":
        text = draw(st.sampled_from(RTL_AND_INVISIBLE)).join(draw(st.sampled_from(RUSSIAN)))
    else:
        text = draw(st.sampled_from(RUSSIAN))
    stats[f"text:{kind}"] += 1
    if kind not in ("blank", "empty"):
        text = _mutate(draw, text, stats)
    # Very long messages, sparingly.
    if draw(st.integers(0, 999)) == 0:
        stats["text:very_long"] += 1
        filler = draw(st.sampled_from(["а", "1", "{", "😀", " ", "ул. Ленина 5 ", "\u200b", "<b>"]))
        text = (text + filler * LONG_MESSAGE_CHARS)[:LONG_MESSAGE_CHARS]
    return text


def answer_to(draw: st.DrawFn, chat: Chat) -> str | None:
    """A text that answers what the bot is waiting for, if it waits for anything."""
    state, knowledge = chat.state, chat.knowledge
    if state.awaiting == "rating" or state.rating_due:
        return draw(st.sampled_from(RATINGS))
    if state.awaiting in ("human_offer", "solved"):
        return draw(st.sampled_from(YES_NO))
    if state.active and state.active.asked:
        name = state.active.asked
        kind = knowledge.detail_kinds[name]
        if kind is DetailKind.CHOICE:
            options = knowledge.option_phrases[name]
            return draw(
                st.sampled_from([p for p in options if not p.startswith("choice:")] + ["1", "2", "9"])
            )
        return draw(st.sampled_from(ANSWERS[kind]))
    return None


def next_message(draw: st.DrawFn, chat: Chat) -> IncomingMessage:
    kind = draw(
        st.sampled_from(
            ["text"] * 8 + ["answer"] * 6 + ["button"] * 3 + ["payload", "attachment", "contact", "caption"]
        )
    )
    chat.stats[f"message:{kind}"] += 1
    text, payload, attachment, contact = "", None, None, None
    if kind == "answer":
        answer = answer_to(draw, chat)
        text = _mutate(draw, answer, chat.stats) if answer is not None else draw(client_text(chat.stats))
    elif kind == "button":
        if chat.buttons and draw(st.integers(0, 3)):
            pressed = draw(st.sampled_from(chat.buttons))
            payload = pressed.payload
            # Telegram sends only the payload; the web chat and the terminal send the label as text too.
            text = pressed.text if draw(st.booleans()) else ""
        else:
            valid = ["human", "no_human", "solved", "not_solved", *(f"rate:{n}" for n in range(1, 6))]
            payload = draw(st.sampled_from(valid + chat.knowledge.choice_buttons))
    elif kind == "payload":
        payload = draw(st.sampled_from(PAYLOAD_GARBAGE) | st.text(st.characters(), max_size=64))
    elif kind == "attachment":
        attachment = draw(st.sampled_from(list(AttachmentKind)))
    elif kind == "contact":
        attachment = AttachmentKind.CONTACT
        contact = draw(st.sampled_from(CONTACTS) | st.text(st.characters(), max_size=20))
    elif kind == "caption":
        attachment = draw(st.sampled_from(list(AttachmentKind)))
        text = draw(client_text(chat.stats))
    else:
        text = draw(client_text(chat.stats))
    chat.clock += timedelta(seconds=draw(st.sampled_from([1, 5, 30, 90, 600, 3600, 86_400, 3 * 86_400])))
    return IncomingMessage(
        channel=chat.channel,
        chat_id="chat",
        user_id="user",
        text=text,
        at=chat.clock,
        message_id=str(chat.sent),
        attachment=attachment,
        contact_phone=contact,
        button_payload=payload,
    )


def _operator_step(draw: st.DrawFn, chat: Chat) -> None:
    """People act on handed-off conversations now and then: join, close (rating), hand back, transfer."""
    state, engine = chat.state, chat.engine
    if not state.handed_off or draw(st.integers(0, 3)):
        return
    if not state.with_operator:
        name = draw(st.sampled_from(OPERATORS))
        chat.operator(lambda s: engine.operator_joined(s, name))
        chat.stats["operator:joined"] += 1
        return
    action = draw(st.sampled_from(["closed", "closed", "left", "transferred"]))
    chat.stats[f"operator:{action}"] += 1
    if action == "closed":
        chat.operator(engine.operator_closed)
    elif action == "left":
        chat.operator(engine.operator_left)
    else:
        chat.operator(lambda s: engine.operator_transferred(s, "Общие вопросы"))


# Non-leap years only: the leap-day bug has its own explicit test below.
CLOCKS = st.builds(
    lambda minutes, zone: (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)).astimezone(zone),
    st.integers(0, 500 * 24 * 60),
    st.sampled_from([UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-5))]),
)


def drive(draw: st.DrawFn, chat: Chat, messages: int) -> None:
    while chat.sent < messages:
        message = next_message(draw, chat)
        bug = _known_bug(message)
        if bug and DODGE_KNOWN_BUGS:
            chat.stats[f"dodged:{bug}"] += 1
            continue
        chat.send(message)
        _operator_step(draw, chat)


# --- the engine under fire -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_engine_survives_100k_hostile_messages(engine: Engine, live_content: LiveContent) -> None:
    knowledge = Knowledge.of(live_content)
    stats: Counter[str] = Counter()
    sent = 0

    @settings(
        max_examples=CONVERSATIONS,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def conversation(data: st.DataObject) -> None:
        nonlocal sent
        chat = Chat(
            engine,
            knowledge,
            clock=data.draw(CLOCKS),
            channel=data.draw(st.sampled_from(["telegram", "web", "email", "terminal"])),
        )
        try:
            drive(data.draw, chat, MESSAGES_PER_CONVERSATION)
        finally:
            sent += chat.sent
            stats.update(chat.stats)

    conversation()
    assert sent >= ENGINE_MESSAGES >= 100_000
    # The generated text covered every kind of hostile input, and the dialogs went deep.
    for kind in (
        "russian",
        "mixed",
        "unicode",
        "random",
        "random_cyrillic",
        "template",
        "yaml",
        "python",
        "markup",
        "emoji",
        "huge_number",
        "blank",
        "empty",
        "rtl",
        "very_long",
    ):
        assert stats[f"text:{kind}"] >= 20, (kind, stats)
    for kind in ("answer", "button", "payload", "attachment", "contact", "caption"):
        assert stats[f"message:{kind}"] >= 1_000, (kind, stats)
    for name in knowledge.detail_kinds:
        if name != "email":  # no shipped scenario asks for an email address
            assert stats[f"asked:{name}"] >= 100, (name, stats)
    for task in ("tariff_change", "connection_request", "moving", "callback"):
        assert stats[f"task:{task}"] >= 20, (task, stats)
    for reason in ("client_asked", "escalation", "stuck", "not_solved", "scenario", "accepted_offer"):
        assert stats[f"handoff:{reason}"] >= 20, (reason, stats)
    assert stats["operator:closed"] >= 100 and stats["rating"] >= 50, stats
    assert stats["client braces echoed"] >= 100 and stats["company named"] >= 100, stats


# --- the service on a real SQLite file ---------------------------------------------------------------------


@pytest.mark.slow
def test_service_stores_every_hostile_message(
    engine: Engine, live_content: LiveContent, tmp_path: Path
) -> None:
    knowledge = Knowledge.of(live_content)
    store = SqlStore(connect(sqlite_url(str(tmp_path / "fuzz.db"))))
    service = ConversationService(engine, store)
    totals: Counter[str] = Counter()

    @settings(
        max_examples=SERVICE_CONVERSATIONS,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def conversation(data: st.DataObject) -> None:
        totals["conversations"] += 1
        chat_id = f"chat{totals['conversations']}"
        chat = Chat(engine, knowledge, clock=data.draw(CLOCKS), channel="telegram")
        stored: list[IncomingMessage] = []
        ids: list[str] = []
        for _ in range(SERVICE_MESSAGES_PER_CONVERSATION):
            message = replace(next_message(data.draw, chat), chat_id=chat_id, user_id="u" + chat_id)
            while DODGE_KNOWN_BUGS and _known_bug(message):
                message = replace(next_message(data.draw, chat), chat_id=chat_id, user_id="u" + chat_id)
            how = data.draw(st.sampled_from(["new"] * 6 + ["duplicate", "no_id"]))
            if how == "duplicate" and ids:
                message = replace(message, message_id=data.draw(st.sampled_from(ids)))
            elif how == "no_id":
                message = replace(message, message_id="")
            else:
                how = "new"
                message = replace(message, message_id=f"m{len(ids)}")
                ids.append(message.message_id)
            turn = service.handle(message)
            totals["sent"] += 1
            assert not turn.explain.get("error"), ("the engine failed", message)
            if how == "duplicate":
                totals["duplicates"] += 1
                assert not turn.replies and not turn.events, "a duplicate is handled once"
                continue
            stored.append(message)
            chat.buttons = [b for r in turn.replies for b in r.buttons] or chat.buttons
            chat.state = store.state_of(_conversation_of(store, chat_id))
        rows = [m for m in store.messages(_conversation_of(store, chat_id)) if m.direction == "in"]
        assert len(rows) == len(stored)
        for row, message in zip(rows, stored, strict=True):
            assert row.text == (message.text or message.contact_phone or message.button_payload or "")
            assert row.handled and row.external_id == message.message_id
            assert IncomingMessage.from_json(row.raw_json) == message

    conversation()
    assert totals["sent"] == SERVICE_CONVERSATIONS * SERVICE_MESSAGES_PER_CONVERSATION
    assert totals["duplicates"] >= 100, totals


def _conversation_of(store: SqlStore, chat_id: str) -> int:
    with store.engine.connect() as connection:
        found = connection.execute(
            select(Conversation.id).where(Conversation.chat_id == chat_id)  # type: ignore[arg-type]
        ).scalar_one()
    return int(found)
