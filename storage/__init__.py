"""Storage: clients, identities, conversations, messages, details, handoffs and tasks (SQLModel)."""

from storage.database import connect
from storage.repository import SqlStore

__all__ = ["SqlStore", "connect"]
