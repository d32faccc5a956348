"""Shared fixtures: the shipped content, an engine, and a way to run a scripted dialog."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from common.messages import AttachmentKind, IncomingMessage
from common.state import ConversationState
from dialogs.content import DEFAULT_CONTENT_DIR, LiveContent, copy_content
from dialogs.engine import Engine, Turn
from storage.database import sqlite_url
from tests.support.botapi import BotApiStandin
from tests.support.databases import fresh_postgres

START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def live_content() -> LiveContent:
    return LiveContent(DEFAULT_CONTENT_DIR)


@pytest.fixture(scope="session")
def engine(live_content: LiveContent) -> Engine:
    return Engine(live_content)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test against a real SQLite file and a fresh database on the real PostgreSQL server."""
    if request.param == "sqlite":
        yield sqlite_url(str(tmp_path / "test.db"))
    else:
        with fresh_postgres() as url:
            yield url


@pytest.fixture
def content_copy(tmp_path: Path) -> Iterator[Path]:
    """A private copy of the shipped content that a test may edit: the provider's directory, beside the
    shared layer it extends (`content_copy.parent / "common"`)."""
    yield copy_content(tmp_path / "content")


@dataclass
class Dialog:
    """A conversation driven message by message through the engine."""

    engine: Engine
    state: ConversationState = field(default_factory=ConversationState)
    turns: list[Turn] = field(default_factory=list)
    clock: datetime = START

    def send(
        self,
        text: str = "",
        *,
        payload: str | None = None,
        attachment: AttachmentKind | None = None,
        contact_phone: str | None = None,
        after: float = 30,
    ) -> Turn:
        self.clock += timedelta(seconds=after)
        message = IncomingMessage(
            channel="test",
            chat_id="chat",
            user_id="user",
            text=text,
            at=self.clock,
            message_id=str(len(self.turns)),
            attachment=attachment,
            contact_phone=contact_phone,
            button_payload=payload,
        )
        turn = self.engine.handle(self.state, message)
        self.turns.append(turn)
        return turn

    @property
    def last_text(self) -> str:
        return " ".join(reply.text for reply in self.turns[-1].replies)

    @property
    def all_bot_text(self) -> list[str]:
        return [reply.text for turn in self.turns for reply in turn.replies]


@pytest.fixture
def dialog(engine: Engine) -> Dialog:
    return Dialog(engine)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio: aiogram and the Bot API stand-in are built on aiohttp."""
    return "asyncio"


@pytest.fixture
async def api() -> AsyncIterator[BotApiStandin]:
    """A Bot API stand-in served on 127.0.0.1 for the length of one test."""
    async with BotApiStandin() as standin:
        yield standin
