"""FastAPI dependencies as ``Annotated`` aliases, so routes read like sentences."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from agents.context import Services
from api.security import Caller
from api.state import AppState


def get_state(request: Request) -> AppState:
    return request.app.state.sourcing


def get_services(state: Annotated[AppState, Depends(get_state)]) -> Services:
    if state.services is None:
        detail = state.load_error or "the catalog, index and models are still loading"
        raise HTTPException(503, detail, headers={"Retry-After": "5"})
    return state.services


def get_caller(request: Request, state: Annotated[AppState, Depends(get_state)]) -> Caller:
    return state.guard(request)


StateDep = Annotated[AppState, Depends(get_state)]
ServicesDep = Annotated[Services, Depends(get_services)]
CallerDep = Annotated[Caller, Depends(get_caller)]
