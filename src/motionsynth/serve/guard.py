"""The editor's gate: an ASGI middleware that every request passes before the application sees it.

It refuses, with a one-line JSON error and without reading the body:

- a ``Host`` header naming another machine (400; against DNS rebinding: a page of another site whose name resolves to
  127.0.0.1 still sends its own name), when the allowed host names are given;
- a state-changing request (anything but GET / HEAD / OPTIONS) from another site (403): ``Sec-Fetch-Site`` other than
  ``same-origin`` / ``none``, or an ``Origin`` other than the editor's own; and one without the page's token in the
  ``X-Motionsynth-Token`` header (403). The token is random per application and embedded in the editor's page, which
  another site cannot read (no CORS), so another site cannot use the editor even where a browser sends no
  ``Origin``; clients that are not browsers (curl, scripts) send no ``Origin`` and read the token from the page;
- a body larger than its path's limit (413), from ``Content-Length`` at once or counted while it streams;
- a body that is not complete within ``body_timeout`` seconds of the request's start (408: a client sending one
  byte a second holds nothing for long).

Refusals after the request has started to stream close the connection (``Connection: close``): the rest of the body
is never read. Half-sent *headers* never reach an ASGI application; `motionsynth.serve.server` times them out.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect

__all__ = ["Guard", "TOKEN_HEADER", "host_name"]

TOKEN_HEADER = "X-Motionsynth-Token"
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_SAME_SITE = ("same-origin", "none")  # Sec-Fetch-Site values of the editor's own page and of a typed-in URL


class _Abort(Exception):
    """Raised from the wrapped ``receive`` to stop the application: answered with ``status`` and a closed
    connection."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def host_name(value: str) -> str | None:
    """The host name of a ``Host`` header value (lower case, IPv6 without brackets, port dropped), or None when it
    is malformed. ``127.0.0.1:8000`` → ``127.0.0.1``, ``[::1]:8000`` → ``::1``, ``LocalHost`` → ``localhost``."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1:]
    elif value.count(":") > 1:  # a bare IPv6 address
        name, rest = value, ""
    else:
        name, sep, port = value.partition(":")
        rest = sep + port
    if rest and not (rest[:1] == ":" and rest[1:].isdigit()):
        return None
    return name.rstrip(".") or None


async def _send_error(send, status: int, message: str, close: bool) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class Guard:
    """ASGI middleware: host, origin and token checks, body size limits and a body deadline (see the module).

    Args:
        app: the application.
        token: the value ``X-Motionsynth-Token`` must carry on state-changing requests.
        hosts: the allowed host names (`host_name` form); None: any.
        body_limit: path → (largest body in bytes, the message when it is larger).
        body_timeout: seconds from the request's start by which its body must have arrived.
    """

    def __init__(self, app, *, token: str, hosts: set[str] | None, body_limit: Callable[[str], tuple[int, str]],
                 body_timeout: float):
        self.app, self.token, self.hosts = app, token, hosts
        self.body_limit, self.body_timeout = body_limit, body_timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        refused = self.refusal(scope, headers)
        if refused is not None:
            return await _send_error(send, *refused, close=False)
        limit, too_large = self.body_limit(scope["path"])
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return await _send_error(send, 413, too_large, close=True)
        started = False

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, self._bounded(receive, limit, too_large), tracked_send)
        except _Abort as e:
            if started:
                raise
            await _send_error(send, e.status, e.message, close=True)
        except ClientDisconnect:
            pass  # nobody to answer

    def refusal(self, scope, headers: Headers) -> tuple[int, str] | None:
        """(status, message) when the request is refused before it runs, else None."""
        if self.hosts is not None and host_name(headers.get("host", "")) not in self.hosts:
            return 400, "invalid Host header: open the editor at the address it printed"
        if scope["method"] in _SAFE_METHODS:
            return None
        site = headers.get("sec-fetch-site")
        if site is not None and site.lower() not in _SAME_SITE:
            return 403, "refused: a request from another site (the editor answers only its own page)"
        origin = headers.get("origin")
        own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
        if origin is not None and origin.lower() != own.lower():
            return 403, f"refused: a request from another origin ({origin[:80]})"
        if not hmac.compare_digest(headers.get(TOKEN_HEADER, "").encode(), self.token.encode()):
            return 403, f"refused: missing or wrong {TOKEN_HEADER} header (reload the editor's page)"
        return None

    def _bounded(self, receive, limit: int, too_large: str):
        """``receive`` that raises `_Abort` when the body grows past ``limit`` bytes or is not complete by the
        deadline; once the body is complete it is ``receive`` itself (a later wait for the disconnect is not timed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout
        total, complete = 0, False

        async def guarded():
            nonlocal total, complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise _Abort(408, f"the request's body did not arrive within {self.body_timeout:g} s") from None
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > limit:
                    raise _Abort(413, too_large)
                complete = not message.get("more_body", False)
            return message

        return guarded
