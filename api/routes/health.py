"""Liveness and readiness probes (never rate-limited, never behind an API key)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import StateDep
from api.models import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process answers")
async def healthz(state: StateDep) -> Health:
    """Answered on the event loop from memory: it stays quick while runs work in threads."""
    return Health(runs_in_flight=state.queue.in_flight)


@router.get("/readyz", response_model=Readiness, summary="Catalog, index and models are loaded",
            responses={503: {"model": Readiness, "description": "Not ready yet"}})
async def readyz(state: StateDep):
    services = state.services
    if services is None:
        detail = state.load_error or "loading the catalog, index and models"
        return JSONResponse(Readiness(ready=False, detail=detail).model_dump(), status_code=503)
    photos = len(services.index)
    if photos == 0:
        return JSONResponse(Readiness(ready=False, detail="the image index is empty",
                                      listings=len(services.catalog.listings),
                                      indexed_photos=0).model_dump(), status_code=503)
    return Readiness(ready=True, detail="ready", listings=len(services.catalog.listings),
                     indexed_photos=photos)
