"""Counting database round trips for real: a TCP proxy in front of PostgreSQL.

The proxy counts, per connection, each time the server starts answering after the client sent something:
the client then waits a network turn. That counts what the driver really does (psycopg's own BEGIN, a
pipeline's flushes and syncs, connecting), whatever the code above it believes it sends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy.engine import make_url


class RoundTripProxy:
    """Forwards connections to the database server and counts round trips on all of them."""

    def __init__(self, database_url: str) -> None:
        self.target = make_url(database_url)
        self.round_trips = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The database URL through the proxy."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return self.target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)

    async def __aenter__(self) -> RoundTripProxy:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _connection(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection(
            self.target.host or "127.0.0.1", self.target.port or 5432
        )
        # Who spoke last on this connection: a server answer after the client spoke is one round trip.
        last = ["server"]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, side: str) -> None:
            try:
                while data := await source.read(65536):
                    if side == "server" and last[0] == "client":
                        self.round_trips += 1
                    last[0] = side
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    sink.close()

        tasks = [
            asyncio.create_task(pipe(client_in, server_out, "client")),
            asyncio.create_task(pipe(server_in, client_out, "server")),
        ]
        self._pipes.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pipes.difference_update(tasks)


@contextlib.asynccontextmanager
async def counting(database_url: str) -> AsyncIterator[RoundTripProxy]:
    """A round-trip counting proxy in front of the database of `database_url`."""
    async with RoundTripProxy(database_url) as proxy:
        yield proxy
