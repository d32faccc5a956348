"""A campaign's audience as chats to write to: the rows of its CSV file, or its query over known clients."""

from __future__ import annotations

import csv
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dialogs.campaigns import CAMPAIGN_CHANNELS, Campaign
from storage.campaigns import CampaignStore, Target

YES = frozenset({"yes", "true", "1", "да", "y"})
NO = frozenset({"no", "false", "0", "нет", "n", ""})
REQUIRED = ("channel", "chat_id")


class AudienceError(Exception):
    """A CSV audience that cannot be read; `issues` are `file:line: what is wrong`."""

    def __init__(self, issues: list[str]) -> None:
        super().__init__("\n".join(issues))
        self.issues = issues


def targets(
    campaign: Campaign, store: CampaignStore, now: datetime, channels: Collection[str] | None = None
) -> list[Target]:
    """The chats the campaign writes to (none for a triggered one: events bring them one by one),
    in `channels` only when given. AudienceError for a CSV file with mistakes."""
    audience = campaign.spec.audience
    if campaign.csv_path is not None:
        found = read_csv(campaign.csv_path)
    elif audience.query is not None:
        query = audience.query
        found = store.audience(
            now,
            channels=[str(channel) for channel in query.channels],
            scenarios=query.scenarios,
            detail_names=query.details,
            personas=query.personas,
            active_within_days=query.active_within_days,
        )
    else:
        found = []
    return [t for t in found if channels is None or t.channel in channels]


def read_csv(path: Path) -> list[Target]:
    """The rows of a CSV audience (columns channel, chat_id and optional name, time_zone, consent); consent
    "yes" or "true" is recorded as given by the file (`csv:<file name>`)."""
    issues: list[str] = []
    found: list[Target] = []
    known = {str(channel) for channel in CAMPAIGN_CHANNELS}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [name for name in REQUIRED if name not in (reader.fieldnames or [])]
        if missing:
            raise AudienceError([f"{path}:1: the header needs the columns {', '.join(REQUIRED)}"])
        for row in reader:
            where = f"{path}:{reader.line_num}"
            channel = (row.get("channel") or "").strip().lower()
            chat_id = (row.get("chat_id") or "").strip()
            zone = (row.get("time_zone") or "").strip()
            consent = (row.get("consent") or "").strip().lower()
            if channel not in known:
                issues.append(
                    f"{where}: unknown channel {channel!r}; campaigns write in {', '.join(sorted(known))}"
                )
            if not chat_id:
                issues.append(f"{where}: chat_id is empty")
            if zone and not _known_zone(zone):
                issues.append(f"{where}: unknown time zone {zone!r} (e.g. Europe/Moscow)")
            if consent not in YES | NO:
                issues.append(f"{where}: consent is {consent!r}; write yes or no")
            given = True if consent in YES else (False if consent else None)
            found.append(Target(channel, chat_id, zone, given, f"csv:{path.name}"))
    if issues:
        raise AudienceError(issues)
    return found


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (KeyError, ValueError):
        return False
    return True
