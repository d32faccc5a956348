"""Wiring: content, engine, storage, the conversation service and the operators' desk built from settings."""

from __future__ import annotations

from dataclasses import dataclass

from bot.settings import Settings
from dialogs.content import LiveContent
from dialogs.engine import Engine
from dialogs.service import ConversationService
from operators.desk import OperatorDesk
from storage import SqlStore, connect
from storage.desk import DeskStore
from storage.locks import chat_locks_for
from storage.privacy import ClientData


@dataclass(slots=True)
class Runtime:
    """Everything a running bot holds."""

    content: LiveContent
    engine: Engine
    store: SqlStore
    service: ConversationService
    desk_store: DeskStore
    desk: OperatorDesk
    client_data: ClientData
    retention_days: int = 0


def build_runtime(settings: Settings) -> Runtime:
    """Load content (ContentError if broken), open the database, wire the service and the desk."""
    content = LiveContent(settings.content_dir)
    engine = Engine(content)
    store = SqlStore(connect(settings.database_url))
    locks = chat_locks_for(store.engine)
    service = ConversationService(engine, store, locks)
    desk_store = DeskStore(store)
    desk = OperatorDesk(engine, desk_store, locks, on_change=service.changed)
    return Runtime(
        content, engine, store, service, desk_store, desk, ClientData(store), settings.retention_days
    )
