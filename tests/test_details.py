"""Detail extraction: every way Russians write a phone, contract numbers, emails, addresses, dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialogs.content import LiveContent

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def found(live_content: LiveContent, text: str, **kwargs: object) -> dict[str, str]:
    result = live_content.get().extractor.extract(text, NOW, **kwargs)  # type: ignore[arg-type]
    return {name: value.value for name, value in result.found.items()}


@pytest.mark.parametrize(
    "text",
    [
        "8 913 123-45-67",
        "+7(913)1234567",
        "89131234567",
        "9131234567",
        "7 913 123 45 67",
        "8-913-123-45-67",
        "+7 913 123 45 67",
        "т.89131234567",
        "мой номер 8 (913) 123 4567, звоните после обеда",
        "+7-913-123-45-67",
    ],
)
def test_phone_formats_normalise_to_e164(live_content: LiveContent, text: str) -> None:
    assert found(live_content, text)["phone"] == "+79131234567"


def test_landline_with_area_code(live_content: LiveContent) -> None:
    assert found(live_content, "рабочий 8 (383) 212-34-56")["phone"] == "+73832123456"


@pytest.mark.parametrize(
    "text",
    [
        "звонил на 8 800 555-35-35, никто не берёт",
        "списали 1500 руб за октябрь",
        "скорость 3 Мбит/с вместо 100",
        "заявка №4512345 от 12.03",
        "роутер 192.168.0.1 не открывается",
        "тариф Турбо 500 не устраивает",
        "пароль от вайфая 12345678 не подходит",
        "в 18:30 пропал интернет",
        "551122 — номер заявки, её закрыли",
    ],
)
def test_numbers_that_are_not_details_are_left_alone(live_content: LiveContent, text: str) -> None:
    got = found(live_content, text)
    assert "phone" not in got and "contract" not in got


def test_contract_with_cue_and_leading_zeros(live_content: LiveContent) -> None:
    assert found(live_content, "л/с: 00123456")["contract"] == "00123456"
    assert found(live_content, "не работает интернет, договор 1234567")["contract"] == "1234567"


def test_contract_pattern_is_configurable(content_copy) -> None:  # type: ignore[no-untyped-def]
    path = content_copy / "scenarios" / "provider.yaml"
    shipped = path.read_text(encoding="utf-8")
    assert r"'\d{5,20}'" in shipped
    path.write_text(shipped.replace(r"'\d{5,20}'", r"'\d{12}'"), encoding="utf-8")
    extractor = LiveContent(content_copy).get().extractor
    assert "contract" not in extractor.extract("договор 1234567", NOW).found
    invalid = extractor.extract("договор 1234567", NOW, asked="contract").invalid
    assert invalid is not None and invalid.problem == "contract_pattern"


def test_several_details_in_one_message_do_not_share_digits(live_content: LiveContent) -> None:
    got = found(live_content, "договор 1234567, тел 89131234567, ул. Ленина 5-12, почта Ivan.P@Mail.ru.")
    assert got == {
        "contract": "1234567",
        "phone": "+79131234567",
        "address": "ул. Ленина 5-12",
        "email": "ivan.p@mail.ru",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Новосибирск, Красный проспект 101/2 кв 5", "Новосибирск, Красный проспект 101/2 кв 5"),
        ("Кирова 86-15", "Кирова 86-15"),
        ("живём на ул. Гоголя, д. 14, кв 77", "ул. Гоголя, д. 14, кв 77"),
    ],
)
def test_addresses(live_content: LiveContent, text: str, expected: str) -> None:
    assert found(live_content, text)["address"] == expected


def test_asked_address_without_house_is_invalid(live_content: LiveContent) -> None:
    result = live_content.get().extractor.extract("на улице Ленина", NOW, asked="address")
    assert result.invalid is not None and result.invalid.problem == "address_no_house"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("завтра после 18", "2026-11-24 18:00"),
        ("в пн с 10 до 12", "2026-11-30 10:00-12:00"),
        ("25.11 в 15:00", "2026-11-25 15:00"),
        ("завтра утром", "2026-11-24 09:00-12:00"),
        ("в любое время", "any"),
        ("сегодня в 3 дня", "2026-11-23 15:00"),
        ("в чт после 18", "2026-11-26 18:00"),
        ("в ср. с 10 до 12", "2026-11-25 10:00-12:00"),
        ("по субботам", "2026-11-28"),
        ("звоните 14 - 16", "14:00-16:00"),
    ],
)
def test_dates_and_times(live_content: LiveContent, text: str, value: str) -> None:
    assert found(live_content, text, asked="callback_time")["callback_time"] == value


@pytest.mark.parametrize(
    "text",
    [
        # Word starts that are day abbreviations: "что" is no Thursday, "сбой" no Saturday.
        "а что с интернетом?",
        "сбой опять",
        "второй раз пишу",
        "мы на дачу на все лето уезжаем",
        "средство не помогло",
        # Digits of a phone are no hours: not 11:00-22:00, not eight o'clock.
        "+7 (913) 000-11-22",
        "звонил на 8 800 555-35-35, никто не берёт",
    ],
)
def test_words_and_phone_digits_are_no_dates(live_content: LiveContent, text: str) -> None:
    result = live_content.get().extractor.extract(text, NOW, asked="callback_time")
    assert "callback_time" not in result.found


@pytest.mark.parametrize(
    ("text", "problem"), [("32.13", "datetime_invalid"), ("как-нибудь", "datetime_unclear")]
)
def test_bad_dates_say_what_is_wrong(live_content: LiveContent, text: str, problem: str) -> None:
    result = live_content.get().extractor.extract(text, NOW, asked="callback_time")
    assert result.invalid is not None and result.invalid.problem == problem


@pytest.mark.parametrize(
    ("text", "problem"), [("8913123", "phone_too_short"), ("8 800 555 35 35", "phone_is_ours")]
)
def test_bad_phones_say_what_is_wrong(live_content: LiveContent, text: str, problem: str) -> None:
    result = live_content.get().extractor.extract(text, NOW, asked="phone")
    assert result.invalid is not None and result.invalid.problem == problem


@pytest.mark.parametrize(
    ("text", "option"),
    [
        ("все горят", "all_on"),
        ("не горит интернет", "wan_off"),
        ("ничего не горит", "power_off"),
        ("2", "wan_off"),
    ],
)
def test_choice_by_words_or_number(live_content: LiveContent, text: str, option: str) -> None:
    assert found(live_content, text, asked="router_lights")["router_lights"] == option


def _bank(text: str, **kwargs: object) -> dict[str, str]:
    from dialogs.content import CONTENT_ROOT

    content = LiveContent(CONTENT_ROOT / "bank").get()
    result = content.extractor.extract(text, NOW, **kwargs)  # type: ignore[arg-type]
    return {name: value.value for name, value in result.found.items()} | {"refused": ",".join(result.refused)}


@pytest.mark.parametrize(
    ("text", "last4"),
    [
        ("карта *7788 заблокирована", "7788"),
        ("карта заканчивается на 0457", "0457"),
        ("последние цифры 4521", "4521"),
    ],
)
def test_the_last_four_digits_of_a_card(text: str, last4: str) -> None:
    assert _bank(text, needed=["card_last4"])["card_last4"] == last4


@pytest.mark.parametrize(
    "text",
    [
        "4276 3801 2345 6782",
        "4276380123456782",
        "4276-3801-2345-6782",
        "номер карты 4276 3801 2345 6782 cvv 123",
    ],
)
def test_a_full_card_number_is_refused_and_only_its_last_digits_kept(text: str) -> None:
    found = _bank(text, asked="card_last4", needed=["card_last4"])
    assert found["card_last4"] == "6782"
    assert "card" in found["refused"]
    assert "4276" not in "".join(v for k, v in found.items() if k != "refused")


def test_a_cvv_is_refused() -> None:
    assert "cvv" in _bank("вот cvv 321 если надо", needed=["card_last4"])["refused"]


def test_an_account_number_is_no_card() -> None:
    assert _bank("счёт 40817 810 0 1234 5678901", needed=["card_last4"])["refused"] == ""


@pytest.mark.parametrize(
    ("text", "amount"),
    [
        ("перевёл 5000 другу", "5000"),
        ("вчера перевёл 15 000 сестре", "15000"),
        ("перевод на 3000 не дошёл", "3000"),
        ("сумма 1 500,50 ₽", "1500.50"),
        ("15 тыс", "15000"),
    ],
)
def test_sums_of_money(text: str, amount: str) -> None:
    assert _bank(text, needed=["amount"])["amount"] == amount


@pytest.mark.parametrize(
    ("text", "day"), [("вчера", "2026-11-22"), ("позавчера", "2026-11-21"), ("20.11", "2026-11-20")]
)
def test_a_payment_date_is_in_the_past(text: str, day: str) -> None:
    assert _bank(text, asked="transfer_date", needed=["transfer_date"])["transfer_date"].startswith(day)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "мы переезжаем 20 декабря на ул. Кирова 48 кв 3",
            {"new_address": "ул. Кирова 48 кв 3", "move_date": "2026-12-20"},
        ),
        ("Завтра после 18", {"move_date": "2026-11-24 18:00"}),
        ("Потери пакетов 30-40%", {}),
    ],
)
def test_dates_and_measures_are_not_addresses(
    live_content: LiveContent, text: str, expected: dict[str, str]
) -> None:
    assert found(live_content, text, needed=["new_address", "move_date"]) == expected


@pytest.mark.parametrize(
    "text",
    [
        "чек № 000456, деньги списали",
        "БИК банка 044525225 для перевода",
        "ИНН организации 5406123456 для счёта",
    ],
)
def test_receipts_bik_and_inn_a_word_away_are_no_contract(live_content: LiveContent, text: str) -> None:
    assert "contract" not in found(live_content, text)


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("прошу перенести номер +79050009988 к вам", "+79050009988"),
        ("перезвоните на 8(383)2-11-22-33", "+73832112233"),
    ],
)
def test_a_phone_before_a_preposition_or_with_date_like_groups(
    live_content: LiveContent, text: str, phone: str
) -> None:
    assert found(live_content, text).get("phone") == phone


@pytest.mark.parametrize(
    "text", ["номер заказа 4567-1234, телефон 89131234567", "звонки на 8-800 бесплатные?"]
)
def test_order_numbers_and_call_words_are_no_street(live_content: LiveContent, text: str) -> None:
    assert "address" not in found(live_content, text)
