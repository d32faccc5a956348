"""Conversations started in a scope, in one GROUP BY over them: by persona, by the request the bot served
last, and whether people were ever asked to answer; and the tasks set up for each request.

The request served last is the `last_scenario` of the stored state: the one thing every conversation that
reached a request records, whether the bot answered it alone or people did (tasks and handoffs record
only some of them).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, case, cast, exists, false, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from storage.analytics.results import PersonaLine, ScenarioLine
from storage.analytics.scope import Scope, kept, own
from storage.tables import conversations, handoffs, tasks

_KEY = '"last_scenario":'


@dataclass(frozen=True, slots=True)
class Mix:
    """The conversations of a scope: how many, how many went to people, by persona and by request."""

    conversations: int
    handed_off: int
    personas: list[PersonaLine]
    scenarios: list[ScenarioLine]


def last_scenario(connection: Connection) -> ColumnElement[str]:
    """The request a conversation's state says the bot served last ("" for none).

    SQLite reads it with json_extract. PostgreSQL would parse each state into jsonb first (a year of
    states took 1.4 s); the state is written compact by orjson (common/state.py), so the key's value is
    cut out of the text instead, which is exact for valid JSON: inside a string a quote is escaped, so
    `"last_scenario":"` can only be the key itself."""
    state = conversations.c.state_json
    if connection.dialect.name == "sqlite":
        found: ColumnElement[Any] = cast(func.json_extract(state, "$.last_scenario"), Text)
        return func.coalesce(found, "")
    value = func.split_part(func.split_part(state, _KEY + '"', 2), '"', 1)
    # `"last_scenario":null` (or a state without the key) reads as no request.
    return case((func.strpos(state, _KEY + '"') > 0, value), else_="")


def mix(connection: Connection, scope: Scope) -> Mix:
    """The scope's conversations by persona and by request (persona lines without ratings yet: see
    `with_ratings`)."""
    sqlite = connection.dialect.name == "sqlite"
    scenario = last_scenario(connection).label("scenario")
    handed = exists(select(handoffs.c.id).where(handoffs.c.conversation_id == conversations.c.id))
    flag = case((handed, 1), else_=0).label("handed")
    rows = connection.execute(
        select(conversations.c.persona, scenario, flag, func.count())
        .where(*started_in(connection, scope), *own(scope, sqlite=sqlite))
        .group_by(conversations.c.persona, scenario, flag)
    ).all()
    by_persona: dict[str, Counter[str]] = {}
    by_scenario: dict[str, Counter[str]] = {}
    for persona, name, handed_off, count in rows:
        for key, table in ((str(persona), by_persona), (str(name or ""), by_scenario)):
            counts = table.setdefault(key, Counter())
            counts["conversations"] += int(count)
            counts["handed_off"] += int(count) if handed_off else 0
    set_up = _tasks_by_scenario(connection, scope)
    for name in set_up:
        by_scenario.setdefault(name, Counter())
    personas = [PersonaLine(name, c["conversations"], c["handed_off"]) for name, c in by_persona.items()]
    scenarios = [
        ScenarioLine(name, c["conversations"], c["handed_off"], set_up.get(name, 0))
        for name, c in by_scenario.items()
    ]
    return Mix(
        conversations=sum(line.conversations for line in personas),
        handed_off=sum(line.handed_off for line in personas),
        personas=personas,
        scenarios=sorted(scenarios, key=lambda line: (-line.conversations, -line.tasks, line.scenario)),
    )


def with_ratings(personas: list[PersonaLine], ratings: dict[str, tuple[int, int]]) -> list[PersonaLine]:
    """Persona lines with the ratings of their handoffs (persona → rated, sum of ratings); a persona rated
    without conversations started in the period gets a line too. The most frequent first."""
    lines = {line.persona: line for line in personas}
    for name in ratings:
        lines.setdefault(name, PersonaLine(name))
    rated = [
        PersonaLine(line.persona, line.conversations, line.handed_off, *ratings.get(line.persona, (0, 0)))
        for line in lines.values()
    ]
    return sorted(rated, key=lambda line: (-line.conversations, -line.rated, line.persona))


def started_in(connection: Connection, scope: Scope) -> list[ColumnElement[bool]]:
    """Conversations started in the scope's days, for a query that reads their rows (a persona, a state).

    Ids grow as conversations start, so the rows lie in one range of ids, found from the time index
    first. On SQLite the rows are then read along that range: found one by one through the time index
    they are scattered over the file (a state is 1-3 KB, a row or two a page), and a year of them took
    half a second more. The times are still checked (a message stamped a little late can start a
    conversation after one with a higher id), but without their index (the unary plus)."""
    within = [conversations.c.created_at >= scope.start, conversations.c.created_at < scope.stop]
    lowest, highest = connection.execute(
        select(func.min(conversations.c.id), func.max(conversations.c.id)).where(*within)
    ).one()
    if lowest is None:
        return [false()]
    if connection.dialect.name != "sqlite":
        return [*within, conversations.c.id.between(lowest, highest)]
    unindexed = UnaryExpression(
        conversations.c.created_at, operator=custom_op("+"), type_=conversations.c.created_at.type
    )
    return [conversations.c.id.between(lowest, highest), unindexed >= scope.start, unindexed < scope.stop]


def _tasks_by_scenario(connection: Connection, scope: Scope) -> dict[str, int]:
    """Tasks set up for a request in the scope's days (a task's category narrows like a handoff's)."""
    sqlite = connection.dialect.name == "sqlite"
    conditions = [
        tasks.c.created_at >= scope.start,
        tasks.c.created_at < scope.stop,
        tasks.c.scenario_id != "",
    ]
    narrowed = Scope(scope.days, scope.channel)
    conditions += kept(narrowed, tasks.c.conversation_id, sqlite=sqlite)
    if scope.categories is not None:
        conditions.append(tasks.c.category.in_(scope.categories))
    rows = connection.execute(
        select(tasks.c.scenario_id, func.count()).where(and_(*conditions)).group_by(tasks.c.scenario_id)
    )
    return {str(name): int(count) for name, count in rows}
