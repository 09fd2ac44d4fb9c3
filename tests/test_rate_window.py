"""The per-caller moving window behind the API's rate limit, on a hand-driven clock."""

from __future__ import annotations

import threading

from api.security import MovingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_at_most_amount_hits_in_any_window():
    clock = Clock()
    window = MovingWindow(3, 60, clock=clock)
    assert [window.hit("a") for _ in range(3)] == [None, None, None]
    assert window.hit("a") == 60  # the oldest hit leaves the window in 60 s
    clock.now += 20
    assert window.hit("a") == 40
    assert window.hit("b") is None  # callers are counted apart
    clock.now += 40.5  # the first three hits have left the window
    assert window.hit("a") is None


def test_refused_hits_do_not_count_and_idle_callers_are_dropped():
    clock = Clock()
    window = MovingWindow(2, 10, clock=clock)
    window.hit("a"), window.hit("a")
    for _ in range(5):
        assert window.hit("a") is not None
    clock.now += 10.5
    assert window.hit("a") is None and window.hit("a") is None
    window.hit("b")
    clock.now += 11  # a and b are now idle for a whole window
    window.SWEEP_EVERY = 1  # sweep on the next hit
    window.hit("c")
    assert set(window._hits) == {"c"}


def test_threads_share_one_count():
    window = MovingWindow(100, 60)
    allowed = []

    def burst() -> None:
        allowed.extend(window.hit("a") is None for _ in range(50))

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(allowed) == 100
