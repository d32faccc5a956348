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

The 100,000 engine messages run as 4,000 conversations of 25, half in this process and half in a spawned
worker (about 70 s on two cores); the service test adds 3,000 messages on SQLite (about 10 s).

Bugs this suite found (crashes on blank or odd payloads, digit-like answers, 29 February, a detail given
out of the blue left unanswered, uncleaned payload text) are fixed; the `test_regression_*` tests at the end
pin each one with its input.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import random
import re
import sys
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from sqlalchemy import select

from common.events import HandoffRequested, RatingGiven, TaskCreated
from common.messages import AttachmentKind, Button, IncomingMessage
from common.state import ConversationState
from common.text import MAX_ANALYSED_CHARS, clean
from dialogs.content import DEFAULT_CONTENT_DIR, LiveContent
from dialogs.details.base import DetailKind
from dialogs.details.choice import choice_payload
from dialogs.engine import Engine, Turn
from dialogs.safetext import clean_text
from dialogs.service import ConversationService
from personas.guides import PLACEHOLDER_RE, fill
from storage import SqlStore, connect
from storage.database import sqlite_url
from storage.models import Conversation
from tests.conftest import Dialog

# --- sizes -----------------------------------------------------------------------------------------

# 4,000 conversations of 25 messages: 100,000 messages, shared between this process and a worker.
CONVERSATIONS = 4_000
MESSAGES_PER_CONVERSATION = 25
SERVICE_CONVERSATIONS = 120
SERVICE_MESSAGES_PER_CONVERSATION = 25
LONG_MESSAGE_CHARS = 100_000
# About 170 of the ~58,000 generated texts: far from the 20 the test needs, whatever path the dialogs take.
VERY_LONG_SHARE = 0.003
FUZZ_SEED = 20261123


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
    "позвоните мне пожалуйста",
    "наберите меня завтра",
    "хочу тариф побыстрее",
    "поменять тариф",
    "переезд на новый адрес",
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
# Every placeholder the guides know.
PLACEHOLDER_NAMES = sorted(
    {
        name
        for moment in LiveContent(DEFAULT_CONTENT_DIR).get().guides.catalogue.moments.values()
        for name in moment.placeholders
    }
)

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
    " ",
    "rate:²",
    "rate:" + "1" * 5000,
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

CONTACTS = [
    " ",
    "+7 913 123-45-67\u202e",
    "+79131234567",
    "79131234567",
    "+7 913 000-11-22",
    "88005553535",
    "+49301234567",
    "12",
    "{phone}",
]

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
ANY_INTERNALS = re.compile("|".join(p.pattern for p in INTERNALS))


