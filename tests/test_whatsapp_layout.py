"""Replies fitted to WhatsApp's message kinds: reply buttons, lists, numbered options, shortened labels."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.whatsapp.layout import (
    BODY_MAX,
    EMPTY_BODY,
    LIST_ROWS_MAX,
    REPLY_TITLE_MAX,
    ROW_DESCRIPTION_MAX,
    ROW_TITLE_MAX,
    TEXT_MAX,
    Choice,
    Part,
    PartKind,
    layout,
    shorten,
    split_tail,
)
from common.messages import Button


def buttons(*labels: str) -> tuple[Button, ...]:
    return tuple(Button(label, f"choice:{n}") for n, label in enumerate(labels, 1))


def test_plain_text_is_one_text_message() -> None:
    assert layout("Здравствуйте!", ()) == [Part(PartKind.TEXT, "Здравствуйте!")]
    assert layout("   ", ()) == [], "WhatsApp refuses an empty text: nothing is sent"


def test_up_to_three_short_labels_are_reply_buttons() -> None:
    parts = layout("Помогло?", buttons("Да, помогло", "Нет, не помогло"))
    assert parts == [
        Part(
            PartKind.BUTTONS,
            "Помогло?",
            (Choice("choice:1", "Да, помогло"), Choice("choice:2", "Нет, не помогло")),
        )
    ]


def test_more_than_three_or_a_long_label_make_a_list_with_the_whole_label_underneath() -> None:
    four = layout(
        "Что горит?", buttons("Все лампочки горят", "Не горит значок интернета", "Роутер", "Не знаю")
    )
    assert [part.kind for part in four] == [PartKind.LIST]
    assert four[0].choices[1] == Choice("choice:2", "Не горит значок…", "Не горит значок интернета")
    assert four[0].choices[0] == Choice("choice:1", "Все лампочки горят")
    # Two options, one of them longer than a reply button's 20 characters: a list shows it whole.
    two = layout("Тариф?", buttons("Оптима 300 — 650 ₽/мес", "Старт"))
    assert two[0].kind is PartKind.LIST and two[0].choices[0].title == "Оптима 300 — 650 ₽/мес"


def test_more_than_ten_options_are_numbered_in_the_text() -> None:
    labels = [f"Вариант {n}" for n in range(1, 13)]
    parts = layout("Выберите город:", buttons(*labels))
    assert parts == [
        Part(PartKind.TEXT, "Выберите город:\n\n" + "\n".join(f"{n}. {x}" for n, x in enumerate(labels, 1)))
    ]


def test_labels_that_shorten_alike_are_numbered_rather_than_confused() -> None:
    parts = layout("Какой?", buttons(*(f"Очень длинное название тарифа номер {n}" for n in range(4))))
    assert [part.kind for part in parts] == [PartKind.TEXT]
    assert "4. Очень длинное название тарифа номер 3" in parts[0].text


def test_a_long_text_goes_first_and_the_question_stays_with_the_buttons() -> None:
    text = "Сначала проверьте кабель. " * 60 + "Помогло?"
    parts = layout(text, buttons("Да", "Нет"))
    assert [part.kind for part in parts] == [PartKind.TEXT, PartKind.BUTTONS]
    assert len(parts[1].text) <= BODY_MAX and parts[1].text.endswith("Помогло?")
    assert parts[0].text.endswith("кабель.") and parts[1].text.startswith("Сначала")
    assert f"{parts[0].text} {parts[1].text}" == text


def test_buttons_without_text_get_a_body() -> None:
    assert layout("", buttons("1", "2"))[0].text == EMPTY_BODY


def test_shorten_keeps_whole_words_and_marks_the_cut() -> None:
    assert shorten("Не горит значок интернета", 24) == "Не горит значок…"
    assert shorten("Роутер не включается", 20) == "Роутер не включается"
    assert shorten("Пере-подключение-абонентского-устройства", 20) == "Пере-подключение-аб…"
    assert shorten("Да, но не совсем так, как хотелось бы", 20) == "Да, но не совсем…"
    assert shorten("  лишние   пробелы  ", 20) == "лишние пробелы"


def test_split_tail_cuts_between_sentences() -> None:
    assert split_tail("Коротко.") == ("", "Коротко.")
    head, tail = split_tail("Первое. " * 200 + "Вопрос?", 100)
    assert len(tail) <= 100 and tail.endswith("Вопрос?") and tail.startswith("Первое.")
    assert head.endswith("Первое.")


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=80), st.integers(min_value=2, max_value=72))
def test_shorten_never_cuts_a_word_without_saying_so(title: str, limit: int) -> None:
    short = shorten(title, limit)
    normal = " ".join(title.split())
    assert len(short) <= limit
    if short != normal:
        assert short.endswith("…")
        kept = short.removesuffix("…")
        assert normal.startswith(kept.rstrip())


label = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(lambda s: s.strip() != "")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=TEXT_MAX), st.lists(label, min_size=1, max_size=14))
def test_every_part_keeps_within_whatsapps_limits_and_every_option_is_offered(
    text: str, labels: list[str]
) -> None:
    options = buttons(*labels)
    parts = layout(text, options)
    assert parts
    for part in parts:
        if part.kind is PartKind.TEXT:
            assert 0 < len(part.text) <= TEXT_MAX
            continue
        assert 0 < len(part.text) <= BODY_MAX
        assert part is parts[-1], "the buttons come last"
        if part.kind is PartKind.BUTTONS:
            assert len(part.choices) <= 3 and all(0 < len(c.title) <= REPLY_TITLE_MAX for c in part.choices)
        else:
            assert len(part.choices) <= LIST_ROWS_MAX
            assert all(0 < len(c.title) <= ROW_TITLE_MAX for c in part.choices)
            assert all(
                c.description is None or len(c.description) <= ROW_DESCRIPTION_MAX for c in part.choices
            )
        assert len({c.title for c in part.choices}) == len(part.choices)
        assert [c.id for c in part.choices] == [b.payload for b in options]
    if parts[-1].kind is PartKind.TEXT:
        shown = "\n".join(part.text for part in parts)
        assert all(f"{n}. {' '.join(b.text.split())}" in shown for n, b in enumerate(options, 1))
