"""Jinja2 pages with autoescaping on everything: client text is untrusted wherever it is shown."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from common.channels import source_title, title
from common.names import (
    ACTIVE_HANDOFF_STATUSES,
    Author,
    Channel,
    ConversationStatus,
    Delivery,
    Direction,
    HandoffStatus,
    OperatorRole,
    Priority,
    ReceiptStatus,
)
from operators.desk import may_see_campaigns

TEMPLATES = Path(__file__).resolve().parent / "templates"


class Pages:
    """Renders the console's and the web chat's templates, times shown in the company's zone."""

    def __init__(self, timezone: str = "UTC") -> None:
        self.zone = ZoneInfo(timezone)
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined, auto_reload=False
        )
        self.env.filters["clock"] = self._clock
        self.env.filters["stamp"] = self._stamp
        self.env.filters["iso"] = _iso
        # Channel names and who vouched for an identity, as operators read them («ВКонтакте»).
        self.env.filters["channel"] = title
        self.env.filters["source"] = source_title
        # Templates compare stored values with these names, never with strings of their own.
        self.env.globals.update(
            ACTIVE_HANDOFF_STATUSES=ACTIVE_HANDOFF_STATUSES,
            Author=Author,
            Channel=Channel,
            ConversationStatus=ConversationStatus,
            Delivery=Delivery,
            Direction=Direction,
            HandoffStatus=HandoffStatus,
            OperatorRole=OperatorRole,
            Priority=Priority,
            ReceiptStatus=ReceiptStatus,
            may_see_campaigns=may_see_campaigns,
        )

    def _local(self, moment: datetime) -> datetime:
        aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        return aware.astimezone(self.zone)

    def _clock(self, moment: datetime | None) -> str:
        return self._local(moment).strftime("%H:%M") if moment else ""

    def _stamp(self, moment: datetime | None) -> str:
        return self._local(moment).strftime("%d.%m %H:%M") if moment else ""

    def render(
        self,
        request: Request,
        name: str,
        context: dict[str, Any],
        status: int = 200,
        *,
        embeddable: bool = False,
    ) -> HTMLResponse:
        """An HTML response; `embeddable` pages may be framed by other sites (the web chat)."""
        html = self.env.get_template(name).render(request=request, **context)
        headers = dict(SECURITY_HEADERS)
        if embeddable:
            headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
                "frame-ancestors 'self'", "frame-ancestors *"
            )
        return HTMLResponse(html, status_code=status, headers=headers)


def _iso(moment: datetime | None) -> str:
    if moment is None:
        return ""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return aware.isoformat()


# Scripts and styles come only from our own files: injected markup could not run even if it slipped out.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
