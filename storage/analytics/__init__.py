"""Analytics for those who run support: counts by day, handoffs and first replies, ratings, personas,
requests and what the bot did not understand, over a period of local days, a channel and categories;
and one line per conversation for an export. Reads only, aggregated in SQL over time indexes (see
storage/models.py and migration 0008)."""

from storage.analytics.export import ExportLine
from storage.analytics.results import (
    RATINGS,
    Dashboard,
    DayCounts,
    PersonaLine,
    ResponseTimes,
    ScenarioLine,
    nearest_rank,
    share,
)
from storage.analytics.scope import Day, Scope
from storage.analytics.store import Analytics, SqlAnalytics

__all__ = [
    "RATINGS",
    "Analytics",
    "Dashboard",
    "Day",
    "DayCounts",
    "ExportLine",
    "PersonaLine",
    "ResponseTimes",
    "ScenarioLine",
    "Scope",
    "SqlAnalytics",
    "nearest_rank",
    "share",
]