def _control_characters() -> re.Pattern[str]:
    """Every control, format, surrogate, private-use and unassigned code point but tab and newline."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code))[0] == "C" and chr(code) not in "\n\t":
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return re.compile("[" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in ranges) + "]")


# Characters no reply may carry: replies are guide text and client words after `clean`.
FORBIDDEN_RE = _control_characters()


def controls(text: str) -> list[str]:
    """The control, bidi, zero-width and other invisible characters in a text."""
    return FORBIDDEN_RE.findall(text)


# --- helpers -------------------------------------------------------------------------------------------


def effective_text(message: IncomingMessage) -> str:
    """What the engine reads as the message's text (see `_Run.go`)."""
    text = clean((message.text or "")[:MAX_ANALYSED_CHARS]).strip()
    if message.contact_phone and not text:
        text = clean(message.contact_phone[:MAX_ANALYSED_CHARS]).strip()
    if message.button_payload is not None and not text:
        text = clean(message.button_payload[:MAX_ANALYSED_CHARS]).strip()
    return text


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
            for before, after in itertools.pairwise(pieces):
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
    """One generated conversation, with what the client has written so far."""

    engine: Engine
    knowledge: Knowledge
    clock: datetime
    channel: str
    state: ConversationState = field(default_factory=ConversationState)
    # Everything the client wrote (raw, and as the engine reads it), a line per piece.
    seen: str = ""
    numbers: str = ""
    buttons: list[Button] = field(default_factory=list)
    history: list[IncomingMessage] = field(default_factory=list)
    sent: int = 0
    stats: Counter[str] = field(default_factory=Counter)

    def written(self, message: IncomingMessage) -> None:
        """Note what the client wrote, before the bot may echo it."""
        self.history.append(message)
        for raw in (message.text, message.contact_phone, message.button_payload):
            if raw:
                self.seen += "\n" + raw[:MAX_ANALYSED_CHARS]
                self.numbers += "|" + numbers_in(clean(raw[:MAX_ANALYSED_CHARS]))
        self.seen += "\n" + effective_text(message)

    def send(self, message: IncomingMessage) -> Turn:
        """One message through the engine, every property checked."""
        self.written(message)
        with_operator, idle = self.state.with_operator, self.state.active is None
        try:
            turn = self.engine.handle(self.state, message)
            self.sent += 1
            self.check_replies(turn)
            self.check_answered(message, with_operator, idle, turn)
            self.check_details()
            self.roundtrip()
        except Exception as exc:
            raise AssertionError(f"{exc!r} on {message!r}\nafter:\n{self.story()}") from exc
        self.note(turn)
        return turn

    def operator(self, action: Callable[[ConversationState], Turn], what: str) -> None:
        try:
            turn = action(self.state)
            self.check_replies(turn)  # the next message's turn stores and reloads the state
        except Exception as exc:
            raise AssertionError(f"{exc!r} on operator {what}\nafter:\n{self.story()}") from exc
        self.stats[f"operator:{what}"] += 1

    def story(self) -> str:
        return "\n".join(
            repr(replace(m, text=m.text[:200] + ("…" if len(m.text) > 200 else ""))) for m in self.history
        )

    # --- properties ----------------------------------------------------------------------------------
    def check_replies(self, turn: Turn) -> None:
        seen = self.seen
        for reply in turn.replies:
            text = reply.text
            assert isinstance(text, str) and text.strip(), reply
            assert not controls(text), ("control or invisible characters in a reply", text, controls(text))
            for placeholder in PLACEHOLDER_RE.finditer(text):
                assert placeholder.group() in seen, ("unfilled placeholder", placeholder.group(), text)
            for brace in "{}":
                assert brace not in text or brace in seen, ("a brace the client did not write", text)
            for result in EVALUATED:
                if result in text and re.search(rf"(?<!\d){result}(?!\d)", text):
                    assert result in self.numbers, ("client text evaluated", result, text)
            if ANY_INTERNALS.search(text):
                for pattern in INTERNALS:
                    assert not pattern.search(text) or pattern.search(seen), ("Python internals", text)
            self.check_company(text, seen)
            for button in reply.buttons:
                assert isinstance(button.text, str) and button.text.strip(), button
                assert VALID_PAYLOAD.fullmatch(button.payload), button
        if turn.replies:
            self.buttons = [b for r in turn.replies for b in r.buttons]

    def check_company(self, text: str, seen: str) -> None:
        """The company name only where a guide puts {company}: a client's "{company}" stays as written."""
        name = self.knowledge.company
        if name not in text or name in seen:
            return
        start = text.find(name)
        while start >= 0:
            before, after = text[:start], text[start + len(name) :]
            assert any(
                before.endswith(b) and after.startswith(a) for b, a in self.knowledge.company_contexts
            ), ("the company name where no guide puts it", text)
            start = text.find(name, start + 1)

    def check_answered(self, message: IncomingMessage, with_operator: bool, idle: bool, turn: Turn) -> None:
        """Every message gets an answer, unless a person has the chat, an old rating button was pressed or
        the client floods (the engine asks once to slow down, then stays quiet)."""
        if turn.replies or with_operator or self.state.with_operator or turn.explain.get("flood"):
            return
        if (message.button_payload or "").startswith("rate:"):
            return
        raise AssertionError("no reply at all")

    def check_details(self) -> None:
        for name, detail in self.state.details.items():
            assert isinstance(detail.value, str) and isinstance(detail.display, str)
            if name in self.knowledge.shown_as_written:
                assert detail.display in self.seen or detail.display in self.knowledge.option_labels, (
                    "a detail shown back is not in the client's own words",
                    name,
                    detail,
                )

    def roundtrip(self) -> None:
        dumped = json.dumps(self.state.to_dict(), ensure_ascii=False)
        restored = ConversationState.from_dict(json.loads(dumped))
        assert restored == self.state, "the state changes when stored as JSON and read back"
        # The service reads the state back from storage before every message: so does the fuzz.
        self.state = restored

    def note(self, turn: Turn) -> None:
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
        texts = [r.text for r in turn.replies]
        if any(self.knowledge.company in t for t in texts):
            self.stats["company named"] += 1
        if any("{" in t or "}" in t for t in texts):
            self.stats["client braces echoed"] += 1


