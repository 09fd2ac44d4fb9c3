"""Shared fixtures. Real model calls are blocked: no test may reach an LLM endpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
for variable in ("SOURCING_LLM_BASE_URL", "SOURCING_LLM_API_KEY", "OPENAI_API_KEY",
                 "OPENAI_BASE_URL"):
    os.environ.pop(variable, None)

REPO = Path(__file__).resolve().parents[1]
DEMO_CATALOG = REPO / "data" / "catalogs" / "demo"
DEMO_SET = REPO / "evals" / "sets" / "demo_reserved" / "demo_reserved.jsonl"


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory):
    """Settings for the bundled demo catalog with the index built into a temporary folder."""
    from api.settings import Settings

    return Settings(index_dir=tmp_path_factory.mktemp("index") / "demo")


@pytest.fixture(scope="session")
def demo_services(demo_settings):
    """The real services on the demo catalog (descriptor embedder, MiniLM, rules, Amazon US)."""
    from api.services import build_services

    return build_services(demo_settings, build_index_if_missing=True, progress=False)


@pytest.fixture(scope="session")
def demo_cases():
    from evals.sets import load_eval_set

    return load_eval_set(DEMO_SET)


@pytest.fixture
def refused_url() -> str:
    """A local address nothing listens on: a connection to it is refused at once."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def quiet_client(monkeypatch):
    """The Qdrant client's background version check would warn, after the test has ended, that
    a server nobody listens on has no version; the tests check the project's own error."""
    import functools

    import qdrant_client

    monkeypatch.setattr(qdrant_client, "QdrantClient",
                        functools.partial(qdrant_client.QdrantClient, check_compatibility=False))
