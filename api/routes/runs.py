"""Sourcing runs: start one from a photo, read, list and delete stored runs, follow progress."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from fastapi.sse import EventSourceResponse

from agents.compliance.rules import UnknownMarketError
from agents.market.trade import ShippingMode
from agents.shortlist.landed_cost import AIR_MAX_KG, EXPRESS_MAX_KG, MAX_SALE_PRICE
from agents.supplier_match.tools import Constraints
from api.deps import CallerDep, ServicesDep, StateDep
from api.jobs import RunRequest
from api.models import RunAccepted, RunDetail, RunPage, RunSummary
from api.routes import COMMON_ERRORS, NOT_FOUND, UPLOAD_ERRORS
from api.store import FINISHED
from api.uploads import UploadError, check_photo

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=COMMON_ERRORS)

POLL_S = 0.2  # how often a live event stream looks for new events
KEEPALIVE_S = 15.0


def parse_json_object(raw: str | None, field: str) -> dict[str, Any]:
    if raw is None or not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise HTTPException(422, f"{field}: not valid JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(value, dict):
        raise HTTPException(422, f"{field}: expected a JSON object, got {type(value).__name__}")
    return value


def check_weights(raw: dict[str, Any]) -> dict[str, float] | None:
    """The request's weights, refused with 422 when the shortlist could not rank by them
    (unknown criterion, not a number, negative, not finite, over ``MAX_WEIGHT``, all zero):
    checked here so that a bad request is never stored as a failed run."""
    if not raw:
        return None
    from agents.shortlist import node as shortlist

    known = getattr(shortlist, "DEFAULT_WEIGHTS", None)
    weights: dict[str, float] = {}
    for name, value in raw.items():
        if known is not None and name not in known:
            raise HTTPException(422, f"weights: unknown criterion {name!r}; known: "
                                     f"{', '.join(known)}")
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                isinstance(value, float) and not math.isfinite(value)) or value < 0:
            raise HTTPException(422, f"weights.{name}: expected a non-negative number, "
                                     f"got {value!r}")
        if value > shortlist.MAX_WEIGHT:  # compared exactly: a huge JSON integer cannot overflow
            shown = repr(value) if len(repr(value)) <= 24 else f"{repr(value)[:20]}..."
            raise HTTPException(422, f"weights.{name}: must be at most "
                                     f"{shortlist.MAX_WEIGHT:g}, got {shown} (weights are "
                                     "relative: only their ratios matter)")
        weights[name] = float(value)
    try:  # the shortlist's own rules (bounds, not all zero), so both sides agree
        shortlist.resolve_weights(weights)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return weights


def links(run_id: str) -> dict[str, str]:
    return {"self": f"/v1/runs/{run_id}", "events": f"/v1/runs/{run_id}/events"}


RESULT_200 = {"description": "The result contract of the finished run (sync mode)",
              "content": {"application/json": {"schema": {
                  "$ref": "#/components/schemas/SourcingResult"}}}}


@router.post(
    "", summary="Find suppliers for one product photo",
    responses={200: RESULT_200, 202: {"model": RunAccepted, "description": "Accepted "
                                      "(mode=async): follow `links.events`, then read `links.self`"},
               500: {"description": "The run failed; the stored run keeps the error"},
               **UPLOAD_ERRORS},
)
async def create_run(
    state: StateDep, services: ServicesDep, caller: CallerDep,
    image: Annotated[UploadFile, File(description="Product photo: JPEG, PNG, WebP, GIF or BMP")],
    market: Annotated[str, Form(min_length=2, max_length=8, description="Target market, e.g. "
                                "US or EU (member states map to EU)", examples=["US"])],
    constraints: Annotated[str | None, Form(
        description='Hard constraints as a JSON object, e.g. {"max_moq": 100, '
                    '"max_unit_price": 9.5, "supplier_kind": "factory"}')] = None,
    weights: Annotated[str | None, Form(
        description='Criterion weights as a JSON object, e.g. {"visual": 0.5, "price": 0.2}'
    )] = None,
    title: Annotated[str | None, Form(max_length=1000)] = None,
    description: Annotated[str | None, Form(max_length=5000)] = None,
    top_k: Annotated[int | None, Form(ge=1, le=50)] = None,
    sale_price: Annotated[float | None, Form(
        gt=0, le=MAX_SALE_PRICE, allow_inf_nan=False,
        description="Your sale price in USD: the margin is computed at it instead of the "
                    "market's median price", examples=[24.99])] = None,
    shipping_mode: Annotated[ShippingMode | None, Form(
        description="Shipping mode for the landed cost; without it the mode is chosen by "
                    f"shipment weight (express up to {EXPRESS_MAX_KG:g} kg, air up to "
                    f"{AIR_MAX_KG:g} kg, sea above)")] = None,
    mode: Annotated[Literal["sync", "async"], Query(
        description="sync: answer with the result; async: answer 202 with the run id")] = "sync",
) -> Response:
    parsed_constraints = parse_json_object(constraints, "constraints")
    try:
        Constraints.from_dict(parsed_constraints)
    except ValueError as exc:
        raise HTTPException(422, f"constraints: {exc}") from None
    parsed_weights = check_weights(parse_json_object(weights, "weights"))
    try:  # a member state (DE) is served by its union's rules (EU)
        market_code = services.rulebook.market_rules(market).market
    except UnknownMarketError as exc:
        raise HTTPException(422, f"market: {exc}") from None
    data = await image.read()
    name = (image.filename or "image")[-200:]
    try:
        photo = await to_thread.run_sync(check_photo, data, name)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    request = {"market": market_code, "market_requested": market, "image_name": name,
               "image_sha256": photo.sha256, "image_format": photo.format, "image_size": list(photo.size),
               "constraints": parsed_constraints, "weights": parsed_weights, "title": title,
               "top_k": top_k, "sale_price": sale_price, "shipping_mode": shipping_mode}
    run_id = await to_thread.run_sync(state.store.create, request, caller.key_id)
    future = state.queue.submit(run_id, services, state.graph, photo.data, RunRequest(
        market=market_code, image_name=name, constraints=parsed_constraints,
        weights=parsed_weights, title=title, description=description, top_k=top_k,
        sale_price=sale_price, shipping_mode=shipping_mode))
    headers = {"Location": f"/v1/runs/{run_id}", "X-Run-Id": run_id}
    if mode == "async":
        body = RunAccepted(id=run_id, links=links(run_id))
        return JSONResponse(body.model_dump(), status_code=202, headers=headers)
    result = await asyncio.wrap_future(future)
    if result is None:
        record = await to_thread.run_sync(state.store.get, run_id)
        error = record.error if record else "unknown error"
        raise HTTPException(500, f"run {run_id} failed: {error}", headers=headers)
    return JSONResponse(result, headers=headers)


@router.get("", response_model=RunPage, summary="Stored runs, newest first")
def list_runs(
    state: StateDep, caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    # SQLite integers are 64-bit: a larger cursor is no cursor the store ever gave out
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1,
                                        description="Cursor from `next_cursor`")] = None,
) -> RunPage:
    records, cursor = state.store.page(limit, before, client=caller.key_id)
    return RunPage(items=[RunSummary(**record.summary()) for record in records],
                   next_cursor=cursor)


def _get_record(state, caller, run_id: str):
    record = state.store.get(run_id, client=caller.key_id)
    if record is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return record


@router.get("/{run_id}", response_model=RunDetail, responses=NOT_FOUND,
            summary="One stored run: request, status, timings and result")
def get_run(run_id: str, state: StateDep, caller: CallerDep) -> RunDetail:
    return RunDetail(**_get_record(state, caller, run_id).public())


@router.delete("/{run_id}", status_code=204, responses={
    **NOT_FOUND, 409: {"model": RunAccepted, "description": "The run has not finished"}},
               summary="Delete a finished run and its events")
def delete_run(run_id: str, state: StateDep, caller: CallerDep) -> Response:
    record = _get_record(state, caller, run_id)
    if record.status not in FINISHED:
        raise HTTPException(409, f"run {run_id} is {record.status}; delete it once it finished")
    state.store.delete(run_id, client=caller.key_id)
    return Response(status_code=204)


@router.get(
    "/{run_id}/events", responses={
        **NOT_FOUND, 200: {"description": "Server-sent events: `queued`, `running`, "
                           "`node_start` / `node_end` (with `ms`) per node, then `succeeded` or "
                           "`failed`; the stream ends after the last. Each `data` is JSON.",
                           "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    summary="Follow a run's progress live (replayed from the start, or after Last-Event-ID)")
async def run_events(run_id: str, request: Request, state: StateDep,
                     caller: CallerDep) -> EventSourceResponse:
    record = await to_thread.run_sync(state.store.get, run_id, caller.key_id)
    if record is None:
        raise HTTPException(404, f"no run {run_id!r}")
    last = request.headers.get("last-event-id", "0")
    after = int(last) if last.isdigit() else 0

    async def stream():
        nonlocal after
        idle = 0.0
        while True:
            events = await to_thread.run_sync(state.store.events, run_id, after)
            for event in events:
                after = event.seq
                data = json.dumps({**event.data, "at": event.at}, ensure_ascii=False)
                yield f"id: {event.seq}\nevent: {event.event}\ndata: {data}\n\n"
                if event.event in FINISHED:
                    return
            if await request.is_disconnected():
                return
            if events:
                idle = 0.0
            else:
                idle += POLL_S
                if idle >= KEEPALIVE_S:
                    idle = 0.0
                    yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_S)

    return EventSourceResponse(stream(), headers={"Cache-Control": "no-cache",
                                                  "X-Accel-Buffering": "no"})
