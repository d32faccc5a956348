"""The analytics dashboard over a generated history (a year: 50,000 conversations, 1,000,000 messages) on
SQLite and on PostgreSQL: how long the dashboard's one storage call takes for the last 30 days and the
last year, for everything and narrowed to a channel and a category; and the CSV export's whole read.

The history is written in bulk first (bench/analytics_data.py; not timed), each database fresh: an SQLite
file, and a new database on the PostgreSQL server (TONEBOT_TEST_POSTGRES, as the tests use; skipped when
unreachable). Each figure is the median of `repeats` calls after a first one, which is reported too.

Run: `python -m bench.analytics [--conversations 50000] [--messages 1000000] [--repeats 5] [--json]`.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from bench.analytics_data import Shape, generate, write
from storage import connect
from storage.analytics import Scope, SqlAnalytics
from storage.database import dispose_all, sqlite_url
from storage.schema import upgrade
from tests.support.databases import ADMIN_URL

ZONE = "Asia/Novosibirsk"
PERIODS = {"30d": 30, "1y": 365}


@contextlib.contextmanager
def sqlite_database() -> Iterator[Engine]:
    """A fresh SQLite file, migrated, as the bot opens it."""
    with tempfile.TemporaryDirectory() as directory:
        engine = connect(sqlite_url(str(Path(directory) / "analytics.db")))
        try:
            yield engine
        finally:
            engine.dispose()
            # The checkpoint thread stops when the engine is collected: before its file goes away.
            del engine
            gc.collect()


@contextlib.contextmanager
def postgres_database() -> Iterator[Engine]:
    """A new database on the PostgreSQL server, migrated; dropped afterwards."""
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"tonebot_bench_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine = create_engine(make_url(ADMIN_URL).set(database=name))
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()
            dispose_all()
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _checkpoint(engine: Engine) -> None:
    """SQLite: fold the write-ahead log into the file, as the bot's checkpoint thread does while it runs."""
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()
        try:
            # Outside any transaction: the DB-API connection is in autocommit (storage/database.py).
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # type: ignore[union-attr]
        finally:
            raw.close()


def timed(call: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(the first call's seconds, the median of `repeats` more)."""
    started = time.perf_counter()
    call()
    first = time.perf_counter() - started
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    return round(first, 4), round(statistics.median(runs), 4) if runs else round(first, 4)


def scopes(shape: Shape) -> dict[str, Scope]:
    """The scopes timed: each period for everything, and the year narrowed to a channel and a category."""
    last = shape.end.astimezone(ZoneInfo(ZONE)).date() - timedelta(days=1)
    found = {
        period: Scope.local(last - timedelta(days=days - 1), last, ZONE) for period, days in PERIODS.items()
    }
    year = found["1y"]
    found["1y_telegram"] = Scope(year.days, channel="telegram")
    found["1y_tech"] = Scope(year.days, categories=("tech",))
    return found


def measure_on(engine: Engine, shape: Shape, repeats: int, label: str) -> dict[str, float]:
    """Generate the history into one database, then time the dashboard and the export."""
    rows = generate(shape)
    started = time.perf_counter()
    write(engine, rows)
    _checkpoint(engine)
    figures = {f"analytics_{label}_write_s": round(time.perf_counter() - started, 1)}
    analytics = SqlAnalytics(engine)
    now = shape.end
    for name, scope in scopes(shape).items():
        first, median = timed(lambda scope=scope: analytics.dashboard(scope, now), repeats)
        figures[f"analytics_{label}_{name}_first_s"] = first
        figures[f"analytics_{label}_{name}_s"] = median
    year = scopes(shape)["1y"]
    first, _ = timed(lambda: sum(1 for _ in analytics.export(year, now)), 0)
    figures[f"analytics_{label}_export_year_s"] = first
    return figures


def measure(shape: Shape, repeats: int = 5, progress: Callable[[str], None] = print) -> dict[str, float]:
    """Both databases; `analytics_dashboard_s` is the slowest median of the unnarrowed periods."""
    figures: dict[str, float] = {}
    progress(f"analytics on SQLite: {shape.conversations} conversations, {shape.messages} messages")
    with sqlite_database() as engine:
        figures.update(measure_on(engine, shape, repeats, "sqlite"))
        del engine  # the last reference but the context's own (see sqlite_database)
    progress("analytics on PostgreSQL")
    try:
        with postgres_database() as engine:
            figures.update(measure_on(engine, shape, repeats, "postgresql"))
    except Exception as exc:  # no server here: the SQLite figures still stand
        progress(f"PostgreSQL skipped: {str(exc).splitlines()[0]}")
    dashboards = [
        value
        for key, value in figures.items()
        if key.endswith(("_30d_s", "_1y_s", "_1y_telegram_s", "_1y_tech_s"))
    ]
    figures["analytics_dashboard_s"] = max(dashboards)
    return figures


def main() -> None:
    """Parse arguments, run, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    default = Shape()
    parser.add_argument("--conversations", type=int, default=default.conversations)
    parser.add_argument("--messages", type=int, default=default.messages)
    parser.add_argument("--days", type=int, default=default.days)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    shape = Shape(conversations=args.conversations, messages=args.messages, days=args.days)
    result = measure(shape, args.repeats)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:<44}{value:g}")


if __name__ == "__main__":
    main()
