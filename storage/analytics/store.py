"""The analytics of support over one database: the dashboard, and the export's lines."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Protocol, TypeVar

from sqlalchemy.engine import Connection, Engine

from storage.analytics.conversations import mix, with_ratings
from storage.analytics.daily import day_counts, misunderstood_reasons
from storage.analytics.export import ExportLine, export_lines
from storage.analytics.handoffs import handoff_figures
from storage.analytics.results import Dashboard
from storage.analytics.scope import Scope
from storage.database import reader

T = TypeVar("T")


class Analytics(Protocol):
    """What the analytics pages ask of storage."""

    def dashboard(self, scope: Scope, now: datetime) -> Dashboard:
        """Every figure of the dashboard for a scope (`now` decides which waiting handoffs are late)."""
        ...

    def export(self, scope: Scope, now: datetime) -> Iterator[ExportLine]:
        """One line per conversation started in the scope, in the order they started."""
        ...


class SqlAnalytics:
    """Analytics in SQL (SQLite or PostgreSQL); reads only."""

    def __init__(self, engine: Engine) -> None:
        # Reads of up to a second must not hold SQLite's write lock: the bot writes meanwhile.
        self.engine = reader(engine)

    def dashboard(self, scope: Scope, now: datetime) -> Dashboard:
        """Every figure of the dashboard. The conversations' states are read on a thread of their own
        meanwhile (the longest read: a year of states is about 100 MB), in a connection of its own."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tonebot-analytics") as pool:
            mixed = pool.submit(self._read, lambda connection: mix(connection, scope))
            handed, days, missed = self._read(
                lambda connection: (
                    handoff_figures(connection, scope, now),
                    day_counts(connection, scope),
                    misunderstood_reasons(connection, scope),
                )
            )
            conversations = mixed.result()
        return Dashboard(
            scope=scope,
            days=days,
            conversations=conversations.conversations,
            handed_off=conversations.handed_off,
            handoffs=handed.handoffs,
            reasons=handed.reasons,
            response=handed.response,
            ratings=handed.ratings,
            follow_ups_due=handed.follow_ups_due,
            follow_up_tasks=handed.follow_up_tasks,
            follow_ups_done=handed.follow_ups_done,
            personas=with_ratings(conversations.personas, handed.ratings_by_persona),
            scenarios=conversations.scenarios,
            misunderstood=missed,
        )

    def _read(self, reading: Callable[[Connection], T]) -> T:
        """One read in a connection of its own."""
        with self.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                # The planner's estimates for a year of days call for JIT compilation, which took longer
                # than the queries themselves (0.11 s of 0.26 s): off, for this read only.
                connection.exec_driver_sql("SET LOCAL jit = off")
            return reading(connection)

    def export(self, scope: Scope, now: datetime) -> Iterator[ExportLine]:
        """One line per conversation started in the scope, read in batches."""
        return export_lines(self.engine, scope, now)
