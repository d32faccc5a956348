"""Sending through vkbottle's API: messages.send (pooled into execute calls) with an idempotent random_id,
inline keyboards within VK's limits, and VK's errors in the gateway's terms.

VK error                                    becomes
6 too many requests a second, 9 flood       RetryLater
1 unknown, 10 internal, 5xx, network        TemporaryFailure
900/901/902 blacklisted, not allowed,       NotAllowed (the gateway stops writing to the chat)
    privacy settings
anything else                               Rejected
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

import aiohttp
from vkbottle import API, Callback, Keyboard, Text, VKAPIError

from bot.channels.outbound import (
    NotAllowed,
    Outbound,
    OutboundError,
    Rejected,
    RetryLater,
    TemporaryFailure,
    keyboard_rows,
)
from bot.vk.inbound import PAYLOAD_KEY, parse_callback_id
from bot.vk.sending import SendPool
from common.messages import Button

log = logging.getLogger(__name__)
# VK's limits for an inline keyboard: 10 buttons, 5 in a row, 6 rows; 40 characters a label, 255 a payload.
MAX_BUTTONS, MAX_IN_ROW, MAX_ROWS = 10, 5, 6
MAX_LABEL, MAX_PAYLOAD = 40, 255
# Error 6 is a per-second limit: a second later the window is clear. Flood control (9) lasts longer.
WAIT_AFTER = {6: 1.0, 9: 5.0}
TEMPORARY = frozenset({1, 10})
NOT_ALLOWED = frozenset({900, 901, 902})


def random_id(chat_id: str, key: str) -> int:
    """VK's idempotency key for a send: the same (chat, key) gives the same non-zero 31-bit number, in any
    process, so a retry after a lost answer is recognised by VK and not sent twice; 0 (no check) for no key.

    Keys are unique within a chat (they name the message and the reply). Two of a dialog's n replies share
    a random_id with odds of n²/2³² (a hundred replies: one in 400,000); VK would take the later one for a
    resend of the earlier."""
    if not key:
        return 0
    digest = hashlib.blake2b(f"{chat_id}\x00{key}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF or 1


def keyboard_json(buttons: Sequence[Button], *, callback: bool = True) -> str | None:
    """An inline keyboard within VK's limits: callback buttons (no message in the chat when pressed), or
    text buttons for apps that cannot show callback ones; None when no button fits."""
    return _keyboard(tuple(buttons), callback)


@functools.lru_cache(maxsize=512)
def _keyboard(buttons: tuple[Button, ...], callback: bool) -> str | None:
    # The guides offer a few dozen keyboards: each is built once, not for every reply.
    fitting = [b for b in buttons if len(_payload(b)) <= MAX_PAYLOAD]
    if len(fitting) < len(buttons) or len(fitting) > MAX_BUTTONS:
        # The engine understands the options typed too: a keyboard cut short still leaves every answer open.
        log.warning("VK shows %d of %d buttons", min(len(fitting), MAX_BUTTONS), len(buttons))
    if not fitting:
        return None
    keyboard = Keyboard(inline=True)
    for row in _rows(fitting[:MAX_BUTTONS]):
        keyboard.row()
        for button in row:
            label = button.text if len(button.text) <= MAX_LABEL else button.text[: MAX_LABEL - 1] + "…"
            keyboard.add(Callback(label, _payload(button)) if callback else Text(label, _payload(button)))
    return keyboard.get_json()


def _payload(button: Button) -> str:
    # A JSON string, as VK wants it; it comes back as an object in message_event, a string in message_new.
    return json.dumps({PAYLOAD_KEY: button.payload}, ensure_ascii=False)


def _rows(buttons: list[Button]) -> list[list[Button]]:
    rows = [row[i : i + MAX_IN_ROW] for row in keyboard_rows(buttons) for i in range(0, len(row), MAX_IN_ROW)]
    if len(rows) <= MAX_ROWS:
        return rows
    return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]


class VkOutbound(Outbound):
    """Sends with a vkbottle API, translating its errors."""

    def __init__(self, api: API) -> None:
        self.api = api
        self.sends = SendPool(api)
        # Peers whose app said it cannot show callback buttons: they get text buttons instead.
        self.text_buttons: set[str] = set()

    async def send_text(self, chat_id: str, text: str, buttons: Sequence[Button], *, key: str = "") -> None:
        """messages.send; a retry with the same key is recognised by VK (random_id) and not shown twice."""
        params: dict[str, Any] = {"peer_id": chat_id, "random_id": random_id(chat_id, key), "message": text}
        keyboard = keyboard_json(buttons, callback=chat_id not in self.text_buttons) if buttons else None
        if keyboard is not None:
            params["keyboard"] = keyboard
        await self.call(self.sends.send(params))

    async def typing(self, chat_id: str) -> None:
        """messages.setActivity(type=typing)."""
        await self.call(self.api.messages.set_activity(peer_id=int(chat_id), type="typing"))

    async def answer_callback(self, callback_id: str) -> None:
        """messages.sendMessageEventAnswer, which stops the button's spinner."""
        try:
            event_id, user_id, peer_id = parse_callback_id(callback_id)
        except ValueError:
            raise Rejected(f"not a VK callback id: {callback_id!r}") from None
        await self.call(
            self.api.messages.send_message_event_answer(event_id=event_id, user_id=user_id, peer_id=peer_id)
        )

    async def close(self) -> None:
        """Stop the sends in flight and close the API's HTTP session."""
        await self.sends.close()
        await self.api.http_client.close()

    @staticmethod
    async def call(request: Awaitable[Any]) -> None:
        """Await a vkbottle request; its errors become OutboundError subclasses."""
        try:
            await request
        except OutboundError:
            raise
        except VKAPIError as exc:
            raise translated(exc) from exc
        except aiohttp.ClientResponseError as exc:
            if exc.status >= 500 or exc.status == 429:
                raise TemporaryFailure(f"HTTP {exc.status} from VK") from exc
            raise Rejected(f"HTTP {exc.status} from VK") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TemporaryFailure(f"{type(exc).__name__}: {exc}") from exc


def translated(error: VKAPIError) -> OutboundError:
    """The gateway's view of a VK API error."""
    code = error.code
    described = f"VK error {code}: {error.error_msg}"
    if code in WAIT_AFTER:
        return RetryLater(WAIT_AFTER[code])
    if code in TEMPORARY:
        return TemporaryFailure(described)
    if code in NOT_ALLOWED:
        return NotAllowed(described)
    return Rejected(described)
