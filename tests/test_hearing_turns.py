"""Turns the script did not expect, from conversations written as clients write: each was misheard once."""

from __future__ import annotations

import pytest

from dialogs.content import CONTENT_ROOT, LiveContent
from dialogs.engine import Engine
from tests.conftest import Dialog


@pytest.fixture(scope="module")
def bank_engine() -> Engine:
    return Engine(LiveContent(CONTENT_ROOT / "bank"))


@pytest.fixture
def bank(bank_engine: Engine) -> Dialog:
    return Dialog(bank_engine)


def test_a_forgotten_password_is_a_request_not_a_cancel(bank: Dialog) -> None:
    turn = bank.send("забыл пароль от онлайн банка")
    assert turn.explain["layer"] == "request" and "app_login" in turn.explain["scenarios"]


def test_forgot_as_the_answer_to_a_choice_is_no_cancel(bank: Dialog) -> None:
    bank.send("не могу войти в приложение")
    bank.send("ладно, пароль забыл")
    assert bank.state.details["login_problem"].value == "password"


@pytest.mark.parametrize(
    "answer", ["ага, помогло, как же. нет конечно", "ага, конечно, очень помогли, переустановил три раза"]
)
def test_an_ironic_yes_to_did_it_help_is_a_no(dialog: Dialog, answer: str) -> None:
    dialog.send("не работает интернет")
    dialog.send("договор 4512367")
    dialog.send("все горят")
    dialog.send(answer)
    assert dialog.state.handed_off and dialog.state.handoff_reason == "not_solved"


def test_a_plain_yes_to_did_it_help_stays_a_yes(dialog: Dialog) -> None:
    dialog.send("не работает интернет")
    dialog.send("договор 4512367")
    dialog.send("все горят")
    dialog.send("ага, помогло")
    assert not dialog.state.handed_off


def test_for_now_in_a_question_is_no_goodbye(dialog: Dialog) -> None:
    dialog.send("оплатил вчера, а денег на балансе нет")
    turn = dialog.send("а интернет пока не отключат?")
    assert turn.explain["layer"] != "act" and dialog.state.active is not None
    assert dialog.state.active.scenario_id == "payment_missing"


def test_a_clear_question_mid_flow_is_not_a_new_request(dialog: Dialog) -> None:
    dialog.send("интернет очень медленный")
    dialog.send("договор 4512367")
    turn = dialog.send("а это платно будет, если мастер придёт?")
    assert turn.explain["layer"] == "question"
    assert dialog.state.active is not None and dialog.state.active.scenario_id == "slow_internet"


def test_a_request_named_in_a_question_mid_flow_still_counts(dialog: Dialog) -> None:
    dialog.send("интернета нет, договор 4545123")
    turn = dialog.send("может, это из-за того, что я вчера платил, а деньги не дошли?")
    assert "payment_missing" in turn.explain.get("scenarios", [])


@pytest.mark.parametrize(
    ("text", "scenario"), [("привет! как дела?", "how_are_you"), ("вы бот?", "who_are_you")]
)
def test_small_talk_is_small_talk(dialog: Dialog, text: str, scenario: str) -> None:
    turn = dialog.send(text)
    assert scenario in turn.explain.get("scenarios", []) and turn.explain["layer"] != "out_of_scope"


def test_what_can_you_do_is_never_out_of_scope(bank: Dialog) -> None:
    turn = bank.send("что ты умеешь вообще")
    assert turn.explain["layer"] == "capabilities"


def test_thanks_for_answering_quickly_asks_nothing(dialog: Dialog) -> None:
    dialog.send("привет")
    turn = dialog.send("спасибо что так быстро ответили")
    assert turn.explain["layer"] != "question"


def test_a_tariff_chosen_by_its_price(dialog: Dialog) -> None:
    dialog.send("как сменить тариф?")
    dialog.send("договор 3456789")
    dialog.send("давайте за 650")
    assert dialog.state.details["tariff"].value == "optima_300"


def test_the_sum_said_with_the_transfer_and_with_the_date(bank: Dialog, bank_engine: Engine) -> None:
    bank.send("перевёл сестре 15 000 вчера вечером, а она не получила")
    assert bank.state.details["amount"].value == "15000"
    other = Dialog(bank_engine)
    other.send("ошиблась на одну цифру в номере карты при переводе, ушло чужому человеку")
    other.send("сегодня утром, 4300")
    assert other.state.details["amount"].value == "4300"


def test_a_sum_in_words_when_asked(bank: Dialog) -> None:
    bank.send("перевод не пришёл")
    bank.send("позавчера")
    bank.send("полторы тысячи")
    assert bank.state.details["amount"].value == "1500"


