"""Sending through pywa_async: replies laid out as WhatsApp messages, the 24-hour window kept, "typing…"
as a read receipt with the typing indicator, the Graph API's errors translated for the gateway."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from pywa.types.callback import Button as WaButton
from pywa.types.callback import Section, SectionList, SectionRow
from pywa_async.client import WhatsApp

from bot.channels.outbound import NotAllowed, Outbound, RetryLater, TemporaryFailure
from bot.whatsapp.client import MAX_IN_FLIGHT
from bot.whatsapp.errors import RATE_LIMIT_WAIT_S, translate
from bot.whatsapp.layout import LIST_BUTTON, LIST_SECTION, Part, PartKind, layout
from bot.whatsapp.window import OUTSIDE_WINDOW, ChatWindows, LastInboundLookup, is_open
from common.messages import Button

log = logging.getLogger(__name__)
# Sends in progress whose first messages went out and a later one must be retried: the first ones are
# not sent again. Bounded, for sends that never finish (the chat refused).
PROGRESS_KEPT = 10_000
# Told after every accepted message: (chat id, the send's key, WhatsApp's wamid), to link receipts.
SentHook = Callable[[str, str, str], None]


class WhatsAppOutbound(Outbound):
    """Sends with a pywa_async WhatsApp client, translating its errors."""

    def __init__(
        self,
        client: WhatsApp,
        *,
        windows: ChatWindows | None = None,
        last_inbound: LastInboundLookup | None = None,
        session: httpx.AsyncClient | None = None,
        rate_limit_wait_s: float = RATE_LIMIT_WAIT_S,
        on_sent: SentHook | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.windows = windows or ChatWindows()
        self.last_inbound = last_inbound
        self.session = session
        self.rate_limit_wait_s = rate_limit_wait_s
        self.on_sent = on_sent
        self.clock = clock
        self._progress: OrderedDict[str, int] = OrderedDict()
        # Chats beyond the connection pool wait here, in O(1), not in httpx's pool, which walks its
        # waiting requests on every request.
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def send_text(
        self, chat_id: str, text: str, buttons: Sequence[Button], *, key: str = ""
    ) -> str | None:
        """Send a reply as one or more WhatsApp messages (the last one's wamid); NotAllowed outside the
        24-hour window."""
        await self.check_window(chat_id)
        parts = layout(text, buttons)
        done = self._progress.pop(key, 0) if key else 0
        last_wamid = ""
        for index, part in enumerate(parts[done:], done):
            try:
                wamid = await self._call(functools.partial(self._send_part, chat_id, part))
            except (RetryLater, TemporaryFailure):
                if key and index:
                    # The gateway sends this key again: the parts already out are not repeated.
                    self._remember_progress(key, index)
                raise
            if self.on_sent is not None and wamid:
                self.on_sent(chat_id, key, wamid)
            last_wamid = wamid or last_wamid
        return last_wamid or None

    async def check_window(self, chat_id: str) -> None:
        """Raise NotAllowed when the client's last message is known to be over 24 hours old. A chat this
        process never heard from is looked up, or (with no lookup) left for WhatsApp to refuse (131047)."""
        now = self.clock()
        known = self.windows.last(chat_id)
        if known is not None and is_open(known.at, now):
            return
        if self.last_inbound is not None:
            at = await self.last_inbound(chat_id)
            if at is not None:
                at = at if at.tzinfo else at.replace(tzinfo=UTC)
                # Only ever later: a window found open stays open until its own end.
                self.windows.saw(chat_id, known.message_id if known else "", at)
                known = self.windows.last(chat_id)
        if known is not None and not is_open(known.at, now):
            raise NotAllowed(f"{OUTSIDE_WINDOW}; the client last wrote at {known.at:%Y-%m-%d %H:%M} UTC")

    async def typing(self, chat_id: str) -> None:
        """Mark the client's last message read and show the typing indicator (up to 25 s or the reply)."""
        last = self.windows.last(chat_id)
        if last is None or not last.message_id or not is_open(last.at, self.clock()):
            return
        await self._call(functools.partial(self.client.indicate_typing, last.message_id))

    async def answer_callback(self, callback_id: str) -> None:
        """WhatsApp has nothing to acknowledge: a pressed button arrives as a message."""

    async def close(self) -> None:
        """Close the HTTP session the client was made with."""
        if self.session is not None:
            await self.session.aclose()

    def _send_part(self, chat_id: str, part: Part) -> Awaitable[Any]:
        if part.kind is PartKind.BUTTONS:
            buttons = [WaButton(title=choice.title, callback_data=choice.id) for choice in part.choices]
            return self.client.send_message(to=chat_id, text=part.text, buttons=buttons)
        if part.kind is PartKind.LIST:
            rows = [SectionRow(c.title, callback_data=c.id, description=c.description) for c in part.choices]
            choices = SectionList(button_title=LIST_BUTTON, sections=[Section(LIST_SECTION, rows)])
            return self.client.send_message(to=chat_id, text=part.text, buttons=choices)
        return self.client.send_message(to=chat_id, text=part.text)

    async def _call(self, request: Callable[[], Awaitable[Any]]) -> str:
        """Make a pywa request; its errors become OutboundError subclasses. The sent message's id."""
        try:
            async with self._in_flight:
                result = await request()
        except (KeyError, IndexError) as exc:
            # Raised by pywa reading a 2xx answer without the usual fields: the message was accepted.
            log.warning("the Graph API accepted a message without saying its id (%r)", exc)
            return ""
        except Exception as exc:
            raise translate(exc, self.rate_limit_wait_s) from exc
        return str(getattr(result, "id", "") or "")

    def _remember_progress(self, key: str, sent: int) -> None:
        self._progress[key] = sent
        if len(self._progress) > PROGRESS_KEPT:
            self._progress.popitem(last=False)
