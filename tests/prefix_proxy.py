"""A path-prefix (and TLS) reverse proxy in front of the gateway, for the browser tests.

:class:`PrefixProxy` mounts the gateway under a prefix as nginx would, relays
WebSocket upgrades, and can cut them (a network failure, as the page sees it);
:func:`self_signed_cert` and :func:`tls_context` put it behind https.
Like :mod:`tests.browser_helpers`, nothing here imports the gateway package.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path


def self_signed_cert(directory: Path, host: str) -> tuple[Path, Path]:
    """A throwaway certificate for ``host`` (and 127.0.0.1), made with the openssl CLI."""
    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is required for the TLS browser test (apt-get install openssl)")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            f"/CN={host}",
            "-addext",
            f"subjectAltName=DNS:{host},IP:127.0.0.1",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return cert, key


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@dataclass
class SeenRequest:
    method: str
    target: str
    upstream_target: str
    headers: dict[str, str] = field(default_factory=dict)


class PrefixProxy:
    """A small HTTP/1.1 reverse proxy that mounts the gateway under ``prefix``.

    ``GET {prefix}/x`` is forwarded as ``GET /x`` (the prefix is stripped, as
    nginx ``proxy_pass http://up/;`` does); ``{prefix}`` alone redirects to
    ``{prefix}/``; anything else is 404. WebSocket upgrades are relayed byte
    for byte after the upstream's ``101``. With ``ssl_context`` it listens
    over TLS, so the page is served over https and streams over wss.
    It runs its own event loop in a thread; :meth:`drop_websockets` cuts every
    relayed WebSocket abruptly (a network failure, as the page sees it).
    """

    def __init__(
        self, upstream_port: int, prefix: str = "/captions", ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.upstream_port = upstream_port
        self.prefix = prefix.rstrip("/")
        self.ssl_context = ssl_context
        self.seen: list[SeenRequest] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="prefix-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._tunnels: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle (called from the test thread) --------------------------------

    def start(self) -> PrefixProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def drop_websockets(self) -> int:
        """Abort every relayed WebSocket; returns how many were cut."""
        return asyncio.run_coroutine_threadsafe(self._drop(), self._loop).result(10)

    def websocket_requests(self) -> list[SeenRequest]:
        return [r for r in list(self.seen) if r.headers.get("upgrade", "").lower() == "websocket"]

    # -- inside the loop ----------------------------------------------------------

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _drop(self) -> int:
        tunnels = list(self._tunnels)
        for client, upstream in tunnels:
            client.transport.abort()
            upstream.transport.abort()
        return len(tunnels)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await self._serve_client(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, ssl.SSLError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
            self._tasks.discard(task)

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers: list[tuple[str, str]] = []
            for line in lines[1:]:
                if line:
                    name, _, value = line.partition(":")
                    headers.append((name.strip(), value.strip()))
            lower = {k.lower(): v for k, v in headers}
            body = await reader.readexactly(int(lower.get("content-length", "0") or 0))

            path = target.split("?", 1)[0]
            under_prefix = path.startswith(self.prefix + "/")
            upstream_target = target[len(self.prefix) :] if under_prefix else ""
            self.seen.append(SeenRequest(method, target, upstream_target, lower))
            if path == self.prefix:
                query = target[len(path) :]
                self._reply(writer, 301, {"Location": f"{self.prefix}/{query}"})
                await writer.drain()
                continue
            if not under_prefix:
                self._reply(writer, 404, {}, b"not under the proxy prefix\n")
                await writer.drain()
                continue

            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            self._writers.add(up_writer)
            try:
                forwarded = [(k, v) for k, v in headers if k.lower() not in ("host",)]
                forwarded += [
                    ("Host", f"127.0.0.1:{self.upstream_port}"),
                    ("X-Forwarded-Prefix", self.prefix),
                    ("X-Forwarded-Proto", "https" if self.ssl_context else "http"),
                    ("X-Forwarded-Host", lower.get("host", "")),
                ]
                forwarded = [(k, v) for k, v in forwarded if v]
                out = f"{method} {upstream_target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in forwarded)
                up_writer.write(out.encode("latin-1") + b"\r\n" + body)
                await up_writer.drain()

                response_head = await up_reader.readuntil(b"\r\n\r\n")
                status = int(response_head.split(b" ", 2)[1])
                writer.write(response_head)
                if status == 101:
                    await self._tunnel(reader, writer, up_reader, up_writer)
                    return
                rlower = {}
                for line in response_head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    rlower[name.strip().lower()] = value.strip()
                if method == "HEAD" or status in (204, 304) or status < 200:
                    pass
                elif "content-length" in rlower:
                    writer.write(await up_reader.readexactly(int(rlower["content-length"])))
                elif rlower.get("transfer-encoding", "").lower() == "chunked":
                    while True:
                        size_line = await up_reader.readuntil(b"\r\n")
                        writer.write(size_line)
                        size = int(size_line.split(b";")[0], 16)
                        if size == 0:
                            writer.write(await up_reader.readuntil(b"\r\n"))  # (no trailers expected)
                            break
                        writer.write(await up_reader.readexactly(size + 2))
                else:
                    writer.write(await up_reader.read())
                    await writer.drain()
                    return
                await writer.drain()
            finally:
                self._writers.discard(up_writer)
                up_writer.transport.abort()
            if lower.get("connection", "").lower() == "close":
                return

    async def _tunnel(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        pair = (writer, up_writer)
        self._tunnels.add(pair)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()

        try:
            await writer.drain()
            _done, pending = await asyncio.wait(
                [asyncio.ensure_future(pipe(reader, up_writer)), asyncio.ensure_future(pipe(up_reader, writer))],
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            self._tunnels.discard(pair)

    @staticmethod
    def _reply(writer: asyncio.StreamWriter, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        reason = {301: "Moved Permanently", 404: "Not Found"}.get(status, "Status")
        all_headers = {**headers, "Content-Length": str(len(body))}
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in all_headers.items())
        writer.write(head.encode("latin-1") + b"\r\n" + body)
