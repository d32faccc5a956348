"""Operator accounts and signed-in sessions in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Delete, insert, select, update

from storage.desk.sql import SqlPart
from storage.tables import as_utc, new_id, operators, sessions


class SqlAccounts(SqlPart):
    """Accounts and sessions (the Accounts interface)."""

    def add_operator(self, name: str, password_hash: str, display_name: str, role: str, at: datetime) -> int:
        """Create an account; ValueError when the name is taken."""
        with self.write_lock, self.engine.begin() as connection:
            if connection.execute(select(operators.c.id).where(operators.c.name == name)).first():
                raise ValueError(f"operator {name!r} already exists")
            return new_id(
                connection.execute(
                    insert(operators).values(
                        name=name,
                        display_name=display_name or name,
                        password_hash=password_hash,
                        role=role,
                        disabled=False,
                        created_at=at,
                    )
                )
            )

    def set_password(self, name: str, password_hash: str) -> bool:
        """Replace an operator's password hash; False when there is no such operator."""
        with self.write_lock, self.engine.begin() as connection:
            changed = connection.execute(
                update(operators).where(operators.c.name == name).values(password_hash=password_hash)
            )
            connection.execute(delete_sessions_of(name))
            return bool(changed.rowcount)

    def set_password_hash(self, name: str, old_hash: str, new_hash: str) -> bool:
        """A stronger hash of the same password (sessions stay); False when the hash changed meanwhile."""
        with self.write_lock, self.engine.begin() as connection:
            changed = connection.execute(
                update(operators)
                .where(operators.c.name == name, operators.c.password_hash == old_hash)
                .values(password_hash=new_hash)
            )
            return bool(changed.rowcount)

    def operator(self, name: str) -> Any | None:
        """An operator account by name."""
        with self.engine.connect() as connection:
            return connection.execute(select(operators).where(operators.c.name == name)).first()

    def create_session(
        self, operator_id: int, token_hash: str, csrf_token: str, at: datetime, expires_at: datetime
    ) -> None:
        """Remember a signed-in session."""
        with self.write_lock, self.engine.begin() as connection:
            connection.execute(sessions.delete().where(sessions.c.expires_at < at))
            connection.execute(
                insert(sessions).values(
                    token_hash=token_hash,
                    operator_id=operator_id,
                    csrf_token=csrf_token,
                    created_at=at,
                    expires_at=expires_at,
                )
            )

    def session(self, token_hash: str, now: datetime) -> tuple[Any, str] | None:
        """The operator and CSRF token of a live session."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(operators, sessions.c.csrf_token, sessions.c.expires_at)
                .join(sessions, sessions.c.operator_id == operators.c.id)
                .where(sessions.c.token_hash == token_hash, operators.c.disabled.is_(False))
            ).first()
        if row is None or (as_utc(row.expires_at) or now) <= now:
            return None
        return row, str(row.csrf_token)

    def end_session(self, token_hash: str) -> None:
        """Sign out."""
        with self.write_lock, self.engine.begin() as connection:
            connection.execute(sessions.delete().where(sessions.c.token_hash == token_hash))


def delete_sessions_of(name: str) -> Delete:
    """A statement ending every session of an operator (after a password change)."""
    return sessions.delete().where(
        sessions.c.operator_id.in_(select(operators.c.id).where(operators.c.name == name))
    )