# --- generation ------------------------------------------------------------------------------------------
# Hypothesis draws each conversation as a start time, a channel and a list of (message kind, seed) plans;
# a seeded Random expands each plan into the message, reading the conversation so far (buttons on screen,
# the detail asked for). Two numbers per message keep 100,000 messages within the time budget.

TEXT_KINDS = (
    ["russian"] * 10
    + ["mixed"] * 5
    + ["unicode", "random", "random_cyrillic", "template", "template", "yaml", "python", "markup"]
    + ["emoji", "huge_number", "blank", "empty", "rtl"]
)
MUTATIONS = ["plain"] * 6 + ["invisible", "rtl", "emoji", "markup", "inject", "case", "yaml"]
MESSAGE_KINDS = (
    ["text"] * 8 + ["answer"] * 6 + ["button"] * 3 + ["payload", "attachment", "contact", "caption"]
)
# Code points for random text: ASCII with controls, Latin-1, combining marks, Cyrillic, Hebrew and Arabic,
# punctuation with bidi and zero-width controls, enclosed digits, CJK punctuation, private use, specials,
# emoji and the supplementary planes. No lone surrogates: see test_service_stores_every_hostile_message.
RANDOM_RANGES = [
    (0x00, 0x7F),
    (0x80, 0xFF),
    (0x300, 0x36F),
    (0x400, 0x4FF),
    (0x590, 0x6FF),
    (0x2000, 0x206F),
    (0x2460, 0x24FF),
    (0x3000, 0x303F),
    (0xE000, 0xE0FF),
    (0xFE00, 0xFFFF),
    (0x1F300, 0x1FAFF),
    (0x10000, 0x10FFFF),
]
CLOCK_ZONES = [UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-5))]
# Seconds between messages: bursts (flood control), typing speed, pauses, days.
GAPS = [0, 0.2, 1, 5, 30, 90, 600, 3600, 86_400, 3 * 86_400]


def _random_text(rng: random.Random, size: int) -> str:
    chars = []
    for _ in range(size):
        low, high = rng.choice(RANDOM_RANGES)
        code = rng.randint(low, high)
        chars.append(chr(code if not 0xD800 <= code <= 0xDFFF else 0xFFFD))
    return "".join(chars)


def _mutate(rng: random.Random, text: str, stats: Counter[str]) -> str:
    """Dress a phrase in hostile clothes (or leave it alone)."""
    how = rng.choice(MUTATIONS)
    stats[f"mutation:{how}"] += 1
    if how == "invisible" and text:
        at = rng.randint(0, len(text))
        return text[:at] + rng.choice(RTL_AND_INVISIBLE) + text[at:]
    if how == "rtl":
        return "\u202e" + text + "\u202c" + rng.choice(["", "\u200f"])
    if how == "emoji":
        return text + " " + rng.choice(EMOJI)
    if how == "markup":
        opening, closing = rng.choice(MARKUP)
        return opening + text + closing
    if how == "inject":
        return text + rng.choice(SEPARATORS) + rng.choice(INJECTIONS)
    if how == "case":
        return text.upper()
    if how == "yaml":
        return rng.choice(["- ", "key: ", "&a ", "!!str "]) + text
    return text


def _nested(rng: random.Random, inner: str) -> str:
    depth = rng.randint(1, 300) if rng.random() < 0.05 else rng.randint(1, 12)
    tags = [rng.choice(MARKUP) for _ in range(depth)]
    return "".join(o for o, _ in tags) + inner + "".join(c for _, c in reversed(tags))


def _huge_number(rng: random.Random) -> str:
    digits = rng.randint(100, 700)
    number = str(rng.randint(1, 9)) + "".join(rng.choices("0123456789", k=digits - 1))
    return rng.choice(["", "договор ", "+", "-", "8", "телефон ", "ул. Ленина ", "1e", "0."]) + number


