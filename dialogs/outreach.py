"""The engine's side of campaigns: the message a campaign writes first, and how a client's answer to it is
heard (its buttons, «СТОП», a short yes or no). Pure, like the engine: state in, replies and events out."""

from __future__ import annotations

import re

from common.messages import Button
from common.names import CampaignAction
from common.state import ConversationState
from dialogs.campaigns import STOP_HINT, Campaign, payload
from dialogs.content import Content
from dialogs.saying import Say

# Words that take a client off every campaign, whatever else the message says: the way out a marketing
# message promises («напишите СТОП») must work however it is written.
_STOP = re.compile(
    r"^\W*(?:стоп|stop|отписаться|отпишите(?:\s+меня)?|отписка|unsubscribe)\W*$"
    r"|\b(?:не\s+(?:пишите|присылайте|шлите)|хватит\s+(?:писать|присылать|слать|рассылок|спам\w*)"
    r"|уберите\s+меня\s+из\s+рассылк\w*|отпишите\s+меня|больше\s+не\s+(?:пишите|присылайте))\b",
    re.IGNORECASE,
)
# A short answer to a campaign's question, without buttons pressed: "да, интересно", "нет, не надо".
SHORT_ANSWER = 40


def is_stop(text: str) -> bool:
    """Whether a client's words ask to stop campaign messages («СТОП», «не пишите мне больше»)."""
    return bool(_STOP.search(text))


def campaign_message(content: Content, state: ConversationState, campaign: Campaign, step: int) -> Say:
    """The campaign's message at `step` in the client's tone, with its buttons and, for advertising, the
    way out; the state remembers the campaign, so the answer is heard as one."""
    say = Say(content, state, seed=f"campaign:{campaign.id}:{step}:{state.turns}")
    say(campaign.moment(step), company=content.scenarios.company.name)
    if campaign.advertising:
        say(STOP_HINT)
    buttons = [Button(button.text(), payload(campaign.id, button.action)) for button in campaign.buttons()]
    if buttons:
        say.buttons(*buttons)
    state.campaign, state.campaign_answered = campaign.id, False
    return say


def typed_action(campaign: Campaign | None, text: str, yes: bool, no: bool) -> str | None:
    """The button a short typed answer stands for: a yes is the campaign's first offer (call-back or
    interest), a no is "not now"; None when the words are the client's own and go through the usual layers."""
    if is_stop(text):
        return CampaignAction.STOP
    if campaign is None or len(text) > SHORT_ANSWER or yes == no:
        return None
    actions = [button.action for button in campaign.buttons()]
    if yes:
        offers = [a for a in actions if a in (CampaignAction.INTERESTED, CampaignAction.CALLBACK)]
        return offers[0] if offers else None
    return CampaignAction.LATER
