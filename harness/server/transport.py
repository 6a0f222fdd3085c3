"""The HTTP/1.1 transport of `harness serve`: uvicorn's httptools protocol with a bounded request head.

uvicorn's httptools protocol accepts a request line and headers of any size (a 100 MB header is
buffered whole, in memory, before the application sees the request). This subclass counts the bytes
of each request head and, past `MAX_HEAD_BYTES`, answers 400 and closes the connection. The few
errors raised below the application (a head over the limit, bytes that are not HTTP) are answered
in the canonical envelope too, so a client never meets another error shape.

The connection is closed gracefully: the 400 and a FIN go out first, what the client still sends is
read and dropped for a moment (never buffered), then the socket closes. Closing at once with unread
input would make the kernel send a reset, which can destroy the 400 before the client reads it.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from harness.server.errors import APIError, envelope_body

MAX_HEAD_BYTES = 64 * 1024
"""Request line plus headers, per request: enough for any real token, far below a memory problem."""
LINGER_SECONDS = 1.0
"""How long input is drained after a transport-level 400, before the socket closes."""

logger = logging.getLogger("harness.server")


def transport_error_response(detail: str) -> bytes:
    """A complete HTTP/1.1 400 response whose body is the canonical envelope."""
    body = envelope_body(APIError(400, detail))
    head = (
        "HTTP/1.1 400 Bad Request\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _HeadTooLarge(Exception):
    """Raised inside a parser callback; httptools turns it into an HttpParserError (-> 400)."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads over `MAX_HEAD_BYTES` in the envelope.

    Two counts: the bytes of the request line and headers as the parser reports them (exact, checked
    when the head is complete), and the raw bytes received while a head is incomplete (the parser
    buffers a header until it ends, so a giant header is refused before it is complete).
    """

    max_head_bytes = MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._raw_head_bytes = 0
        self._head_bytes = 0
        self._refused = False
        self._too_large = False

    def _head_limit_detail(self) -> str:
        return f"Request line and headers exceed the limit of {self.max_head_bytes} bytes"

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # draining after a 400: read and dropped, never buffered
        if self._in_head:
            self._raw_head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._raw_head_bytes > self.max_head_bytes and not self._refused:
            self._too_large = True
            self._refuse(self._head_limit_detail())

    def on_message_begin(self) -> None:
        self._head_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._head_bytes > self.max_head_bytes:
            self._too_large = True
            raise _HeadTooLarge  # before uvicorn builds the request: the application never sees it
        self._in_head = False
        self._raw_head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # what follows on this connection is the next request's head
        self._raw_head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP (and to a head over the limit), in the envelope."""
        if not self._refused:
            self._refuse(self._head_limit_detail() if self._too_large else msg.rstrip(".") or "Invalid HTTP request")

    def _refuse(self, detail: str) -> None:
        self._refused = True
        logger.warning("refused a request at the transport: %s", detail)
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(transport_error_response(detail))
        if transport.can_write_eof():
            transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, transport.close)
        else:
            transport.close()
