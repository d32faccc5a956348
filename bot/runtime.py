"""Wiring: content, engine, storage and service built from settings."""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import Settings
from dialogs.content import LiveContent
from dialogs.engine import Engine
from dialogs.service import ConversationService
from storage import SqlStore, connect


@dataclass(slots=True)
class Runtime:
    """Everything a running bot holds."""

    content: LiveContent
    engine: Engine
    store: SqlStore
    service: ConversationService


def build_runtime(settings: Settings) -> Runtime:
    """Load content (ContentError if broken), open the database, wire the service."""
    content = LiveContent(settings.content_dir)
    engine = Engine(content)
    store = SqlStore(connect(settings.database_url))
    return Runtime(content, engine, store, ConversationService(engine, store))
