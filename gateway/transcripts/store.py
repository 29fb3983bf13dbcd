"""Durable transcripts: every final of every stream, in SQLite.

:class:`TranscriptDatabase` is the blocking part (one SQLite connection);
:class:`TranscriptStore` is its asyncio shell. Writes go through one writer
task that runs them in a worker thread, never on the event loop: it takes
every write queued so far and commits them in one transaction (a group
commit, so many streams share one fsync), then wakes each writer. A stream
awaits its final's commit before the final is sent on, so a crash loses no
final a client or subscriber has seen. If a batch fails, its writes are
retried one per transaction, so one bad write fails alone.

The database runs in WAL mode (readers never block the writer) with
``synchronous=FULL`` (a committed final survives a power cut, not only a
process crash). Reads use their own connection, also in a worker thread.

Schema (``PRAGMA user_version`` 1)::

    streams(id, call_id, kind, tenant, started, ended, status, params, labels, stats)
    finals(id, stream_id -> streams.id, channel, start_s, end_s, text, words, speech_final, received)
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread

from gateway.transcripts.records import FinalRecord, StreamInfo, StreamKind, StreamRecord, iso

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    id TEXT PRIMARY KEY,
    call_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    tenant TEXT NOT NULL,
    started TEXT NOT NULL,
    ended TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    params TEXT NOT NULL DEFAULT '{}',
    labels TEXT NOT NULL DEFAULT '[]',
    stats TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS streams_call ON streams(call_id);
CREATE INDEX IF NOT EXISTS streams_started ON streams(started);
CREATE TABLE IF NOT EXISTS finals (
    id INTEGER PRIMARY KEY,
    stream_id TEXT NOT NULL REFERENCES streams(id),
    channel INTEGER NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    text TEXT NOT NULL,
    words TEXT NOT NULL DEFAULT '[]',
    speech_final INTEGER NOT NULL DEFAULT 0,
    received TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS finals_stream ON finals(stream_id, start_s);
"""


@dataclass(frozen=True, slots=True)
class OpenStream:
    info: StreamInfo


@dataclass(frozen=True, slots=True)
class AddFinal:
    stream_id: str
    final: FinalRecord
    received: datetime


@dataclass(frozen=True, slots=True)
class EndStream:
    stream_id: str
    ended: datetime
    status: str
    stats: dict[str, Any] = field(default_factory=dict)


Write = OpenStream | AddFinal | EndStream


class TranscriptDatabase:
    """One blocking SQLite connection. Use from one thread at a time."""

    def __init__(self, path: str) -> None:
        if path in ("", ":memory:") or path.startswith("file:"):
            raise ValueError("the transcript store needs a file path (readers and the writer share it)")
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{path} has schema version {version}; this gateway knows {SCHEMA_VERSION}")
        if version < SCHEMA_VERSION:
            self.conn.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")

    def close(self) -> None:
        self.conn.close()

    # -- writes ---------------------------------------------------------------

    def apply(self, writes: Sequence[Write]) -> None:
        """Commit ``writes`` in one transaction (all or none)."""
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for write in writes:
                self._apply_one(cur, write)
        except BaseException:
            # SQLite has already rolled back after some errors (SQLITE_FULL: a full disk); a
            # second ROLLBACK would raise "no transaction is active" and hide the real error.
            if self.conn.in_transaction:
                cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def _apply_one(self, cur: sqlite3.Cursor, write: Write) -> None:
        if isinstance(write, OpenStream):
            info = write.info
            cur.execute(
                "INSERT INTO streams (id, call_id, kind, tenant, started, params, labels) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    info.stream_id,
                    info.call_id,
                    info.kind.value,
                    info.tenant,
                    iso(info.started),
                    json.dumps(info.params),
                    json.dumps(list(info.labels)),
                ),
            )
        elif isinstance(write, AddFinal):
            f = write.final
            cur.execute(
                "INSERT INTO finals (stream_id, channel, start_s, end_s, text, words, speech_final, received) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    write.stream_id,
                    f.channel,
                    f.start,
                    f.end,
                    f.text,
                    json.dumps(list(f.words)),
                    int(f.speech_final),
                    iso(write.received),
                ),
            )
        else:
            cur.execute(
                "UPDATE streams SET ended = ?, status = ?, stats = ? WHERE id = ?",
                (iso(write.ended), write.status, json.dumps(write.stats), write.stream_id),
            )
            if cur.rowcount != 1:
                raise sqlite3.IntegrityError(f"no stream {write.stream_id!r} to end")

    # -- reads ----------------------------------------------------------------

    def stream(self, stream_id: str, tenant: str | None = None) -> StreamRecord | None:
        """One stream (None if absent, or another tenant's when ``tenant`` is given)."""
        row = self.conn.execute("SELECT * FROM streams WHERE id = ?", (stream_id,)).fetchone()
        if row is None:
            return None
        record = _stream_record(row)
        return record if tenant is None or record.info.tenant == tenant else None

    def streams(self, tenant: str | None = None, call_id: str | None = None, limit: int = 100) -> list[StreamRecord]:
        """Newest streams first."""
        sql, args = "SELECT * FROM streams WHERE 1=1", []
        if tenant is not None:
            sql += " AND tenant = ?"
            args.append(tenant)
        if call_id is not None:
            sql += " AND call_id = ?"
            args.append(call_id)
        sql += " ORDER BY started DESC, id LIMIT ?"
        return [_stream_record(row) for row in self.conn.execute(sql, (*args, limit))]

    def finals(self, stream_id: str) -> list[FinalRecord]:
        """Every final of a stream, in time order."""
        rows = self.conn.execute(
            "SELECT channel, start_s, end_s, text, words, speech_final FROM finals "
            "WHERE stream_id = ? ORDER BY start_s, channel, id",
            (stream_id,),
        )
        return [
            FinalRecord(channel, start, end, text, tuple(json.loads(words)), bool(speech_final))
            for channel, start, end, text, words, speech_final in rows
        ]