def client_text(rng: random.Random, stats: Counter[str]) -> str:
    """One client message's text."""
    kind = rng.choice(TEXT_KINDS)
    if kind == "mixed":
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
        text = "".join(
            rng.choice(rng.choice(pools)) + rng.choice(SEPARATORS) for _ in range(rng.randint(2, 4))
        )
    elif kind == "unicode":
        text = rng.choice(UNICODE_EDGE) + rng.choice(["", " ", " договор "]) + rng.choice(RUSSIAN)
    elif kind == "random":
        text = _random_text(rng, rng.randint(1, 40))
    elif kind == "random_cyrillic":
        text = "".join(rng.choices("абвгдеёжзийклмнопрстуфхцчшщъыьэюя      0123456789", k=40))
    elif kind == "template":
        text = rng.choice(INJECTIONS)
        if rng.random() < 0.5:
            text = rng.choice(RUSSIAN) + " " + text
    elif kind == "yaml":
        text = rng.choice(YAML_LIKE)
    elif kind == "python":
        text = rng.choice(PYTHON_LOOKING)
    elif kind == "markup":
        text = _nested(rng, rng.choice(RUSSIAN))
    elif kind == "emoji":
        text = "".join(rng.choices(EMOJI, k=rng.randint(1, 6)))
    elif kind == "huge_number":
        text = _huge_number(rng)
    elif kind == "blank":
        text = rng.choice(BLANK)
    elif kind == "empty":
        text = ""
    elif kind == "rtl":
        text = rng.choice(RTL_AND_INVISIBLE).join(rng.choice(RUSSIAN))
    else:
        text = rng.choice(RUSSIAN)
    stats[f"text:{kind}"] += 1
    if kind not in ("blank", "empty"):
        text = _mutate(rng, text, stats)
    if rng.random() < VERY_LONG_SHARE:  # very long messages, sparingly
        stats["text:very_long"] += 1
        filler = rng.choice(["а", "1", "{", "😀", " ", "ул. Ленина 5 ", "\u200b", "<b>"])
        text = (text + filler * LONG_MESSAGE_CHARS)[:LONG_MESSAGE_CHARS]
    return text


def answer_to(rng: random.Random, chat: Chat) -> str | None:
    """A text that answers what the bot is waiting for, if it waits for anything."""
    state, knowledge = chat.state, chat.knowledge
    if state.rating_due:
        return rng.choice(RATINGS)
    if state.awaiting in ("human_offer", "solved"):
        return rng.choice(YES_NO)
    if state.active and state.active.asked:
        name = state.active.asked
        kind = knowledge.detail_kinds[name]
        if kind is DetailKind.CHOICE:
            phrases = [p for p in knowledge.option_phrases[name] if not p.startswith("choice:")]
            return rng.choice([*phrases, "1", "2", "9", "１", "፩"])
        return rng.choice(ANSWERS[kind])
    return None


def next_message(kind: str, rng: random.Random, chat: Chat) -> IncomingMessage:
    chat.stats[f"message:{kind}"] += 1
    text, payload, attachment, contact = "", None, None, None
    if kind == "answer":
        answer = answer_to(rng, chat)
        text = _mutate(rng, answer, chat.stats) if answer is not None else client_text(rng, chat.stats)
    elif kind == "button":
        if chat.buttons and rng.random() < 0.8:
            pressed = rng.choice(chat.buttons)
            payload = pressed.payload
            # Telegram sends only the payload; the web chat and the terminal send the label as text too.
            text = pressed.text if rng.random() < 0.3 else ""
        else:
            valid = ["human", "no_human", "solved", "not_solved", *(f"rate:{n}" for n in range(1, 6))]
            payload = rng.choice(valid + chat.knowledge.choice_buttons)
    elif kind == "payload":
        # Payloads come back from the client: the web chat takes any, Telegram callback data can be forged.
        answer = answer_to(rng, chat) if rng.random() < 0.5 else None
        if answer is not None:
            payload = _mutate(rng, answer, chat.stats)
        else:
            payload = (
                rng.choice(PAYLOAD_GARBAGE) if rng.random() < 0.6 else _random_text(rng, rng.randint(0, 64))
            )
    elif kind == "attachment":
        attachment = rng.choice(list(AttachmentKind))
    elif kind == "contact":
        attachment = AttachmentKind.CONTACT
        answer = answer_to(rng, chat) if rng.random() < 0.1 else None
        if answer is not None:
            contact = _mutate(rng, answer, chat.stats)
        else:
            contact = rng.choice(CONTACTS) if rng.random() < 0.7 else _random_text(rng, rng.randint(0, 20))
    elif kind == "caption":
        attachment = rng.choice(list(AttachmentKind))
        text = client_text(rng, chat.stats)
    else:
        text = client_text(rng, chat.stats)
    chat.clock += timedelta(seconds=rng.choice(GAPS))
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


