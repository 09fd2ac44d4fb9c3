"""Who is calling and how often: optional API keys (401 / 403) and per-caller rate limits (429).

Keys come from ``SOURCING_API_KEYS`` (comma-separated) and are sent as ``X-API-Key: KEY`` or
``Authorization: Bearer KEY``. With no keys set the API is open and the rate limit applies per
client address. The rate is written in the ``limits`` package's notation and enforced as a moving
window: kept in memory per process by default (:class:`MovingWindow`; behind N workers a caller
then gets N times the rate), or in a store every worker and host shares when
``SOURCING_RATE_LIMIT_STORAGE`` names one (:class:`SharedWindow`, ``limits``' own storage and
moving-window limiter, e.g. on Redis).

When the shared store cannot be reached, requests are served without a limit and the outage is
logged (at most once a minute): the limiter must not take the API down with it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request
from limits import RateLimitItem, parse
from limits.errors import ConfigurationError, StorageError

from api.settings import Settings

log = logging.getLogger("sourcing.api")


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


class SharedWindow:
    """The moving window of :class:`MovingWindow`, kept in a store that every worker and host
    reaches (``limits``' storage named by ``uri``, its ``MovingWindowRateLimiter``), so that a
    caller gets the rate once across all of them. Each hit is one round trip to the store;
    ``hit`` raises ``limits.errors.StorageError`` when the store cannot answer."""

    NAMESPACE = "sourcing-api"
    TIMEOUT_S = 0.5  # a store that does not answer in this long counts as down

    def __init__(self, uri: str, rate: RateLimitItem) -> None:
        from limits.storage import storage_from_string
        from limits.strategies import MovingWindowRateLimiter

        timeouts: dict[str, float] = {}
        if uri.startswith(("redis", "valkey")):  # options of the redis / valkey client
            timeouts = {"socket_timeout": self.TIMEOUT_S,
                        "socket_connect_timeout": self.TIMEOUT_S}
        self.rate = rate
        try:
            self.storage = storage_from_string(uri, wrap_exceptions=True, **timeouts)
        except ConfigurationError as exc:  # e.g. valkey:// or mongodb:// without its client
            raise ValueError(f"SOURCING_RATE_LIMIT_STORAGE: {exc}") from None
        self._limiter = MovingWindowRateLimiter(self.storage)

    def reachable(self) -> bool:
        return bool(self.storage.check())

    def hit(self, caller: str) -> float | None:
        """Count a hit; ``None`` when allowed, else the seconds until one would be."""
        if self._limiter.hit(self.rate, self.NAMESPACE, caller):
            return None
        reset_at = self._limiter.get_window_stats(self.rate, self.NAMESPACE, caller).reset_time
        return max(0.0, reset_at - time.time())


class AccessGuard:
    OUTAGE_LOG_EVERY_S = 60.0

    def __init__(self, settings: Settings) -> None:
        self.keys = settings.api_key_list
        self.rate = parse(settings.rate_limit)
        self.window: MovingWindow | SharedWindow
        if settings.rate_limit_storage:
            self.window = SharedWindow(settings.rate_limit_storage, self.rate)
            if not self.window.reachable():
                log.warning("the rate-limit store SOURCING_RATE_LIMIT_STORAGE cannot be reached "
                            "yet; requests go unlimited until it can")
        else:
            self.window = MovingWindow(self.rate.amount, self.rate.get_expiry())
        self._outage_logged_at = -math.inf

    @property
    def shared(self) -> bool:
        """The windows live in a store shared with other workers (a network round trip a
        request: the caller runs the check off the event loop)."""
        return isinstance(self.window, SharedWindow)

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
        try:
            wait = self.window.hit(caller.limit_id)
        except StorageError as exc:
            self._store_down(exc)
            return
        if wait is None:
            return
        retry = max(1, math.ceil(wait))
        raise HTTPException(429, f"rate limit of {self.rate} exceeded; retry in {retry} s",
                            headers={"Retry-After": str(retry)})

    def _store_down(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._outage_logged_at >= self.OUTAGE_LOG_EVERY_S:
            self._outage_logged_at = now
            log.warning("rate-limit store unreachable, serving without a limit: %s",
                        getattr(exc, "storage_error", exc))

    def __call__(self, request: Request) -> Caller:
        caller = self.identify(request)
        self.check_rate(caller)
        return caller
