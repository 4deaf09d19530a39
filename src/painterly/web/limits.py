"""What ``painterly serve`` bounds and refuses, so that it can run for weeks.

* :class:`Limits`: every number the server enforces, in one place (the page reads them
  too, from ``GET /api/options``).
* :class:`Guard`: ASGI middleware that refuses requests for unknown host names (DNS
  rebinding) and state-changing requests without a same-origin ``Origin`` header (CSRF),
  and bounds every request body: its size (413, counted as it arrives, chunked or not)
  and the time it may take to arrive (408).
* :func:`server_config`: uvicorn's settings with those limits, including an HTTP/1.1
  protocol that drops a connection whose request headers do not arrive in time.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import h11
import uvicorn
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from uvicorn.protocols.http.h11_impl import H11Protocol

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
UPLOAD_PATH = "/api/uploads"  # counts its own body, with a message that names the file
CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True)
class Limits:
    """What the server accepts. The page reads these too, to warn before uploading."""

    max_upload_bytes: int = 40 * 1024 * 1024  # one uploaded file
    max_pixels: int = 50_000_000  # per input image, checked from the header before decoding
    max_decodes: int = 2  # uploads decoded at the same time (a 50 MP image takes ~1 GB)
    max_upload_store_bytes: int = 2 * 1024**3  # all uploads kept; the oldest unused go first
    max_body_bytes: int = 64 * 1024  # any other request body (the job's JSON is ~1 KB)
    max_side: int = 4096  # of the output
    max_steps: int = 20_000
    max_styles: int = 8
    max_queued: int = 32  # waiting jobs, all devices together
    keep_jobs: int = 60  # finished jobs kept on disk for "recent results"
    header_timeout_s: float = 10.0  # for a request's line and headers to arrive
    body_idle_timeout_s: float = 30.0  # longest pause while a body arrives
    body_timeout_s: float = 600.0  # for a whole body (40 MB at 0.5 Mbit/s)
    keep_alive_s: float = 5.0  # an idle connection between requests
    max_connections: int = 200  # open at once; beyond it requests get 503
    max_header_bytes: int = 16 * 1024
    # Hand a finished job's freed memory back to the system (glibc's malloc_trim): without
    # it a server's RSS settles about 150 MB higher after its first hundred jobs. The
    # server process does it; a test server sharing a large process may not want to.
    return_memory_after_jobs: bool = False


def _host_of(header: str) -> str:
    """``127.0.0.1:8000`` -> ``127.0.0.1``; ``[::1]:8000`` -> ``::1``."""
    if header.startswith("["):
        return header[1 : header.find("]")]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def allowed_hosts(host: str, extra: tuple[str, ...] = ()) -> set[str]:
    """Host names requests may use: the loopback names, the address served on unless it
    is a wildcard, and ``extra`` (``--allowed-host``)."""
    bound = host.strip("[]").lower()
    names = LOOPBACK | {h.strip("[]").lower() for h in extra}
    if bound not in ("0.0.0.0", "::", ""):
        names.add(bound)
    return names


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Plain ASGI middleware in front of the app; see the module's docstring."""

    def __init__(self, app, hosts: set[str], limits: Limits):
        self.app = app
        self.hosts = hosts
        self.limits = limits

    def _refusal(self, scope, headers: Headers) -> tuple[int, str] | None:
        host_header = headers.get("host", "")
        if _host_of(host_header).lower() not in self.hosts:
            return 400, "unknown host name; open the page by the address it is served on"
        if scope["method"] not in SAFE_METHODS:
            # A browser sends Origin with every fetch() that is not GET or HEAD, and the
            # page makes its changes with fetch(); "null" comes from sandboxed frames,
            # file: pages and some redirects, which are never the page itself.
            origin = headers.get("origin")
            if not origin or origin == "null" or urlsplit(origin).netloc != host_header:
                return 403, "cross-site request refused"
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            return 400, "Content-Length is not a number"
        if length and scope["path"] != UPLOAD_PATH and int(length) > self.limits.max_body_bytes:
            return 413, f"request body over the {self.limits.max_body_bytes} bytes allowed"
        return None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal:
            return await _refuse(send, *refusal)
        has_body = headers.get("content-length", "0") != "0" or "transfer-encoding" in headers

        limits = self.limits
        size_limit = None if scope["path"] == UPLOAD_PATH else limits.max_body_bytes
        start, received, body_done, cut, started = time.monotonic(), 0, False, False, False

        async def limited_receive():
            # Bound the body's size and arrival time; once it is whole, the app's further
            # receive() calls only wait for a disconnect, which may take any time.
            nonlocal received, body_done, cut
            if body_done:
                return await receive()
            left = limits.body_timeout_s - (time.monotonic() - start)
            try:
                message = await asyncio.wait_for(receive(), min(limits.body_idle_timeout_s, left))
            except TimeoutError:
                cut = True
                raise HTTPException(408, "the request body arrived too slowly") from None
            if message["type"] != "http.request" or not message.get("more_body"):
                body_done = True
            received += len(message.get("body", b""))
            if size_limit is not None and received > size_limit:
                cut = True
                raise HTTPException(413, f"request body over the {size_limit} bytes allowed")
            return message

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                out = MutableHeaders(scope=message)
                out.setdefault("Content-Security-Policy", CSP)
                out.setdefault("X-Content-Type-Options", "nosniff")
                out.setdefault("Referrer-Policy", "no-referrer")
                if cut or (has_body and not body_done):
                    # The rest of the body is not wanted: close rather than read it all.
                    out["Connection"] = "close"
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_headers)
        except HTTPException as err:  # raised by limited_receive outside FastAPI's handling
            if started:
                raise
            await _refuse(send_with_headers, err.status_code, err.detail)


