"""The run store: every run's request, status, progress events, result and timings in SQLite.

WAL mode lets readers (``GET /v1/runs``, the event stream) go on while a run writes. A run is
``queued`` -> ``running`` -> ``succeeded`` | ``failed``. Each row names the process that owns it
(host, pid, a per-start token); on start-up a store marks ``failed`` the unfinished runs whose
owner is gone (this process's earlier life, or a dead process on this host), so a run cut short by
a crash is reported, never lost silently. Runs of a live process beside this one are left alone.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL,
    market TEXT NOT NULL,
    image_sha256 TEXT,
    image_name TEXT,
    request TEXT NOT NULL,
    result TEXT,
    timings TEXT,
    error TEXT,
    client TEXT,
    owner TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX IF NOT EXISTS runs_client ON runs(client, seq);
"""
UNFINISHED = ("queued", "running")
FINISHED = ("succeeded", "failed")
INTERRUPTED = "interrupted: the server stopped before the run finished"
CANCELLED = "cancelled: the server shut down before the run started"
BUSY_TIMEOUT_S = 30.0  # how long a connection waits for another one's write lock


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class RunRecord:
    id: str
    seq: int
    created_at: str
    updated_at: str
    status: str
    market: str
    image_sha256: str | None
    image_name: str | None
    request: dict[str, Any]
    result: dict[str, Any] | None
    timings: dict[str, float] | None
    error: str | None

    def summary(self) -> dict[str, Any]:
        """The record without its (large) result."""
        return {"id": self.id, "status": self.status, "created_at": self.created_at,
                "updated_at": self.updated_at, "market": self.market,
                "image_sha256": self.image_sha256, "image_name": self.image_name,
                "error": self.error, "timings": self.timings}

    def public(self) -> dict[str, Any]:
        return {**self.summary(), "request": self.request, "result": self.result}


@dataclass(frozen=True)
class RunEvent:
    seq: int
    at: str
    event: str
    data: dict[str, Any]


