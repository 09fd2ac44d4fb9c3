"""Who is calling and how often: optional API keys (401 / 403) and per-caller rate limits (429).

Keys come from ``SOURCING_API_KEYS`` (comma-separated) and are sent as ``X-API-Key: KEY`` or
``Authorization: Bearer KEY``. With no keys set the API is open and the rate limit applies per
client address. Limits use the ``limits`` package's moving window, kept in memory per process.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from dataclasses import dataclass

from fastapi import HTTPException, Request
from limits import parse, storage, strategies

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


class AccessGuard:
    def __init__(self, settings: Settings) -> None:
        self.keys = settings.api_key_list
        self.rate = parse(settings.rate_limit)
        self.limiter = strategies.MovingWindowRateLimiter(storage.MemoryStorage())

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
        if self.limiter.hit(self.rate, caller.limit_id):
            return
        reset, _ = self.limiter.get_window_stats(self.rate, caller.limit_id)
        retry = max(1, math.ceil(reset - time.time()))
        raise HTTPException(429, f"rate limit of {self.rate} exceeded; retry in {retry} s",
                            headers={"Retry-After": str(retry)})

    def __call__(self, request: Request) -> Caller:
        caller = self.identify(request)
        self.check_rate(caller)
        return caller