def test_a_house_number_taken_back(dialog: Dialog) -> None:
    dialog.send("подключите интернет по адресу Станционная 30, кв 2")
    dialog.send("ой, не 30, а 38")
    assert dialog.state.details["address"].value == "Станционная 38, кв 2"


def test_an_angry_first_message_is_handed_over_with_its_request(dialog: Dialog) -> None:
    turn = dialog.send("ВЫ ИЗДЕВАЕТЕСЬ?? ТРЕТИЙ РАЗ ЗА НЕДЕЛЮ НЕТ ИНТЕРНЕТА")
    assert dialog.state.handed_off and "no_internet" in turn.explain.get("scenarios", [])
    assert dialog.state.handoff_category == "tech"


def test_a_person_asked_for_with_a_request_goes_to_its_team(dialog: Dialog) -> None:
    dialog.send("интернет медленный, позовите кого-нибудь живого")
    assert dialog.state.handed_off and dialog.state.handoff_category == "tech"


def test_a_complaint_answering_the_offer_of_a_person_is_a_yes(dialog: Dialog) -> None:
    dialog.send("абырвалг")
    dialog.send("фывапролд")
    dialog.send("вы опять одно и то же пишете")
    assert dialog.state.handed_off


def test_last_four_digits_with_a_typo_in_the_cue(bank: Dialog) -> None:
    bank.send("карта заблокированна, посл цыфры 6071")
    assert bank.state.details["card_last4"].value == "6071"


def test_a_restart_is_not_a_router_that_does_not_switch_on(dialog: Dialog) -> None:
    dialog.send("интернет пропал. Я роутер выключила-включила, ничего не изменилось. Договор 4409871")
    assert "router_lights" not in dialog.state.details


def test_answers_written_by_ear_are_heard(dialog: Dialog) -> None:
    dialog.send("инет ни работаит ваще, дагавор 7736120")
    dialog.send("лампочки фсе гарят")
    assert dialog.state.details["router_lights"].value == "all_on"
    dialog.send("ни памагло")
    assert dialog.state.handed_off and dialog.state.handoff_reason == "not_solved"


def test_a_person_asked_for_instead_of_did_it_help(dialog: Dialog) -> None:
    dialog.send("интернет медленный")
    dialog.send("договор 4455667")
    dialog.send("по кабелю")
    dialog.send("короче, можно с человеком поговорить?")
    assert dialog.state.handed_off and dialog.state.handoff_reason == "client_asked"


def test_steps_already_taken_are_no_yes(dialog: Dialog) -> None:
    dialog.send("инет не работает")
    dialog.send("договор 5123098")
    dialog.send("все горят")
    dialog.send("я это всё уже делал, и перезагружал, и провод передёргивал. не помогает")
    assert dialog.state.handed_off and dialog.state.handoff_reason == "not_solved"


def test_refusing_a_person_to_did_it_help_calls_no_one(dialog: Dialog) -> None:
    dialog.send("интернет медленный")
    dialog.send("договор 4455667")
    dialog.send("по кабелю")
    dialog.send("не надо оператора, сам разберусь, спасибо")
    assert not dialog.state.handed_off


def test_the_same_choice_said_again_calls_no_one(bank: Dialog) -> None:
    bank.send("я сама заблокировала карту в приложении, а она потом нашлась")
    bank.send("8820")
    bank.send("да говорю же, я сама её заблокировала, сама")
    assert not bank.state.handed_off


def test_another_choice_named_after_the_advice_corrects_it(bank: Dialog) -> None:
    bank.send("почему моя карта не работает? в приложении пишет заблокирована")
    bank.send("цифры 3391")
    bank.send("я сама заблокировала")
    bank.send("это вы её заблокировали, я ничего не делала")
    assert bank.state.details["block_cause"].value == "bank"


def test_a_question_is_not_read_as_a_tariff_by_its_spelling(dialog: Dialog) -> None:
    dialog.send("хочу поменять тариф")
    dialog.send("договор 5566012")
    dialog.send("а кстати, сколько у меня сейчас на счету?")
    assert "tariff" not in dialog.state.details


def test_nothing_helps_to_call_a_person_is_a_yes(dialog: Dialog) -> None:
    for text in ["не работает", "да, перезагружал", "да, провода проверял", "всё равно не работает"]:
        dialog.send(text)
    dialog.send("да сколько можно, ничего не помогает")
    assert dialog.state.handed_off


def test_advice_tried_before_the_first_message_brings_a_person_at_once(dialog: Dialog) -> None:
    turn = dialog.send("перезагружал роутер уже пять раз, ваш совет не работает")
    assert dialog.state.handed_off and dialog.state.handoff_reason == "tried_basics"
    assert "no_internet" in turn.explain.get("scenarios", [])
    dialog.send("договор 4512367")
    assert dialog.state.details["contract"].value == "4512367"
