"""Helpers for the HTTP API tests: a real uvicorn server in a thread, photo bytes to upload."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from PIL import Image

from tests.conftest import DEMO_CATALOG

QUERY_PHOTO = DEMO_CATALOG / "queries" / "mh01-gray_back.jpg"  # reserved: in no listing
QUERY_SUPPLIER = "S013"  # its source factory (evals/sets/demo_reserved/demo_reserved.jsonl)


@contextmanager
def live_server(app) -> Iterator[str]:
    """Serve ``app`` on a free local port for the duration; yields the base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(600):
        if server.started:
            break
        threading.Event().wait(0.05)
    else:
        raise RuntimeError("the test server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def jpeg_bytes(size: tuple[int, int] = (64, 48), color=(200, 40, 40), **save) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG", **save)
    return buffer.getvalue()
