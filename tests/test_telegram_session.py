"""The session's cheaper request bodies say to the Bot API exactly what aiogram's own would."""

from __future__ import annotations

import json
import random
import urllib.parse

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.channels.forms import quote_plus
from bot.telegram.session import QuickSession

TOKEN = "123456:" + "a" * 35


def test_quoting_matches_urllib() -> None:
    alphabet = "abcXYZ019 _.-~!@#$%^&*()+=/?&привет😊é\t\n\"'ё№٣"
    chooser = random.Random(7)
    for _ in range(5_000):
        text = "".join(chooser.choice(alphabet) for _ in range(chooser.randint(0, 30)))
        assert quote_plus(text) == urllib.parse.quote_plus(text), text


def fields(form: object) -> dict[str, str]:
    return {options["name"]: value for options, _, value in form._fields}  # type: ignore[attr-defined]


def test_a_reply_with_a_keyboard_sends_the_same_fields_as_aiogram() -> None:
    bot = Bot(TOKEN)
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text="Да 😊", callback_data="yes")],
            [InlineKeyboardButton(text="2", callback_data="n:2")],
        ]
    )
    for markup in (keyboard, None):
        method = SendMessage(chat_id=5, text="привет, мир 1+1", reply_markup=markup)
        theirs = fields(AiohttpSession().build_form_data(bot, method))
        ours = fields(QuickSession().build_form_data(bot, method))
        assert ours.keys() == theirs.keys()
        for key, value in theirs.items():
            if key == "reply_markup":
                assert json.loads(ours[key]) == json.loads(value)
            else:
                assert ours[key] == value
    method = SendMessage(chat_id=5, text="привет, мир 1+1")
    assert (
        QuickSession().build_form_data(bot, method)()._value  # type: ignore[union-attr]
        == AiohttpSession().build_form_data(bot, method)()._value  # type: ignore[union-attr]
    )