def _stream_record(row: tuple[Any, ...]) -> StreamRecord:
    stream_id, call_id, kind, tenant, started, ended, status, params, labels, stats = row
    info = StreamInfo(
        stream_id=stream_id,
        call_id=call_id,
        kind=StreamKind(kind),
        tenant=tenant,
        labels=tuple(json.loads(labels)),
        started=datetime.fromisoformat(started),
        params=json.loads(params),
    )
    return StreamRecord(info, datetime.fromisoformat(ended) if ended else None, status, json.loads(stats))


@dataclass(slots=True)
class _Pending:
    write: Write
    done: asyncio.Future[None]


class TranscriptStore:
    """The asyncio side: one writer task, group commits, reads off the loop."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer: TranscriptDatabase | None = None
        self._reader: TranscriptDatabase | None = None
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._write_limiter = anyio.CapacityLimiter(1)
        self._read_limiter = anyio.CapacityLimiter(1)
        self.commits = 0
        self.writes = 0

    @property
    def running(self) -> bool:
        """Started and not yet closed."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Open (and create) the database and start the writer task."""
        self._writer = await anyio.to_thread.run_sync(TranscriptDatabase, self.path)
        self._reader = await anyio.to_thread.run_sync(TranscriptDatabase, self.path)
        self._task = asyncio.create_task(self._run(), name="transcript-store")

    async def aclose(self) -> None:
        """Commit what is queued, then close."""
        task, self._task = self._task, None
        if task is not None:
            self._queue.put_nowait(None)
            await task
        for db in (self._writer, self._reader):
            if db is not None:
                await anyio.to_thread.run_sync(db.close)
        self._writer = self._reader = None

    async def write(self, write: Write) -> None:
        """Queue ``write`` and return once it is committed (raises sqlite3.Error if it failed)."""
        if self._task is None:
            raise RuntimeError("the transcript store is not running")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(write, done))
        await done

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            first = await self._queue.get()
            batch: list[_Pending] = []
            if first is None:
                stopping = True
            else:
                batch.append(first)
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        db = self._writer
        assert db is not None
        try:
            await anyio.to_thread.run_sync(db.apply, [p.write for p in batch], limiter=self._write_limiter)
        except Exception as exc:
            # Hand the error to the stream that made the write; the writer goes on.
            if len(batch) == 1:
                _settle(batch[0], exc)
                return
            # Find the culprit: each write alone, so the good ones still land.
            for pending in batch:
                await self._commit([pending])
            return
        self.commits += 1
        self.writes += len(batch)
        for pending in batch:
            _settle(pending, None)

    # -- reads ----------------------------------------------------------------

    async def stream(self, stream_id: str, tenant: str | None = None) -> StreamRecord | None:
        db = self._db()
        return await anyio.to_thread.run_sync(db.stream, stream_id, tenant, limiter=self._read_limiter)

    async def streams(
        self, tenant: str | None = None, call_id: str | None = None, limit: int = 100
    ) -> list[StreamRecord]:
        db = self._db()
        return await anyio.to_thread.run_sync(db.streams, tenant, call_id, limit, limiter=self._read_limiter)

    async def finals(self, stream_id: str) -> list[FinalRecord]:
        db = self._db()
        return await anyio.to_thread.run_sync(db.finals, stream_id, limiter=self._read_limiter)

    def _db(self) -> TranscriptDatabase:
        if self._reader is None:
            raise RuntimeError("the transcript store is not running")
        return self._reader


def _settle(pending: _Pending, error: Exception | None) -> None:
    if pending.done.done():
        return  # the stream stopped waiting (server shutdown): nobody to tell
    if error is None:
        pending.done.set_result(None)
    else:
        pending.done.set_exception(error)