def hostile_message(kind: str, rng: random.Random, chat: Chat) -> IncomingMessage:
    """The next message of a kind."""
    return next_message(kind, rng, chat)


def operator_step(rng: random.Random, chat: Chat) -> None:
    """People act on handed-off conversations now and then: join, close (rating), hand back, transfer."""
    state, engine = chat.state, chat.engine
    if not state.handed_off or rng.random() < 0.6:
        return
    if not state.with_operator:
        name = rng.choice(OPERATORS)
        chat.operator(lambda s: engine.operator_joined(s, name), "joined")
        return
    action = rng.choice(["closed", "closed", "left", "transferred"])
    if action == "closed":
        chat.operator(engine.operator_closed, action)
    elif action == "left":
        chat.operator(engine.operator_left, action)
    else:
        chat.operator(lambda s: engine.operator_transferred(s, "Общие вопросы"), action)


Drawn = tuple[datetime, str, list[tuple[str, int]]]


def conversations(messages: int) -> st.SearchStrategy[Drawn]:
    """A start, a channel and message plans. Starts stay in 2026-2027 while the leap-day bug is dodged."""
    days = 1200
    start = st.builds(
        lambda minutes, zone: (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)).astimezone(
            zone
        ),
        st.integers(0, days * 24 * 60),
        st.sampled_from(CLOCK_ZONES),
    )
    plan = st.tuples(st.sampled_from(MESSAGE_KINDS), st.integers(0, 2**32 - 1))
    return st.tuples(
        start,
        st.sampled_from(["telegram", "web", "email", "terminal"]),
        st.lists(plan, min_size=messages, max_size=messages),
    )


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,  # deterministic through @seed, one seed per share of the run
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
        # Shrinking a conversation of 25 messages takes minutes, past the suite's timeout; a failure names
        # the message that failed and every message before it (add Phase.shrink here to minimise it).
        phases=[Phase.generate],
    )


# --- the engine under fire -----------------------------------------------------------------------------


def fuzz_engine(engine: Engine, knowledge: Knowledge, examples: int, share: int) -> tuple[int, Counter[str]]:
    """Run `examples` generated conversations through the engine; how many messages, and what happened."""
    stats: Counter[str] = Counter()
    sent = 0

    @seed(FUZZ_SEED + share)
    @fuzz_settings(examples)
    @given(conversations(MESSAGES_PER_CONVERSATION))
    def conversation(drawn: Drawn) -> None:
        nonlocal sent
        start, channel, plans = drawn
        chat = Chat(engine, knowledge, clock=start, channel=channel)
        try:
            for kind, number in plans:
                rng = random.Random(number)
                chat.send(hostile_message(kind, rng, chat))
                operator_step(rng, chat)
        finally:
            sent += chat.sent
            stats.update(chat.stats)

    conversation()
    return sent, stats


def fuzz_engine_in_a_worker(examples: int, share: int) -> tuple[int, Counter[str]]:
    """The same in a spawned process over the shipped content: the machine has two cores."""
    warnings.simplefilter("error")
    live = LiveContent(DEFAULT_CONTENT_DIR)
    return fuzz_engine(Engine(live), Knowledge.of(live), examples, share)


