"""The rate limit shared between workers (``SOURCING_RATE_LIMIT_STORAGE``): two apps, as two
workers, and a separate process count against one window on a real Redis server; a store that
cannot be reached lets requests through and says so; a store that cannot keep a moving window is
refused at start-up, naming the variable."""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from fastapi.testclient import TestClient
from limits import parse

from api.app import create_app
from api.security import SharedWindow
from tests.conftest import REPO

REDIS = shutil.which("redis-server")
INSTALL = "needs redis-server (Debian: apt-get install redis-server); CI installs it in .ci/run"
if REDIS is None and os.environ.get("SOURCING_REQUIRE_REDIS"):
    raise RuntimeError(f"SOURCING_REQUIRE_REDIS is set but {INSTALL}")
needs_redis = pytest.mark.skipif(REDIS is None, reason=INSTALL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def redis_server():
    """A throwaway Redis on a free local port, nothing written to disk."""
    import redis

    port = free_port()
    server = subprocess.Popen([REDIS, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.STDOUT)
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            raise RuntimeError("redis-server did not start")
        yield f"redis://127.0.0.1:{port}/0", client
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture()
def redis_uri(redis_server):
    uri, client = redis_server
    client.flushdb()  # each test starts with no window
    return uri


@needs_redis
def test_two_workers_count_against_one_window(demo_services, demo_settings, tmp_path,
                                              redis_uri):
    def worker(name: str):
        settings = demo_settings.model_copy(update={
            "rate_limit": "5/minute", "rate_limit_storage": redis_uri,
            "runs_db": tmp_path / f"{name}.sqlite3"})
        return TestClient(create_app(services=demo_services, settings=settings))

    with worker("a") as first, worker("b") as second:
        assert first.app.state.sourcing.guard.shared
        answers = [(first if turn % 2 == 0 else second).get("/v1/markets") for turn in range(8)]
        codes = [answer.status_code for answer in answers]
        # in-process windows would have let each worker answer 5 (8 in all)
        assert codes == [200] * 5 + [429] * 3
        assert 1 <= int(answers[-1].headers["retry-after"]) <= 60
        assert "rate limit of 5 per 1 minute exceeded" in answers[-1].json()["detail"]
        assert second.get("/healthz").status_code == 200  # probes are never limited


@needs_redis
def test_another_process_counts_in_the_same_window(redis_uri):
    script = textwrap.dedent(f"""
        from limits import parse
        from api.security import SharedWindow
        window = SharedWindow({redis_uri!r}, parse("5/minute"))
        print([window.hit("key:shared") for _ in range(3)])
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[None, None, None]"
    window = SharedWindow(redis_uri, parse("5/minute"))
    assert [window.hit("key:shared") is None for _ in range(3)] == [True, True, False]
    assert 0 < window.hit("key:shared") <= 60
    assert window.hit("key:other") is None  # callers are counted apart


def test_unreachable_store_serves_and_logs_once(demo_services, demo_settings, tmp_path, caplog):
    settings = demo_settings.model_copy(update={
        "rate_limit": "2/minute", "rate_limit_storage": f"redis://127.0.0.1:{free_port()}/0",
        "runs_db": tmp_path / "runs.sqlite3"})
    with caplog.at_level(logging.WARNING, logger="sourcing.api"):
        with TestClient(create_app(services=demo_services, settings=settings)) as client:
            codes = [client.get("/v1/markets").status_code for _ in range(4)]
    assert codes == [200] * 4
    messages = [record.getMessage() for record in caplog.records]
    assert sum("cannot be reached yet" in message for message in messages) == 1  # at start-up
    assert sum("serving without a limit" in message for message in messages) == 1  # once a minute


@pytest.mark.parametrize("uri", ["memcached://127.0.0.1:11211", "memory://", "localhost:6379",
                                 "async+redis://127.0.0.1:6379"])
def test_a_store_without_a_shared_moving_window_is_refused(uri):
    from api.settings import Settings

    with pytest.raises(ValueError, match="SOURCING_RATE_LIMIT_STORAGE"):
        Settings(rate_limit_storage=uri)


@pytest.mark.skipif(importlib.util.find_spec("pymongo") is not None,
                    reason="pymongo is installed here")
# limits' half-made MongoDB storage fails in its own __del__ after refusing; nothing of ours
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_store_whose_client_is_not_installed_is_refused_naming_the_variable(demo_settings):
    from api.security import AccessGuard

    settings = demo_settings.model_copy(update={"rate_limit_storage": "mongodb://127.0.0.1:1"})
    with pytest.raises(ValueError, match="SOURCING_RATE_LIMIT_STORAGE: .*pymongo"):
        AccessGuard(settings)
