"""FastAPI dependencies as ``Annotated`` aliases, so routes read like sentences."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import Depends, HTTPException, Request

from agents.context import Services
from api.security import Caller
from api.state import AppState


# ``async def`` although nothing here awaits: FastAPI runs a plain ``def`` dependency in its
# thread pool, and three hand-overs to a worker thread and back cost a small request more than
# its own work (none of these blocks: attribute reads, key comparison, an in-memory rate window;
# a shared rate window is a network round trip, and that one check goes to a thread)


def app_state(request: Request) -> AppState:
    return request.app.state.sourcing


async def get_state(request: Request) -> AppState:
    return app_state(request)


# services and caller read the state themselves rather than through ``Depends(get_state)``: each
# level of dependencies is one more solve for FastAPI on every request (about 15 µs each)
async def get_services(request: Request) -> Services:
    state = app_state(request)
    if state.services is None:
        detail = state.load_error or "the catalog, index and models are still loading"
        raise HTTPException(503, detail, headers={"Retry-After": "5"})
    return state.services


async def get_caller(request: Request) -> Caller:
    state = app_state(request)
    if state.guard.shared:  # a round trip to the shared rate-limit store: off the event loop
        return await to_thread.run_sync(state.guard, request)
    return state.guard(request)


StateDep = Annotated[AppState, Depends(get_state)]
ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]