@pytest.mark.slow
def test_engine_survives_100k_hostile_messages(engine: Engine, live_content: LiveContent) -> None:
    mine = CONVERSATIONS // 2
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        theirs = pool.submit(fuzz_engine_in_a_worker, CONVERSATIONS - mine, 1)
        sent, stats = fuzz_engine(engine, Knowledge.of(live_content), mine, 0)
        other_sent, other_stats = theirs.result()
    sent += other_sent
    stats += other_stats
    assert sent >= CONVERSATIONS * MESSAGES_PER_CONVERSATION >= 100_000, sent
    # The generated text covered every kind of hostile input, and the dialogs went deep.
    for kind in set(TEXT_KINDS) | {"very_long"}:
        assert stats[f"text:{kind}"] >= 20, (kind, stats)
    for kind in set(MESSAGE_KINDS):
        assert stats[f"message:{kind}"] >= 1_000, (kind, stats)
    for name, kind in Knowledge.of(live_content).detail_kinds.items():
        if kind is not DetailKind.EMAIL:  # no shipped scenario asks for an email address
            assert stats[f"asked:{name}"] >= 100, (name, stats)
    for task in ("tariff_change", "connection_request", "moving", "callback"):
        assert stats[f"task:{task}"] >= 20, (task, stats)
    for reason in ("client_asked", "escalation", "stuck", "not_solved", "scenario", "accepted_offer"):
        assert stats[f"handoff:{reason}"] >= 20, (reason, stats)
    assert stats["operator:closed"] >= 100 and stats["rating"] >= 50, stats
    assert stats["client braces echoed"] >= 100 and stats["company named"] >= 100, stats


# --- the service on a real SQLite file -------------------------------------------------------------------


def _as_stored(message: IncomingMessage) -> IncomingMessage:
    """The message as the service's door keeps it: a NUL (PostgreSQL refuses one) becomes U+FFFD."""
    texts = {
        "text": message.text,
        "contact_phone": message.contact_phone,
        "button_payload": message.button_payload,
    }
    return replace(message, **{name: clean_text(value) for name, value in texts.items() if value is not None})


@pytest.mark.slow
def test_service_stores_every_hostile_message(
    engine: Engine, live_content: LiveContent, tmp_path: Path
) -> None:
    """A few thousand hostile messages through the service on SQLite: nothing escapes, the engine never
    fails, every message but a duplicate is stored once and verbatim, replies hold the engine's properties.

    Python strings can hold lone surrogates (json.loads('"\\ud800"') makes one) and SQLite cannot store
    them: the service's door replaces them and NULs by U+FFFD (tests/test_boundaries.py), so the generator
    leaves them out."""
    knowledge = Knowledge.of(live_content)
    store = SqlStore(connect(sqlite_url(str(tmp_path / "fuzz.db"))))
    service = ConversationService(engine, store)
    totals: Counter[str] = Counter()

    @seed(FUZZ_SEED)
    @fuzz_settings(SERVICE_CONVERSATIONS)
    @given(conversations(SERVICE_MESSAGES_PER_CONVERSATION))
    def conversation(drawn: Drawn) -> None:
        start, channel, plans = drawn
        totals["conversations"] += 1
        chat_id = f"chat{totals['conversations']}"
        chat = Chat(engine, knowledge, clock=start, channel=channel)
        stored: list[IncomingMessage] = []
        ids: list[str] = []
        conversation_id = 0
        for kind, number in plans:
            rng = random.Random(number)
            message = replace(hostile_message(kind, rng, chat), chat_id=chat_id, user_id="u" + chat_id)
            how = rng.choice(["new"] * 6 + ["duplicate", "no_id"])
            if how == "duplicate" and ids:
                message = replace(message, message_id=rng.choice(ids))
            elif how == "no_id":
                message = replace(message, message_id="")
            else:
                how = "new"
                message = replace(message, message_id=f"m{len(ids)}")
                ids.append(message.message_id)
            if how != "duplicate":
                chat.written(message)
            turn = service.handle(message)
            totals["sent"] += 1
            assert not turn.explain.get("error"), ("the engine failed", message, chat.story())
            if how == "duplicate":
                totals["duplicates"] += 1
                assert not turn.replies and not turn.events, "a duplicate is handled once"
                continue
            stored.append(_as_stored(message))
            conversation_id = conversation_id or _conversation_of(store, chat_id)
            chat.state = store.state_of(conversation_id)
            chat.check_replies(turn)
            chat.check_details()
        rows = [m for m in store.messages(_conversation_of(store, chat_id)) if m.direction == "in"]
        assert conversation_id in (0, _conversation_of(store, chat_id)), "one conversation per chat"
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


# --- filling guides ------------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None, database=None, derandomize=True)
@given(
    st.sampled_from(PLACEHOLDER_NAMES),
    st.lists(st.sampled_from([*INJECTIONS, "{company}", "Сибирские сети"]) | st.text(), max_size=4),
)
def test_fill_inserts_values_verbatim(name: str, pieces: list[str]) -> None:
    """A value that looks like a template stays as written: `fill` never parses what it inserts."""
    value = "".join(pieces)
    values = {"company": "Сибирские сети", name: value}
    template = f"«{{{name}}}» и {{company}}, {{unknown}}"
    assert fill(template, values) == f"«{value}» и {values['company']}, {{unknown}}"


