"""Who is calling and how often: optional API keys (401 / 403) and per-caller rate limits (429).

Keys come from ``SOURCING_API_KEYS`` (comma-separated) and are sent as ``X-API-Key: KEY`` or
``Authorization: Bearer KEY``. With no keys set the API is open and the rate limit applies per
client address. The rate is written in the ``limits`` package's notation and enforced as a moving
window kept in memory per process (:class:`MovingWindow`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request
from limits import parse

from api.settings import Settings


@dataclass(frozen=True)
class Caller:
    """The caller of one request. ``key_id`` (a hash, never the key) scopes stored runs."""

    key_id: str | None
    address: str

    @property
    def limit_id(self) -> str:
        return f"key:{self.key_id}" if self.key_id else f"addr:{self.address}"


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class MovingWindow:
    """At most ``amount`` hits per caller in any ``seconds``: the times of each caller's hits in
    the last window, oldest first.

    Kept here rather than in ``limits``' in-memory storage, which starts a timer thread to
    expire old entries whenever its previous one has finished (10 ms after each hit): below a
    hundred requests a second that is a new thread per request, about a millisecond each on a
    busy 2-core machine. Here old entries go when their caller is next seen, and callers idle
    for a whole window are dropped every ``SWEEP_EVERY`` hits.
    """

    SWEEP_EVERY = 1024

    def __init__(self, amount: int, seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.amount, self.seconds, self._clock = int(amount), float(seconds), clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._count = 0

    def hit(self, caller: str) -> float | None:
        """Count a hit; ``None`` when allowed, else the seconds until one would be."""
        now = self._clock()
        start = now - self.seconds
        with self._lock:
            self._count += 1
            if self._count % self.SWEEP_EVERY == 0:
                self._sweep(start)
            times = self._hits.setdefault(caller, deque())
            while times and times[0] <= start:
                times.popleft()
            if len(times) >= self.amount:
                return times[0] - start
            times.append(now)
            return None

    def _sweep(self, start: float) -> None:
        for caller in [c for c, times in self._hits.items() if not times or times[-1] <= start]:
            del self._hits[caller]


class AccessGuard:
    def __init__(self, settings: Settings) -> None:
        self.keys = settings.api_key_list
        self.rate = parse(settings.rate_limit)
        self.window = MovingWindow(self.rate.amount, self.rate.get_expiry())

    def identify(self, request: Request) -> Caller:
        address = request.client.host if request.client else "unknown"
        if not self.keys:
            return Caller(None, address)
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if key is None and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        if not key:
            raise HTTPException(401, "an API key is required: send it as X-API-Key or "
                                     "Authorization: Bearer", headers={"WWW-Authenticate": "Bearer"})
        if not any(hmac.compare_digest(key.encode(), known.encode()) for known in self.keys):
            raise HTTPException(403, "the API key is not valid")
        return Caller(key_id(key), address)

    def check_rate(self, caller: Caller) -> None:
        wait = self.window.hit(caller.limit_id)
        if wait is None:
            return
        retry = max(1, math.ceil(wait))
        raise HTTPException(429, f"rate limit of {self.rate} exceeded; retry in {retry} s",
                            headers={"Retry-After": str(retry)})

    def __call__(self, request: Request) -> Caller:
        caller = self.identify(request)
        self.check_rate(caller)
        return caller
