"""`tonebot run vk`: Bots Long Poll by default, or the Callback API served by the shared webhook app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from vkbottle import VKAPIError

from bot.channels.gateway import ChannelGateway
from bot.channels.limits import RateLimits
from bot.channels.webhook import WebhookReader
from bot.vk.client import make_api
from bot.vk.inbound import CHANNEL, lacks_callback_buttons, permission_change, read_update
from bot.vk.longpoll import BotsLongPoll
from bot.vk.outbound import VkOutbound
from bot.vk.sending import MAX_CALLS
from bot.vk.settings import VkConfigError, VkSettings
from bot.vk.webhook import VkCallbackReader
from dialogs.service import ConversationService
from storage.desk.base import Outbox

log = logging.getLogger(__name__)
# VK's longest message (vkbottle's own Message.answer cuts at the same length).
VK_TEXT_LIMIT = 4096
# A community token may make 20 API calls a second, every method together (the API object paces them
# all). VK names no per-chat pace; a short gap keeps a chat's replies in order.
VK_LIMITS = RateLimits(per_chat_interval=0.1, global_per_second=20)
# On a requested stop, chats already being answered get this long to finish.
DRAIN_ON_STOP_S = 5.0


def make_gateway(
    service: ConversationService, settings: VkSettings, limits: RateLimits | None = None
) -> ChannelGateway:
    """A gateway sending through vkbottle to VK (or to the server in VK_API_BASE). `limits` keep a chat's
    replies apart and the API calls, every kind together, within their global rate."""
    limits = limits or VK_LIMITS
    outbound = VkOutbound(make_api(settings, limits.global_per_second))
    # Replies go up to 25 in one call (execute): their own pace may be that many times the calls'.
    replies = RateLimits(limits.per_chat_interval, limits.global_per_second * MAX_CALLS)
    return ChannelGateway(service, outbound, replies, channel=CHANNEL, text_limit=VK_TEXT_LIMIT)


def webhook_reader(settings: VkSettings) -> WebhookReader:
    """The Callback API's reader at /vk/callback; VkConfigError when its secret or code is not set."""
    if not settings.callback_configured or not settings.callback_secret or not settings.confirmation_code:
        raise VkConfigError(
            "the Callback API needs VK_CALLBACK_SECRET and VK_CONFIRMATION_CODE (the community's Manage → "
            "API usage → Callback API); without them tonebot uses long polling"
        )
    return VkCallbackReader(settings.group_id, settings.callback_secret, settings.confirmation_code)


async def run_polling(
    service: ConversationService,
    settings: VkSettings,
    outbox: Outbox | None = None,
    *,
    stop: asyncio.Event | None = None,
    limits: RateLimits | None = None,
) -> None:
    """Bots Long Poll until cancelled or until `stop` is set; with an outbox, operators' messages are
    delivered too. The HTTP session is closed when it ends."""
    await poll(make_gateway(service, settings, limits), settings, outbox, stop=stop)


async def poll(
    gateway: ChannelGateway,
    settings: VkSettings,
    outbox: Outbox | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Feed the gateway from Bots Long Poll until cancelled or `stop` is set, then close it."""
    outbound = gateway.outbound
    if not isinstance(outbound, VkOutbound):
        raise TypeError("a VK gateway sends through VkOutbound")
    longpoll = BotsLongPoll(outbound.api, settings.group_id)
    tasks = [asyncio.create_task(_listen(longpoll, gateway, outbound), name="vk long poll")]
    if outbox is not None:
        tasks.append(asyncio.create_task(gateway.deliver_outbox(outbox), name="vk outbox"))
    stopped = asyncio.create_task(stop.wait() if stop is not None else asyncio.Event().wait())
    try:
        done, _ = await asyncio.wait([tasks[0], stopped], return_when=asyncio.FIRST_COMPLETED)
        if tasks[0] in done:
            tasks[0].result()  # the long poll gave up (a wrong token): say why
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gateway.drain(), DRAIN_ON_STOP_S)
    finally:
        for task in [*tasks, stopped]:
            task.cancel()
        await asyncio.gather(*tasks, stopped, return_exceptions=True)
        await gateway.close()


async def _listen(longpoll: BotsLongPoll, gateway: ChannelGateway, outbound: VkOutbound) -> None:
    acknowledging: set[asyncio.Task[None]] = set()
    try:
        async for updates in longpoll.batches():
            await _dispatch(updates, gateway, outbound, acknowledging)
    except VKAPIError as exc:
        raise VkConfigError(
            f"VK refused the long poll (error {exc.code}: {exc.error_msg}): check VK_GROUP_TOKEN and "
            "VK_GROUP_ID, and that Long Poll API (version 5.199, with message events) is on in the "
            "community's Manage → API usage"
        ) from exc
    finally:
        for task in acknowledging:
            task.cancel()


async def _dispatch(
    updates: list[dict[str, Any]],
    gateway: ChannelGateway,
    outbound: VkOutbound,
    acknowledging: set[asyncio.Task[None]],
) -> None:
    for update in updates:
        peer = lacks_callback_buttons(update)
        if peer is not None:
            outbound.text_buttons.add(peer)
        change = permission_change(update)
        if change is not None:
            _permission(gateway, *change)
        inbound = read_update(update)
        if inbound is None:
            continue
        if inbound.callback_id:
            # Acknowledged beside the long poll, not before its next event: a burst of presses waits for
            # the calls' pace, and the other chats' messages should not wait with it.
            task = asyncio.create_task(gateway.answer_callback(inbound.callback_id))
            acknowledging.add(task)
            task.add_done_callback(acknowledging.discard)
        await gateway.submit(inbound.message)


def _permission(gateway: ChannelGateway, user_id: str, allowed: bool) -> None:
    log.info("VK user %s %s messages from the community", user_id, "allowed" if allowed else "denied")
    if allowed:
        # In a dialog with the community the peer is the user: the door is open again.
        gateway.not_allowed.discard(user_id)
    else:
        gateway.not_allowed.add(user_id)
