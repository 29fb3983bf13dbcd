"""Requests with a body (POST uploads) on the websockets server's one port.

websockets reads only the head of a request and refuses any request with a
body. Pre-recorded transcription (``POST /v1/listen``, OpenAI's ``POST
/v1/audio/transcriptions``) needs the body, on the same port the streaming
clients use, so :class:`BodyConnection` swaps in a request parser that also
reads a ``Content-Length`` or chunked body (up to a limit) and hands
``process_request`` a :class:`BodyRequest`. Everything after the request
(handshake, frames) is websockets' own.

The handshake timeout is split: the request (head and body) must arrive
within ``upload_timeout_s``; answering a request with a body may then take
``answer_timeout_s`` (a long file is transcribed before the response goes),
while a WebSocket upgrade keeps websockets' ``open_timeout``.
"""

from __future__ import annotations

import asyncio
import http
import re
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, SecurityError
from websockets.http11 import Request, parse_headers, parse_line
from websockets.protocol import CONNECTING, Protocol
from websockets.server import ServerProtocol

_HEX = re.compile(rb"[0-9a-fA-F]+")
_DIGITS = re.compile(r"[0-9]+")


@dataclass
class BodyRequest(Request):
    """A request as websockets models it, plus its body."""

    body: bytes = b""
    too_large: bool = False
    """The declared body exceeded the limit; it was not read (answer 413)."""


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Limits shared by every connection of one server."""

    max_body_bytes: int = 100 * 1024 * 1024
    upload_timeout_s: float = 120.0
    answer_timeout_s: float = 600.0
    open_timeout_s: float = 10.0


def read_request(protocol: ServerProtocol, max_body: int) -> Generator[None, None, BodyRequest]:
    """Parse a request head (as websockets does) and its body, if it has one."""
    read_line = protocol.reader.read_line
    line = yield from parse_line(read_line)
    try:
        raw_method, raw_path, raw_protocol = line.split(b" ", 2)
    except ValueError:
        raise ValueError(f"invalid HTTP request line: {line!r}") from None
    if raw_protocol not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise ValueError(f"unsupported protocol: {raw_protocol!r}")
    headers: Headers = yield from parse_headers(read_line)
    request = BodyRequest(raw_path.decode("ascii"), headers, raw_method.decode("ascii"), raw_protocol.decode("ascii"))
    coding = headers.get("Transfer-Encoding")
    if coding is not None:
        if coding.lower() != "chunked":
            raise ValueError(f"transfer coding {coding} isn't supported")
        body = bytearray()
        while True:
            size_line = yield from parse_line(read_line)
            raw_size = size_line.split(b";", 1)[0].strip()
            if not _HEX.fullmatch(raw_size):
                raise SecurityError(f"invalid chunk size: {raw_size!r}")
            size = int(raw_size, 16)
            if size == 0:
                break
            if len(body) + size > max_body:
                request.too_large = True
                return request
            body += yield from protocol.reader.read_exact(size)
            if (yield from protocol.reader.read_exact(2)) != b"\r\n":
                raise ValueError("chunk without CRLF")
        yield from parse_headers(read_line)  # the trailer
        request.body = bytes(body)
        return request
    lengths = set(headers.get_all("Content-Length"))
    if not lengths or lengths == {"0"}:
        return request
    if len(lengths) > 1 or not _DIGITS.fullmatch(next(iter(lengths))):
        raise SecurityError(f"invalid content length: {sorted(lengths)}")
    length = int(next(iter(lengths)))
    if length > max_body:
        request.too_large = True
        return request
    request.body = bytes((yield from protocol.reader.read_exact(length)))
    return request


def _parse(protocol: ServerProtocol, max_body: int) -> Generator[None]:
    """ServerProtocol.parse with :func:`read_request` in place of Request.parse."""
    if protocol.state is CONNECTING:
        try:
            request = yield from read_request(protocol, max_body)
        except Exception as exc:
            # As websockets does for a request it cannot parse: no response, close.
            protocol.handshake_exc = InvalidMessage("did not receive a valid HTTP request")
            protocol.handshake_exc.__cause__ = exc
            protocol.send_eof()
            protocol.parser = protocol.discard()
            next(protocol.parser)
            yield
        protocol.events.append(request)
        if request.body or request.too_large:
            # No frames follow a request with a body: drop whatever else arrives
            # (the rest of a refused upload) until the response replaces this parser.
            while not (yield from protocol.reader.at_eof()):
                protocol.reader.discard()
            while True:
                yield
    yield from Protocol.parse(protocol)


class BodyConnection(ServerConnection):
    """A server connection whose request may carry a body (see module docstring)."""

    limits = BodyLimits()

    def __init__(self, protocol: ServerProtocol, *args: Any, **kwargs: Any) -> None:
        super().__init__(protocol, *args, **kwargs)
        # Nothing has been read yet: the parser websockets started is replaced whole.
        protocol.parser = _parse(protocol, self.limits.max_body_bytes)
        next(protocol.parser)

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        limits = self.limits
        async with asyncio.timeout(limits.upload_timeout_s):
            await asyncio.wait([self.request_rcvd, self.connection_lost_waiter], return_when=asyncio.FIRST_COMPLETED)
        has_body = isinstance(self.request, BodyRequest) and (self.request.body or self.request.too_large)
        async with asyncio.timeout(limits.answer_timeout_s if has_body else limits.open_timeout_s):
            await super().handshake(*args, **kwargs)


def connection_class(max_body_bytes: int, answer_timeout_s: float) -> type[BodyConnection]:
    """A :class:`BodyConnection` class with these limits, for ``serve(create_connection=...)``."""
    limits = BodyLimits(max_body_bytes=max_body_bytes, answer_timeout_s=answer_timeout_s)
    return type("GatewayConnection", (BodyConnection,), {"limits": limits})


def body_of(request: Request) -> bytes:
    return request.body if isinstance(request, BodyRequest) else b""


def too_large(request: Request) -> bool:
    return isinstance(request, BodyRequest) and request.too_large


STATUS_TOO_LARGE = http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE
