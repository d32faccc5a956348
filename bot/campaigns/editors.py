"""`tonebot campaigns lint` and `preview`: what a campaign's editors check before it goes out."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from bot.campaigns.audience import AudienceError, read_csv
from common.state import ConversationState
from common.yamlfile import ContentError
from dialogs.campaigns import CAMPAIGN_CHANNELS, Campaign
from dialogs.content import Content, LiveContent, load_content
from dialogs.engine import Engine

PERSONAS = ("unsure", "talker", "positive", "aggressor", "sysadmin", "neutral")


def lint(directory: Path, out: TextIO) -> int:
    """Load the content; print each campaign, or every problem as file:line (exit 1)."""
    try:
        content = load_content(directory)
    except ContentError as exc:
        for issue in exc.issues:
            print(issue, file=out)
        print(f"{len(exc.issues)} problem(s); nothing else was checked", file=out)
        return 1
    problems: list[str] = []
    campaigns = sorted(content.campaigns.campaigns.values(), key=lambda c: c.id)
    if not campaigns:
        print(f"no campaigns in {directory} (add campaigns/*.yaml)", file=out)
    for campaign in campaigns:
        problems += describe(campaign, content, out)
    for problem in problems:
        print(problem, file=out)
    return 1 if problems else 0


def describe(campaign: Campaign, content: Content, out: TextIO) -> list[str]:
    """Print one campaign as its editors read it; the problems of its CSV audience."""
    spec = campaign.spec
    print(f"{spec.id} — {spec.title} ({spec.purpose}; {campaign.path})", file=out)
    line, problems = _audience(campaign)
    print(f"  audience:  {line}", file=out)
    print(f"  message:   {_moment(spec.message, content)}", file=out)
    if spec.follow_up is not None and spec.follow_up.max:
        follow = spec.follow_up
        print(
            f"  follow-up: {_moment(follow.moment, content)}, {follow.after_hours:g} h after the previous "
            f"message without an answer, at most {follow.max}",
            file=out,
        )
    print(f"  buttons:   {' '.join(f'[{b.text()}]' for b in campaign.buttons()) or 'none'}", file=out)
    hours = spec.hours
    zone = spec.time_zone or content.scenarios.company.timezone
    quiet = f", quiet {hours.quiet}" if hours.quiet else ""
    print(f"  hours:     {hours.business}{quiet}, {hours.days} (the client's zone, else {zone})", file=out)
    rates = ", ".join(f"{channel} {campaign.rate(channel):g}/s" for channel in CAMPAIGN_CHANNELS)
    print(f"  rate:      {rates}", file=out)
    return problems


def _audience(campaign: Campaign) -> tuple[str, list[str]]:
    """Who the campaign writes to, in a line; the mistakes of its CSV file."""
    audience = campaign.spec.audience
    if campaign.csv_path is not None:
        try:
            rows = read_csv(campaign.csv_path)
        except AudienceError as exc:
            return f"CSV {audience.csv}: {len(exc.issues)} mistake(s), listed below", exc.issues
        channels = ", ".join(
            f"{ch} {sum(r.channel == ch for r in rows)}" for ch in dict.fromkeys(r.channel for r in rows)
        )
        consenting = sum(bool(r.consent) for r in rows)
        return f"CSV {audience.csv}, {len(rows)} rows ({channels or 'none'}; consent {consenting})", []
    if audience.query is not None:
        query = audience.query
        filters = [f"channels {', '.join(query.channels)}"]
        filters += [f"served {', '.join(query.scenarios)}"] if query.scenarios else []
        filters += [f"gave {', '.join(query.details)}"] if query.details else []
        filters += [f"persona {', '.join(query.personas)}"] if query.personas else []
        if query.active_within_days:
            filters.append(f"wrote within {query.active_within_days} days")
        return f"known clients: {'; '.join(filters)}", []
    return f"one by one, from POST /api/events of kind {campaign.spec.trigger}", []


def _moment(moment: str, content: Content) -> str:
    """The moment, and which personas have phrasings of their own for it."""
    guides = content.guides.guides
    own = [p for p in PERSONAS[:-1] if (guide := guides.get(p)) is not None and moment in guide.moments]
    if len(own) == len(PERSONAS) - 1:
        return f"{moment} (every persona has its own phrasing)"
    return f"{moment} (own phrasing: {', '.join(own) or 'none'}; neutral's for the rest)"


def preview(directory: Path, name: str, persona: str | None, out: TextIO) -> int:
    """Print the campaign's message and follow-ups as each persona (or one) would read them."""
    live = LiveContent(directory)
    try:
        campaign = live.get().campaigns.get(name)
        if campaign is None:
            known = ", ".join(sorted(live.get().campaigns.campaigns)) or "none"
            print(f"tonebot: there is no campaign {name!r}; known: {known}", file=out)
            return 2
        engine = Engine(live)
        after = campaign.follow_up_after()
        for who in [persona] if persona else list(PERSONAS):
            print(f"— {who}", file=out)
            state = ConversationState(persona=who)
            for step in range(campaign.steps()):
                turn = engine.reach_out(state, name, step)
                hours = f", {after.total_seconds() / 3600:g} h later without an answer" if after else ""
                print(f"  {'message' if step == 0 else f'follow-up {step}{hours}'}:", file=out)
                for reply in turn.replies if turn else []:
                    print(f"    {reply.text}", file=out)
                    if reply.buttons:
                        print("    " + " ".join(f"[{button.text}]" for button in reply.buttons), file=out)
        return 0
    finally:
        live.close()
