"""Figures /metrics reads from the database when Prometheus scrapes: handoffs waiting for people, SLA
breaches, the outbox backlog and campaign recipients waiting to be sent. One collector per process; the
serving process points it at its database."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from common.metrics import REGISTRY
from common.names import Delivery, FunnelStatus, HandoffStatus
from storage.tables import conversations, handoffs, messages, recipients

log = logging.getLogger(__name__)


class DatabaseFigures(Collector):
    """Reads the figures at scrape time; a database that does not answer gives no figures, not an error."""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def collect(self) -> Iterator[Metric]:
        """The figures, each a few indexed counts."""
        if self.engine is None:
            return
        try:
            with self.engine.connect() as connection:
                waiting = connection.execute(
                    select(handoffs.c.category, func.count())
                    .where(handoffs.c.status == HandoffStatus.WAITING)
                    .group_by(handoffs.c.category)
                ).all()
                breaches = connection.execute(
                    select(handoffs.c.category, func.count())
                    .where(handoffs.c.breached_at.is_not(None))
                    .group_by(handoffs.c.category)
                ).all()
                backlog = connection.execute(
                    select(conversations.c.channel, func.count())
                    .select_from(
                        messages.join(conversations, conversations.c.id == messages.c.conversation_id)
                    )
                    .where(messages.c.delivery.in_((Delivery.PENDING, Delivery.SENDING)))
                    .group_by(conversations.c.channel)
                ).all()
                queued = connection.execute(
                    select(recipients.c.channel, func.count())
                    .where(recipients.c.status == FunnelStatus.QUEUED)
                    .group_by(recipients.c.channel)
                ).all()
        except Exception:
            log.exception("reading the figures for /metrics failed")
            return
        yield _gauge(
            "tonebot_handoffs_waiting",
            "Conversations handed to people and not yet taken.",
            "category",
            waiting,
        )
        counter = CounterMetricFamily(
            "tonebot_sla_breaches",
            "Handoffs whose first human answer came later than the target.",
            labels=["category"],
        )
        for category, count in breaches:
            counter.add_metric([str(category)], float(count))
        yield counter
        yield _gauge(
            "tonebot_outbox_backlog", "Messages waiting in the outbox for a messenger.", "channel", backlog
        )
        yield _gauge(
            "tonebot_campaign_queued",
            "Campaign recipients waiting for their first message.",
            "channel",
            queued,
        )

    def describe(self) -> Iterator[Metric]:
        """Nothing up front: the figures exist once a database is watched."""
        return iter(())


def _gauge(name: str, documentation: str, label: str, rows: Sequence[Any]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in rows:
        gauge.add_metric([str(value)], float(count))
    return gauge


FIGURES = DatabaseFigures()
REGISTRY.register(FIGURES)


def watch_database(engine: Engine) -> None:
    """Let /metrics read this database's figures (the process's serving database)."""
    FIGURES.engine = engine
