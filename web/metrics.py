"""`/metrics` for Prometheus: open to this machine, other addresses need the bearer token."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from common.metrics import CONTENT_TYPE, exposition, may_read, metrics_token

router = APIRouter()


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Every tonebot_ metric of this process, in the Prometheus text format."""
    peer = request.client.host if request.client else None
    headers = {name.lower(): value for name, value in request.headers.items()}
    if not may_read(peer, headers, metrics_token(os.environ)):
        return PlainTextResponse(
            "metrics need a bearer token (TONEBOT_METRICS_TOKEN)",
            status_code=401,
            headers={"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"},
        )
    return Response(exposition(), media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})
