"""``bench/load.py`` against a live server on the demo catalog: every answer counted by status,
latencies only for answers; the main entry point reports and exits 0 when all were 200."""

from __future__ import annotations

import httpx

from api.app import create_app
from bench.load import load, main
from tests.api_support import QUERY_PHOTO, live_server


def test_load_counts_every_answer(demo_services, demo_settings, tmp_path, capsys):
    settings = demo_settings.model_copy(update={"runs_db": tmp_path / "runs.sqlite3",
                                                "rate_limit": "3/minute"})
    photos = [(QUERY_PHOTO.name, QUERY_PHOTO.read_bytes())]
    with live_server(create_app(services=demo_services, settings=settings)) as base:
        warm = httpx.post(f"{base}/v1/search/image", files={"image": photos[0]}, timeout=120)
        assert warm.status_code == 200  # the first search is the slow one; 2 of 3 left
        latencies, statuses, lasted = load(base, "search", photos, clients=2, seconds=1.5)
        # two more answered, the rest refused by the rate limit: each counted under its status
        assert statuses[200] == 2 and statuses[429] >= 1 and "error" not in statuses
        assert len(latencies) == sum(statuses.values()) and lasted >= 1.5
        assert main(["--url", base, "--route", "search", "--clients", "1", "--seconds", "0.5",
                     "--photos", "2"]) == 1  # 429s only now: not every answer was a 200
    report = capsys.readouterr().out
    assert "by status: {429:" in report


def test_load_reports_a_server_that_is_not_there(capsys):
    assert main(["--url", "http://127.0.0.1:9", "--clients", "1", "--seconds", "0.3",
                 "--photos", "1"]) == 1
    captured = capsys.readouterr()
    assert "'error':" in captured.out and "is the server up" in captured.err