LINGER_S = 2.0  # after an early answer, how long the rest of a refused body may arrive
LINGER_IDLE_S = 0.5  # and the longest pause in it (a client that stopped sending is let go)
LINGER_BYTES = 64 * 1024 * 1024  # and how much of it is read (and dropped) at most


class _LingeringTransport:
    """The connection's transport, whose ``close()`` lingers where a request body is
    still arriving: the answer goes out, then our side of the connection is shut (FIN),
    and what the client still sends is read and dropped until it closes too, ``LINGER_S``
    pass, it pauses for ``LINGER_IDLE_S`` or ``LINGER_BYTES`` arrive. Closing with unread
    bytes makes the kernel answer with a reset, which can discard the answer before the
    client reads it (a client that sends its whole body first, as most do, then sees only
    the reset). Everything else is the transport's own."""

    def __init__(self, transport, protocol):
        self._transport = transport
        self._protocol = protocol
        self.lingering = False
        self.dropped = 0
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0

    def __getattr__(self, name):
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self.lingering or self._transport.is_closing()

    def close(self) -> None:
        if self.lingering:
            return  # the timer, the client's close or the byte cap ends it
        body_unread = self._protocol.conn.their_state is h11.SEND_BODY
        if not body_unread or self._transport.is_closing() or not self._transport.can_write_eof():
            self._transport.close()
            return
        self.lingering = True
        self._transport.write_eof()
        self._transport.resume_reading()
        self._deadline = self._protocol.loop.time() + LINGER_S
        self._rearm()

    def drop(self, data: bytes) -> None:
        self.dropped += len(data)
        if self.dropped > LINGER_BYTES:
            self.abort_linger()
        else:
            self._rearm()

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = self._protocol.loop
        wait = max(0.0, min(LINGER_IDLE_S, self._deadline - loop.time()))
        self._timer = loop.call_later(wait, self.abort_linger)

    def abort_linger(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._transport.close()


def _timed_protocol(header_timeout_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request line and headers have
    not all arrived ``header_timeout_s`` after it opened or after its last response, and
    lingering on close where a request body is still arriving (:class:`_LingeringTransport`).

    uvicorn's own keep-alive timer stops at the first byte of the next request, so
    without this a client sending a few header bytes holds its connection for ever.
    """

    class TimedH11Protocol(H11Protocol):
        header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            # A Transport by delegation: what the wrapper does not define is the
            # wrapped transport's (its __getattr__).
            super().connection_made(cast(asyncio.Transport, _LingeringTransport(transport, self)))
            self._arm()

        def data_received(self, data: bytes) -> None:
            transport = cast(_LingeringTransport, self.transport)  # as connection_made set it
            if transport.lingering:
                transport.drop(data)
                return
            super().data_received(data)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
            transport = cast(_LingeringTransport, self.transport)  # as connection_made set it
            if transport.lingering:
                transport.abort_linger()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self.header_timer is not None:
                self.header_timer.cancel()
            self.header_timer = self.loop.call_later(header_timeout_s, self._expire)

        def _expire(self) -> None:
            # IDLE: the next request's headers are still incomplete. Our side DONE: the
            # response went out, yet the client still has not finished its request.
            if self.conn.their_state is h11.IDLE or self.conn.our_state is h11.DONE:
                self.transport.close()

    return TimedH11Protocol


def server_config(app, limits: Limits, **kwargs) -> uvicorn.Config:
    """uvicorn's configuration for ``app`` under ``limits`` (``kwargs``: more settings)."""
    return uvicorn.Config(
        app,
        http=_timed_protocol(limits.header_timeout_s),
        timeout_keep_alive=int(limits.keep_alive_s),
        limit_concurrency=limits.max_connections,
        h11_max_incomplete_event_size=limits.max_header_bytes,
        lifespan="on",
        **kwargs,
    )