# --- bugs the fuzz found: each fails until fixed --------------------------------------------------------


@pytest.mark.parametrize(
    "blank", [{"payload": " "}, {"payload": "\n"}, {"contact_phone": " "}, {"contact_phone": "\t"}]
)
def test_regression_a_blank_payload_or_contact_is_answered(dialog: Dialog, blank: dict[str, str]) -> None:
    """A whitespace-only button payload (the web chat accepts `{"text": "", "payload": " "}`; Telegram
    callback data can be forged) or shared contact number becomes the message text, which is not empty
    but has no words: `self.text.split()[0]` in `_Run.go` (dialogs/engine.py) raises IndexError."""
    turn = dialog.send(**blank)  # type: ignore[arg-type]
    assert turn.replies


@pytest.mark.parametrize("score", ["²", "፩", "①", "1" * 5000])
def test_regression_a_rating_payload_that_is_not_a_plain_number_is_ignored(
    dialog: Dialog, score: str
) -> None:
    """`_Run._rated` (dialogs/engine.py) checks `str.isdigit()`, which is true for superscripts and other
    digit-like characters that `int()` rejects, and for numbers longer than int()'s 4300-digit limit:
    ValueError. Payloads are never cleaned, so "rate:²" reaches it as sent."""
    dialog.engine.operator_closed(dialog.state)
    turn = dialog.send(payload="rate:" + score)
    assert all(e.score in range(1, 6) for e in turn.events if isinstance(e, RatingGiven))


def test_regression_a_digit_like_answer_to_a_choice_is_read_as_text(dialog: Dialog) -> None:
    """Asked what the router shows, the client answers "፩" (Ethiopic digit one; NFKC keeps it): in
    ChoiceFinder.find (dialogs/details/choice.py) `stripped.isdigit()` is true but `int(stripped)`
    raises ValueError."""
    dialog.send("не работает интернет, договор 1234567")
    assert dialog.state.active and dialog.state.active.asked == "router_lights"
    turn = dialog.send("፩")
    assert turn.replies


def test_regression_a_leap_day_date_is_handled(dialog: Dialog) -> None:
    """In a leap year after 1 March, "29.02" means next year's 29 February, which does not exist:
    `result.replace(year=today.year + 1)` in `_make_date` (dialogs/details/when.py) raises ValueError
    (only `date(...)` above it is guarded)."""
    dialog.clock = datetime(2028, 3, 6, 3, 0, tzinfo=UTC)
    dialog.send("перезвоните мне")
    dialog.send("8 913 123 45 67")
    turn = dialog.send("29.02 после 18")
    assert turn.replies


@pytest.mark.parametrize("text", ["договор 1234567", "89131234567", "ivan@mail.ru", "ул. Ленина, 5, кв. 12"])
def test_regression_a_detail_given_out_of_the_blue_is_answered(dialog: Dialog, text: str) -> None:
    """A first message that is only a contract number, a phone, an email or an address gets no reply at
    all: `_understand` collects the detail and calls `_continue_active`, which says nothing when no request
    is active (dialogs/engine.py, `if collected or new:` branch). Every other message gets an answer."""
    turn = dialog.send(text)
    assert dialog.state.details
    assert turn.replies, "every message gets an answer"


def test_regression_payload_or_contact_read_as_text_is_cleaned(dialog: Dialog) -> None:
    """A message with no text is read from its button payload or shared contact (`_Run.go` in
    dialogs/engine.py), which skip `clean()` (common/text.py), the step that drops control, bidi and
    zero-width characters from typed text. A forged payload answering the question asked (the web chat
    takes any payload up to 128 characters) is stored as the detail and echoed back: the bot's own reply
    carries a right-to-left override and an ANSI escape."""
    dialog.send("перезвоните мне")
    dialog.send("89131234567")
    turn = dialog.send(payload="завтра после 18\u202e\x1b[31m")
    assert dialog.state.details["callback_time"].display.startswith("завтра после 18")
    assert controls(dialog.last_text) == [], dialog.last_text
    assert turn.replies
