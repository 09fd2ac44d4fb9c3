"""The run store opened by several workers at once (``uvicorn --workers N`` on a new file): every
one of them starts, and the file ends in WAL mode with its tables."""

from __future__ import annotations

import multiprocessing
import sqlite3

from api.store import RunStore

WORKERS = 8
TRIALS = 12


def open_store(path: str, barrier, answers) -> None:
    barrier.wait()  # all open the new file at the same moment
    try:
        store = RunStore(path)
        store.create({"market": "US"})
        answers.put("ok")
    except Exception as exc:  # reported to the test, which names it
        answers.put(repr(exc))


def test_workers_starting_together_on_a_new_file_all_open_it(tmp_path):
    context = multiprocessing.get_context("spawn")  # nothing of the test process is inherited
    for trial in range(TRIALS):
        path = tmp_path / f"runs-{trial}.sqlite3"
        barrier, answers = context.Barrier(WORKERS), context.Queue()
        workers = [context.Process(target=open_store, args=(str(path), barrier, answers))
                   for _ in range(WORKERS)]
        for worker in workers:
            worker.start()
        outcomes = [answers.get(timeout=120) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        assert outcomes == ["ok"] * WORKERS, f"trial {trial}: {outcomes}"
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == WORKERS
