"""uvicorn for the editor, with limits on slow and idle clients.

uvicorn (h11) closes an idle keep-alive connection after ``timeout_keep_alive`` seconds and refuses headers larger
than ``h11_max_incomplete_event_size`` (400), but it never times out a connection that does not *complete* its
request headers: a client sending half a request line, or nothing at
all, holds its socket for ever. `EditorProtocol` adds that timeout: the headers of each request must be complete
within ``header_timeout`` seconds of its first byte (of the connection, for the first request), else the connection
is answered 408 and closed. Beyond ``max_connections`` open connections, a new one makes room by closing the
connection that has waited longest for request headers (a flood of half-open connections then churns among itself
while a real client, which sends its headers at once, is served); when every connection is busy with a request, the
new one is closed. (uvicorn's own ``limit_concurrency`` is left off by default: it counts half-open connections too,
so a flood would turn every real request away with 503; the editor's worker pools bound the work instead.)

Bodies are timed by the application itself (`motionsynth.serve.guard`): it knows each request's limits.
"""

from __future__ import annotations

import asyncio

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["EditorProtocol", "make_server"]

_TIMEOUT = b"request headers not complete in time\n"
_TIMEOUT_RESPONSE = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                     b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT), _TIMEOUT))


class EditorProtocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for request headers and a cap on open connections (class attributes;
    `make_server` sets them on a subclass)."""

    header_timeout: float = 10.0
    max_connections: int = 128

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        self._waiting_since = float("-inf")  # when it began to wait for a request's headers (-inf: idle keep-alive)
        super().connection_made(transport)
        if self._open_connections() > self.max_connections and not self._make_room():
            transport.close()
            return
        self._arm()

    def _open_connections(self) -> int:
        return sum(not c.transport.is_closing() for c in self.connections if c.transport is not None)

    def _make_room(self) -> bool:
        """Close the other connection that has waited longest for request headers; False when there is none."""
        waiting = [c for c in self.connections if c is not self and isinstance(c, EditorProtocol)
                   and c._between_requests() and not c.transport.is_closing()]
        if not waiting:
            return False
        min(waiting, key=lambda c: c._waiting_since)._headers_late()
        return True

    def data_received(self, data: bytes) -> None:
        if self._between_requests():
            self._arm()  # the first bytes of a request start its clock (a running clock is not reset)
        super().data_received(data)
        if not self._between_requests():
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._header_timer is None:
            self._waiting_since = self.loop.time()
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm(self) -> None:
        self._waiting_since = float("-inf")
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._disarm()
        if self._between_requests() and not self.transport.is_closing():
            self.transport.write(_TIMEOUT_RESPONSE)
            self.transport.close()


def make_server(app, host: str = "127.0.0.1", port: int = 8000, *, header_timeout: float = 10.0,
                keep_alive: float = 5.0, limit_concurrency: int | None = None, max_connections: int = 128,
                max_header_bytes: int = 64 * 1024, log_level: str = "warning") -> uvicorn.Server:
    """A uvicorn server for ``app`` on ``host:port`` with `EditorProtocol` (call ``.run()``, or run it in a thread).

    Args:
        header_timeout: seconds a request's headers may take from its first byte.
        keep_alive: seconds an idle keep-alive connection is kept.
        limit_concurrency: uvicorn's: beyond this many connections or running requests, new requests get 503.
        max_connections: beyond this many open connections, new ones are closed at once.
        max_header_bytes: larger request headers are refused (400).
    """
    protocol = type("EditorProtocol", (EditorProtocol,),
                    {"header_timeout": float(header_timeout), "max_connections": int(max_connections)})
    config = uvicorn.Config(app, host=host, port=port, http=protocol, timeout_keep_alive=keep_alive,  # type: ignore[arg-type]  # a float works; stub says int
                            limit_concurrency=limit_concurrency, h11_max_incomplete_event_size=max_header_bytes,
                            log_level=log_level, lifespan="on")
    return uvicorn.Server(config)
