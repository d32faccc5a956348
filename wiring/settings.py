"""Settings read once from the environment (and `.env`), typed, failing loudly on nonsense."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from common.layers import CONTENT_ROOT, DEFAULT_CONTENT_DIR

DEFAULT_DATABASE_URL = "sqlite:///tonebot.db"


def _dotenv(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def environment() -> dict[str, str]:
    """The environment with `.env` from the working directory underneath it."""
    return {**_dotenv(Path(".env")), **os.environ}


class SettingsError(ValueError):
    """A setting has a value tonebot cannot use; the message says which and what is expected."""


def shipped_companies() -> list[str]:
    """The companies whose content ships with tonebot (directories of content/ with scenarios)."""
    return sorted(p.name for p in CONTENT_ROOT.iterdir() if (p / "scenarios").is_dir())


def company_dir(name: str) -> Path:
    """The content directory of a shipped company; SettingsError names the known ones."""
    known = shipped_companies()
    if name not in known:
        raise SettingsError(f"unknown company {name!r}; the shipped ones are {', '.join(known)}")
    return CONTENT_ROOT / name


@dataclass(frozen=True, slots=True)
class Settings:
    """Where data and content live."""

    database_url: str
    content_dir: Path
    # Conversations with no activity for this many days are deleted by a scheduled job; 0 keeps them.
    retention_days: int = 0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Settings from environment variables, falling back to `.env` in the working directory."""
        env = environment() if environ is None else environ
        retention = env.get("TONEBOT_RETENTION_DAYS", "0").strip() or "0"
        if not retention.isdigit():
            raise SettingsError(f"TONEBOT_RETENTION_DAYS must be a whole number of days, got {retention!r}")
        content_dir = Path(env.get("TONEBOT_CONTENT_DIR") or DEFAULT_CONTENT_DIR)
        if not env.get("TONEBOT_CONTENT_DIR") and env.get("TONEBOT_COMPANY"):
            content_dir = company_dir(env["TONEBOT_COMPANY"])
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            content_dir=content_dir,
            retention_days=int(retention),
        )
