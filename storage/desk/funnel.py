"""Campaigns' funnels in SQL: recipients counted by the furthest step they reached, by persona and by
channel, in one GROUP BY query per page; and the recipients behind any count.

A recipient counts in every step up to its status ("reached at least"). One that ended (failed, not
allowed, opted out) counts in the steps whose moments it has: an opt-out after a reply was sent and replied.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal_column, select
from sqlalchemy.sql import Select

from common.names import FUNNEL_ENDS, FUNNEL_STEPS, FunnelStatus, funnel_rank
from storage.desk.base import CampaignFunnel, CampaignSummary, FunnelCounts, RecipientLine
from storage.desk.sql import SqlPart
from storage.tables import as_utc, campaigns, clients, recipients

# The moment column of each step and of the ends.
_MOMENTS: dict[str, str] = {str(step): f"{step}_at" for step in FUNNEL_STEPS}
_ENDED = "ended"


def _text(value: str) -> ColumnElement[str]:
    """A status as an SQL literal, inline (the callers group by the expression's result, in a subquery)."""
    return literal_column(f"'{FunnelStatus(value)}'")


def furthest() -> ColumnElement[str]:
    """The furthest step a recipient reached: its status while in the funnel, else the latest step whose
    moment it has."""
    whens: list[tuple[ColumnElement[bool], ColumnElement[str]]] = [
        (recipients.c.status.in_([str(step) for step in FUNNEL_STEPS]), recipients.c.status)
    ]
    for step in reversed(FUNNEL_STEPS[1:]):
        whens.append((recipients.c[_MOMENTS[step]].is_not(None), _text(step)))
    return case(*whens, else_=_text(FunnelStatus.QUEUED))


def empty_counts() -> FunnelCounts:
    """A slice with nobody in it."""
    return FunnelCounts(
        reached=dict.fromkeys(FUNNEL_STEPS, 0), ends=dict.fromkeys(FUNNEL_ENDS, 0), reasons={}
    )


def add(counts: FunnelCounts, reached: str, status: str, reason: str, number: int) -> None:
    """Count `number` recipients whose furthest step is `reached` and whose status is `status`."""
    rank = funnel_rank(reached)
    for step in FUNNEL_STEPS[: rank + 1]:
        counts.reached[step] += number
    if status in FUNNEL_ENDS:
        counts.ends[status] += number
        counts.reasons[status, reason] = counts.reasons.get((status, reason), 0) + number


def conversion(counts: FunnelCounts, step: str) -> float | None:
    """The share (%) of the previous step's recipients that reached this one; None for the first step or
    an empty previous one."""
    index = FUNNEL_STEPS.index(FunnelStatus(step))
    if index == 0:
        return None
    before = counts.reached[FUNNEL_STEPS[index - 1]]
    return None if before == 0 else 100.0 * counts.reached[step] / before


class SqlFunnel(SqlPart):
    """Campaigns' funnels (the Funnel interface)."""

    def campaign_summaries(self) -> list[CampaignSummary]:
        """Every campaign that has recipients, by id, with its funnel's counts."""
        inner = select(
            recipients.c.campaign, furthest().label("reached"), recipients.c.status, recipients.c.reason
        ).subquery()
        query = select(
            inner.c.campaign, inner.c.reached, inner.c.status, inner.c.reason, func.count()
        ).group_by(inner.c.campaign, inner.c.reached, inner.c.status, inner.c.reason)
        with self.engine.connect() as connection:
            rows = list(connection.execute(query))
            started = {
                str(row.id): (str(row.state), as_utc(row.started_at))
                for row in connection.execute(
                    select(campaigns.c.id, campaigns.c.state, campaigns.c.started_at)
                )
            }
        counts: dict[str, FunnelCounts] = {}
        for campaign, reached, status, reason, number in rows:
            add(counts.setdefault(str(campaign), empty_counts()), reached, status, reason, int(number))
        return [
            CampaignSummary(name, *started.get(name, ("", None)), counts=counts[name])
            for name in sorted(counts)
        ]

    def funnel(self, campaign: str) -> CampaignFunnel | None:
        """A campaign's funnel overall, by persona and by channel, from one GROUP BY query; None when it has
        no recipients."""
        inner = (
            select(
                furthest().label("reached"),
                recipients.c.status,
                recipients.c.reason,
                recipients.c.persona,
                recipients.c.channel,
            )
            .where(recipients.c.campaign == campaign)
            .subquery()
        )
        columns = (inner.c.reached, inner.c.status, inner.c.reason, inner.c.persona, inner.c.channel)
        with self.engine.connect() as connection:
            rows = list(connection.execute(select(*columns, func.count()).group_by(*columns)))
        if not rows:
            return None
        overall = empty_counts()
        by_persona: dict[str, FunnelCounts] = {}
        by_channel: dict[str, FunnelCounts] = {}
        for reached, status, reason, persona, channel, number in rows:
            for counts in (
                overall,
                by_persona.setdefault(str(persona), empty_counts()),
                by_channel.setdefault(str(channel), empty_counts()),
            ):
                add(counts, reached, status, reason, int(number))
        return CampaignFunnel(campaign, overall, _by_size(by_persona), _by_size(by_channel))

    def recipients(
        self,
        campaign: str,
        step: str = "",
        persona: str = "",
        channel: str = "",
        reason: str = "",
        limit: int = 500,
    ) -> tuple[list[RecipientLine], int]:
        """Recipients who reached at least `step` (or ended there, for an end: of that `reason` when
        given), of a persona and channel when given, in the order they were queued (at most `limit`); and
        how many match in all. ValueError for a step that is none."""
        query = _matching(select(recipients.c.id), campaign, step, persona, channel, reason)
        listed = (
            _matching(
                select(recipients, clients.c.display_name.label("client_name")).outerjoin(
                    clients, clients.c.id == recipients.c.client_id
                ),
                campaign,
                step,
                persona,
                channel,
                reason,
            )
            .order_by(recipients.c.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            total = int(connection.execute(select(func.count()).select_from(query.subquery())).scalar_one())
            rows = list(connection.execute(listed))
        return [_line(row) for row in rows], total


def _matching(
    query: Select[Any], campaign: str, step: str, persona: str, channel: str, reason: str
) -> Select[Any]:
    query = query.where(recipients.c.campaign == campaign)
    if step in FUNNEL_ENDS:
        query = query.where(recipients.c.status == step)
        if reason:
            query = query.where(recipients.c.reason == reason)
    elif step:
        later = [s for s in FUNNEL_STEPS if funnel_rank(s) >= funnel_rank(step)]
        query = query.where(furthest().in_([str(s) for s in later]))
    if persona:
        query = query.where(recipients.c.persona == persona)
    if channel:
        query = query.where(recipients.c.channel == channel)
    return query


def _by_size(slices: dict[str, FunnelCounts]) -> dict[str, FunnelCounts]:
    """The largest slice first, then by name."""
    return dict(sorted(slices.items(), key=lambda item: (-item[1].total, item[0])))


def _moments(row: Any, names: Iterable[str]) -> dict[str, datetime]:
    found = {}
    for name in names:
        moment = as_utc(getattr(row, _MOMENTS.get(name, f"{name}_at")))
        if moment is not None:
            found[name] = moment
    return found


def _line(row: Any) -> RecipientLine:
    return RecipientLine(
        id=int(row.id),
        client_id=None if row.client_id is None else int(row.client_id),
        client_name=str(row.client_name or (f"#{row.client_id}" if row.client_id is not None else "")),
        channel=str(row.channel),
        chat_id=str(row.chat_id),
        conversation_id=None if row.conversation_id is None else int(row.conversation_id),
        persona=str(row.persona),
        status=str(row.status),
        reason=str(row.reason or ""),
        steps_sent=int(row.steps_sent),
        moments=_moments(row, [*FUNNEL_STEPS, _ENDED]),
    )