def _owner_alive(owner: str, me: str) -> bool:
    """Whether the process named by ``owner`` (``host:pid:token``) is another live process."""
    try:
        host, pid_text, _token = owner.split(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if owner == me:
        return True
    if host != socket.gethostname():
        return True  # another host cannot be checked from here: its runs stay as they are
    if pid == os.getpid():
        return False  # an earlier life of this process id
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """Runs in one SQLite file (WAL). Thread-safe: each call opens its own connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self._set_up()
        self.recovered = self._fail_orphans()

    def _set_up(self) -> None:
        """The file in WAL mode, with its tables. Workers started together (``uvicorn
        --workers N``) race to switch a new file to WAL, and SQLite answers the losers "database
        is locked" at once, without waiting on its busy timeout; measured, 6 of 80 processes
        starting four at a time failed so. The switch is therefore retried for as long as a
        connection would wait for a lock; once the file is in WAL mode (kept in the file), it
        is not switched again."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                with self._connect() as db:
                    mode = db.execute("PRAGMA journal_mode").fetchone()[0]
                    if mode != "wal":
                        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                    if mode != "wal":  # SQLite keeps the old mode where WAL cannot work
                        raise RuntimeError(f"runs database {self.path}: SQLite cannot keep it in "
                                           f"WAL mode (it stays {mode!r}); put SOURCING_RUNS_DB "
                                           "on a local disk")
                    db.executescript(SCHEMA)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA foreign_keys=ON")
        try:
            with db:
                yield db
        finally:
            db.close()

    def _fail_orphans(self) -> list[str]:
        """Mark failed the unfinished runs whose owner process is gone; their ids."""
        with self._connect() as db:
            rows = db.execute("SELECT id, owner FROM runs WHERE status IN (?, ?)",
                              UNFINISHED).fetchall()
            orphans = [row["id"] for row in rows if not _owner_alive(row["owner"], self.owner)]
            for run_id in orphans:
                db.execute("UPDATE runs SET status='failed', error=?, updated_at=? WHERE id=?",
                           (INTERRUPTED, now_iso(), run_id))
                self._add_event(db, run_id, "failed", {"error": INTERRUPTED})
        return orphans

    # -- writing ----------------------------------------------------------------------------

    def create(self, request: dict[str, Any], client: str | None = None) -> str:
        run_id = uuid.uuid4().hex
        stamp = now_iso()
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs (id, created_at, updated_at, status, market, image_sha256, "
                "image_name, request, client, owner) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
                (run_id, stamp, stamp, request["market"], request.get("image_sha256"),
                 request.get("image_name"), json.dumps(request), client, self.owner))
            self._add_event(db, run_id, "queued", {})
        return run_id

    def set_running(self, run_id: str) -> None:
        self._set(run_id, "running", event=("running", {}))

    def succeed(self, run_id: str, result: dict[str, Any]) -> None:
        timings = result.get("timings") if isinstance(result.get("timings"), dict) else None
        with self._connect() as db:
            db.execute("UPDATE runs SET status='succeeded', result=?, timings=?, updated_at=? "
                       "WHERE id=?", (json.dumps(result), json.dumps(timings), now_iso(), run_id))
            self._add_event(db, run_id, "succeeded", {"timings": timings})

    def fail(self, run_id: str, error: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE runs SET status='failed', error=?, updated_at=? WHERE id=?",
                       (error, now_iso(), run_id))
            self._add_event(db, run_id, "failed", {"error": error})

    def cancel_queued(self) -> int:
        """Mark failed this process's runs that never started (at shutdown); how many."""
        with self._connect() as db:
            ids = [row["id"] for row in db.execute(
                "SELECT id FROM runs WHERE status='queued' AND owner=?", (self.owner,))]
            for run_id in ids:
                db.execute("UPDATE runs SET status='failed', error=?, updated_at=? WHERE id=?",
                           (CANCELLED, now_iso(), run_id))
                self._add_event(db, run_id, "failed", {"error": CANCELLED})
        return len(ids)

    def add_event(self, run_id: str, event: str, data: dict[str, Any]) -> None:
        with self._connect() as db:
            self._add_event(db, run_id, event, data)

    def delete(self, run_id: str, client: str | None = None) -> bool:
        with self._connect() as db:
            cursor = db.execute("DELETE FROM runs WHERE id=? AND (? IS NULL OR client IS ?)",
                                (run_id, client, client))
            return cursor.rowcount > 0

    def _set(self, run_id: str, status: str, event: tuple[str, dict[str, Any]]) -> None:
        with self._connect() as db:
            db.execute("UPDATE runs SET status=?, updated_at=? WHERE id=?",
                       (status, now_iso(), run_id))
            self._add_event(db, run_id, *event)

    @staticmethod
    def _add_event(db: sqlite3.Connection, run_id: str, event: str, data: dict[str, Any]) -> None:
        db.execute("INSERT INTO run_events (run_id, seq, at, event, data) VALUES (?, "
                   "(SELECT COALESCE(MAX(seq), 0) + 1 FROM run_events WHERE run_id=?), ?, ?, ?)",
                   (run_id, run_id, now_iso(), event, json.dumps(data)))

    # -- reading ----------------------------------------------------------------------------

    def get(self, run_id: str, client: str | None = None) -> RunRecord | None:
        """The run, or None when unknown (or owned by another API key than ``client``)."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id=? AND (? IS NULL OR client IS ?)",
                             (run_id, client, client)).fetchone()
        return _record(row) if row else None

    def page(self, limit: int, before: int | None = None,
             client: str | None = None) -> tuple[list[RunRecord], int | None]:
        """Up to ``limit`` runs, newest first, older than cursor ``before``; and the next cursor."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM runs WHERE (? IS NULL OR seq < ?) AND (? IS NULL OR client IS ?) "
                "ORDER BY seq DESC LIMIT ?",
                (before, before, client, client, limit + 1)).fetchall()
        records = [_record(row) for row in rows[:limit]]
        return records, (records[-1].seq if len(rows) > limit else None)

    def events(self, run_id: str, after: int = 0) -> list[RunEvent]:
        with self._connect() as db:
            rows = db.execute("SELECT seq, at, event, data FROM run_events WHERE run_id=? AND "
                              "seq > ? ORDER BY seq", (run_id, after)).fetchall()
        return [RunEvent(row["seq"], row["at"], row["event"], json.loads(row["data"]))
                for row in rows]

    def count(self, statuses: tuple[str, ...] = UNFINISHED) -> int:
        marks = ", ".join("?" for _ in statuses)
        with self._connect() as db:
            return db.execute(f"SELECT COUNT(*) FROM runs WHERE status IN ({marks})",
                              statuses).fetchone()[0]


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"], seq=row["seq"], created_at=row["created_at"], updated_at=row["updated_at"],
        status=row["status"], market=row["market"], image_sha256=row["image_sha256"],
        image_name=row["image_name"], request=json.loads(row["request"]),
        result=json.loads(row["result"]) if row["result"] else None,
        timings=json.loads(row["timings"]) if row["timings"] else None, error=row["error"])
