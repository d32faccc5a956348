"""/metrics over real HTTP (uvicorn on 127.0.0.1), read back by Prometheus' own text parser: turns,
messages, handoffs waiting from the database, content reload errors; open to this machine, a bearer
token for anyone else (a request that came through a proxy is not this machine's)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.channels.metrics_site import DEFAULT_METRICS_PORT, metrics_port, start_metrics_site
from common.messages import IncomingMessage
from common.metrics import REGISTRY, may_read
from tests.support.webserver import always_open, serving, web_runtime
from wiring.runtime import Runtime

START = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def runtime(tmp_path: Path, content_copy: Path, database_url: str) -> Runtime:
    return web_runtime(tmp_path, always_open(content_copy), database_url)


@pytest.fixture
def site(runtime: Runtime) -> Iterator[str]:
    with serving(runtime) as url:
        yield url


def scrape(url: str, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        assert family.name.startswith("tonebot_"), family.name
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_turns_messages_and_handoffs_are_counted(site: str, runtime: Runtime) -> None:
    before = scrape(site)
    lines = ["не работает интернет", "договор 7654321", "позовите оператора"]
    for number, line in enumerate(lines):
        runtime.service.handle(
            IncomingMessage("telegram", "m1", "m1", line, START + timedelta(seconds=number), f"x{number}")
        )
    after = scrape(site)
    turns = "tonebot_turn_seconds_count"
    assert value(after, turns, channel="telegram") - value(before, turns, channel="telegram") == 3
    inbound = "tonebot_messages_total"
    assert (
        value(after, inbound, channel="telegram", direction="in")
        - value(before, inbound, channel="telegram", direction="in")
        == 3
    )
    assert value(after, inbound, channel="telegram", direction="out") > value(
        before, inbound, channel="telegram", direction="out"
    )
    # Read from this test's database at scrape time: exactly the one handoff it made.
    waiting = sum(v for (name, _), v in after.items() if name == "tonebot_handoffs_waiting")
    assert waiting == 1
    assert ("tonebot_content_reload_errors_total", ()) in after


def test_a_broken_content_edit_is_counted(site: str, runtime: Runtime, content_copy: Path) -> None:
    before = value(scrape(site), "tonebot_content_reload_errors_total")
    guide = always_open(content_copy) / "guides" / "neutral.yaml"
    guide.write_text(guide.read_text(encoding="utf-8") + "\n  : [broken\n", encoding="utf-8")
    assert runtime.content.reload_if_changed() is False
    assert value(scrape(site), "tonebot_content_reload_errors_total") == before + 1


def test_other_addresses_need_the_token(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    proxied = httpx.get(f"{site}/metrics", headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10)
    assert proxied.status_code == 401 and "tonebot_" not in proxied.text
    monkeypatch.setenv("TONEBOT_METRICS_TOKEN", "s3cret-token")
    wrong = httpx.get(
        f"{site}/metrics",
        headers={"X-Forwarded-For": "203.0.113.7", "Authorization": "Bearer nope"},
        timeout=10,
    )
    assert wrong.status_code == 401
    assert scrape(site, **{"X-Forwarded-For": "203.0.113.7", "Authorization": "Bearer s3cret-token"})


@pytest.mark.parametrize(
    ("peer", "headers", "token", "allowed"),
    [
        ("127.0.0.1", {}, "", True),
        ("::1", {}, "", True),
        ("10.0.0.5", {}, "", False),
        ("10.0.0.5", {"authorization": "Bearer t"}, "", False),  # no token set: nobody from outside
        ("10.0.0.5", {"authorization": "Bearer t"}, "t", True),
        ("10.0.0.5", {"authorization": "bearer t"}, "t", True),
        ("10.0.0.5", {"authorization": "Basic t"}, "t", False),
        ("127.0.0.1", {"x-forwarded-for": "10.0.0.5"}, "", False),
    ],
)
def test_who_may_read(peer: str, headers: dict[str, str], token: str, allowed: bool) -> None:
    assert may_read(peer, headers, token) is allowed


@pytest.mark.anyio
async def test_messenger_processes_serve_metrics_on_their_own_site() -> None:
    """A polling process's own site (and every webhook app, which adds the same route)."""
    site = await start_metrics_site("127.0.0.1", 0)
    assert site is not None
    try:
        (port,) = {address[1] for address in site.addresses}
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
            proxied = await client.get(
                f"http://127.0.0.1:{port}/metrics", headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10
            )
        names = {family.name for family in text_string_to_metric_families(answer.text)}
        assert {"tonebot_turn_seconds", "tonebot_messages", "tonebot_send_retries"} <= names
        assert proxied.status_code == 401
    finally:
        await site.cleanup()


def test_the_metrics_port_setting() -> None:
    assert metrics_port({}) == DEFAULT_METRICS_PORT
    assert metrics_port({"TONEBOT_METRICS_PORT": "0"}) is None
    assert metrics_port({"TONEBOT_METRICS_PORT": "9100"}) == 9100
    with pytest.raises(ValueError, match="TONEBOT_METRICS_PORT"):
        metrics_port({"TONEBOT_METRICS_PORT": "ninety"})


def test_the_grafana_dashboard_asks_only_for_metrics_tonebot_serves() -> None:
    """Every query of the shipped dashboard names a metric tonebot exposes (a renamed metric fails here)."""
    shipped = Path(__file__).resolve().parent.parent / "grafana" / "tonebot-dashboard.json"
    dashboard = json.loads(shipped.read_text(encoding="utf-8"))
    served = {family.name for family in REGISTRY.collect()} | {
        "tonebot_handoffs_waiting",
        "tonebot_sla_breaches",
        "tonebot_outbox_backlog",
        "tonebot_campaign_queued",
    }
    asked = {
        re.sub(r"_(bucket|total|count|sum)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\btonebot_\w+", target["expr"])
    }
    assert asked and asked <= served, asked - served
