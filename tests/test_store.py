"""The durable transcript store and the fan-out that feeds it (no model needed)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.transcripts.fanout import DuplicateStream, Fanout
from gateway.transcripts.hub import Hub
from gateway.transcripts.records import FinalRecord, StreamInfo, StreamKind
from gateway.transcripts.store import AddFinal, EndStream, OpenStream, TranscriptDatabase, TranscriptStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def info(stream_id: str = "MZ1", call_id: str = "CA1", tenant: str = "default") -> StreamInfo:
    return StreamInfo(
        stream_id, call_id, StreamKind.TWILIO, tenant, ("customer", "agent"), NOW, {"tracks": ["inbound"]}
    )


def results(text: str, channel: int = 0, *, is_final: bool = True, start: float = 1.0) -> dict[str, Any]:
    ws = [
        {"word": w, "punctuated_word": w, "start": start + i * 0.3, "end": start + i * 0.3 + 0.25, "confidence": 0.9}
        for i, w in enumerate(text.split())
    ]
    return {
        "type": "Results",
        "channel_index": [channel, 2],
        "start": start - 0.2,
        "duration": 0.3 * len(ws) + 0.4,
        "is_final": is_final,
        "speech_final": is_final,
        "channel": {"alternatives": [{"transcript": text, "confidence": 0.9, "words": ws}]},
    }


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    store = TranscriptStore(str(tmp_path / "t.sqlite3"))
    await store.start()
    yield store
    await store.aclose()


def test_database_round_trip_and_wal(tmp_path: Path) -> None:
    db = TranscriptDatabase(str(tmp_path / "t.sqlite3"))
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    final = FinalRecord.from_results(results("hello there", channel=1))
    assert final is not None
    db.apply([OpenStream(info()), AddFinal("MZ1", final, NOW)])
    db.apply([EndStream("MZ1", NOW, "completed", {"late_chunks": 0})])
    db.close()
    again = TranscriptDatabase(str(tmp_path / "t.sqlite3"))  # schema is not re-created
    record = again.stream("MZ1")
    assert record is not None
    assert record.status == "completed"
    assert record.ended == NOW
    assert record.info.labels == ("customer", "agent")
    assert record.stats == {"late_chunks": 0}
    assert again.finals("MZ1") == [final]
    assert again.stream("MZ1", tenant="other") is None
    assert [r.info.stream_id for r in again.streams(call_id="CA1")] == ["MZ1"]
    assert again.streams(tenant="other") == []


def test_memory_databases_are_refused() -> None:
    with pytest.raises(ValueError, match="file path"):
        TranscriptDatabase(":memory:")


async def test_concurrent_writes_share_commits(store: TranscriptStore) -> None:
    await store.write(OpenStream(info()))
    finals = [FinalRecord(0, float(i), float(i) + 0.5, f"word {i}") for i in range(50)]
    await asyncio.gather(*(store.write(AddFinal("MZ1", f, NOW)) for f in finals))
    assert len(await store.finals("MZ1")) == 50
    assert store.writes == 51
    assert store.commits < store.writes, "queued writes are committed together"


async def test_a_bad_write_fails_alone(store: TranscriptStore) -> None:
    await store.write(OpenStream(info()))
    good = [store.write(AddFinal("MZ1", FinalRecord(0, i, i + 1, f"ok {i}"), NOW)) for i in range(3)]
    bad = store.write(OpenStream(info()))  # the same id again
    orphan = store.write(AddFinal("nope", FinalRecord(0, 0, 1, "x"), NOW))  # no such stream
    outcomes = await asyncio.gather(*good, bad, orphan, return_exceptions=True)
    assert outcomes[:3] == [None, None, None]
    assert isinstance(outcomes[3], sqlite3.IntegrityError)
    assert isinstance(outcomes[4], sqlite3.IntegrityError)
    assert [f.text for f in await store.finals("MZ1")] == ["ok 0", "ok 1", "ok 2"]


CRASHING_WRITER = textwrap.dedent(
    """
    import asyncio, os, sys
    from datetime import UTC, datetime
    from gateway.transcripts.records import FinalRecord, StreamInfo, StreamKind
    from gateway.transcripts.store import AddFinal, OpenStream, TranscriptStore

    async def main():
        store = TranscriptStore(sys.argv[1])
        await store.start()
        now = datetime.now(UTC)
        await store.write(OpenStream(StreamInfo("MZ1", "CA1", StreamKind.TWILIO, "t", ("customer",), now)))
        for i in range(20):
            await store.write(AddFinal("MZ1", FinalRecord(0, i, i + 1, f"final {i}"), now))
            print(i, flush=True)  # "sent": the final left the gateway
        os._exit(9)  # a crash: no close, no checkpoint, no cleanup

    asyncio.run(main())
    """
)


def test_a_crash_loses_no_final_that_was_sent(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite3"
    done = subprocess.run(
        [sys.executable, "-c", CRASHING_WRITER, str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 9, done.stderr
    sent = done.stdout.split()
    assert sent[-1] == "19"
    db = TranscriptDatabase(str(path))
    record = db.stream("MZ1")
    assert record is not None
    assert record.status == "active"
    assert record.ended is None
    assert [f.text for f in db.finals("MZ1")] == [f"final {i}" for i in sent]


# -- fan-out ------------------------------------------------------------------------


async def test_fanout_stores_finals_with_words_only_and_records_the_end(store: TranscriptStore) -> None:
    hub = Hub()
    fanout = Fanout(store, hub, None)
    subscription = hub.subscribe("CA1")
    await fanout.begin(info())
    await fanout.message("MZ1", results("hel", is_final=False))
    await fanout.message("MZ1", results("hello agent", channel=0))
    await fanout.message("MZ1", results("", channel=1))  # an empty final: nothing to keep
    await fanout.message("MZ1", results("how can I help", channel=1, start=3.0))
    await fanout.message("MZ1", {"type": "Metadata", "request_id": "MZ1"})
    await fanout.end("MZ1")
    stored = await store.finals("MZ1")
    assert [(f.channel, f.text) for f in stored] == [(0, "hello agent"), (1, "how can I help")]
    assert stored[0].start == pytest.approx(1.0), "stored times bound the words"
    record = await store.stream("MZ1")
    assert record is not None
    assert record.status == "completed"
    seen = []
    while (event := await subscription.next()) is not None:
        seen.append(event)
    kinds = [e["type"] for e in seen]
    assert kinds == [
        "StreamStarted",
        "Results",
        "Results",
        "Results",
        "Results",
        "Metadata",
        "StreamEnded",
        "CallEnded",
    ]
    assert [e.get("speaker") for e in seen if e["type"] == "Results"] == ["customer", "customer", "agent", "agent"]
    assert all(e["call_id"] == "CA1" for e in seen)


async def test_fanout_refuses_a_reused_stream_id(store: TranscriptStore) -> None:
    fanout = Fanout(store, Hub(), None)
    await fanout.begin(info())
    with pytest.raises(DuplicateStream, match="live"):
        await fanout.begin(info())
    await fanout.end("MZ1", "completed")
    with pytest.raises(DuplicateStream, match="stored"):
        await fanout.begin(info())


async def test_store_failure_is_counted_and_the_stream_goes_on(tmp_path: Path) -> None:
    store = TranscriptStore(str(tmp_path / "t.sqlite3"))
    await store.start()
    fanout = Fanout(store, Hub(), None)
    await fanout.begin(info())
    # Break the table under the writer: every later insert fails.
    db = sqlite3.connect(tmp_path / "t.sqlite3")
    db.execute("DROP TABLE finals")
    db.commit()
    db.close()
    await fanout.message("MZ1", results("lost words"))
    await fanout.end("MZ1", "completed")
    assert fanout.store_errors == 1
    await store.aclose()
