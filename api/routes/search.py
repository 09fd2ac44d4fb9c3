"""Search the catalog by photo or by words (the agents' own search, without the graph).

A photo search runs in three stages, all in one worker thread (one hand-off from the event loop
per request): the cheap upload checks (byte size, format read from the content, pixel count read
from the header: 413 or 415 before any pixel is decoded), the query encoder
(``Services.encoder()``: decode, EXIF orientation, views, embedding; a file that fails to decode
is 422), then the index search of the photo and its views.
"""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, File, Form, HTTPException, UploadFile

from agents.context import Services
from api.deps import CallerDep, ServicesDep, StateDep
from api.models import SearchFilterBody, SearchResults, TextSearchBody
from api.routes import COMMON_ERRORS, UPLOAD_ERRORS
from api.routes.runs import parse_json_object
from api.uploads import UploadError, check_header
from retrieval.filters import SearchFilter, passes, payload_of
from retrieval.images import ImageDecodeError
from retrieval.index import ListingHit
from retrieval.search import search_images

router = APIRouter(prefix="/v1/search", tags=["search"], responses=COMMON_ERRORS)


def image_url(path: str) -> str:
    return f"/v1/images/{path}"


def hit_rows(services: Services, hits: list[ListingHit]) -> list[dict[str, Any]]:
    """The fields of a ``SearchHit`` per hit, as plain dicts (validated once, by the caller).
    A hit whose listing the catalog no longer holds (an index not yet updated after the
    catalog changed; start-up warns of it) is left out rather than failing the request."""
    listings, suppliers = services.catalog.listings, services.catalog.suppliers
    rows = []
    for hit in hits:
        listing = listings.get(hit.listing_id)
        if listing is None:
            continue
        supplier = suppliers.get(listing.supplier_id)
        rows.append({
            "listing_id": hit.listing_id, "score": round(float(hit.score), 4),
            "image": hit.image, "image_url": image_url(hit.image),
            "product_id": listing.product_id, "title": listing.title,
            "supplier_id": listing.supplier_id,
            "supplier_kind": supplier.kind if supplier else None, "moq": listing.moq,
            "price_min": listing.price_min, "currency": listing.currency})
    return rows


def results(mode: str, services: Services, hits: list[ListingHit]) -> SearchResults:
    """The response body, validated in one call rather than one model per hit."""
    return SearchResults.model_validate({"mode": mode, "hits": hit_rows(services, hits)})


def to_filter(body: SearchFilterBody | dict[str, Any] | None) -> SearchFilter:
    raw = body.model_dump(exclude_none=True) if isinstance(body, SearchFilterBody) else body
    try:
        return SearchFilter.from_dict(raw or {})
    except ValueError as exc:
        raise HTTPException(422, f"filter: {exc}") from None


@router.post("/image", response_model=SearchResults, responses=UPLOAD_ERRORS,
             summary="Listings whose photos best match a photo")
async def search_image(
    services: ServicesDep, caller: CallerDep,
    image: Annotated[UploadFile, File(description="Product photo")],
    k: Annotated[int, Form(ge=1, le=100)] = 10,
    filter: Annotated[str | None, Form(description='Filter as a JSON object, e.g. '
                                       '{"max_moq": 50, "supplier_kind": "factory"}')] = None,
) -> SearchResults:
    raw = parse_json_object(filter, "filter")
    search_filter = None  # no filter: every listing passes
    if raw:
        try:
            checked = SearchFilterBody(**raw)
        except ValueError as exc:
            raise HTTPException(422, f"filter: {exc}") from None
        search_filter = to_filter(checked)
    name = (image.filename or "image")[-200:]
    encoder = services.encoder()
    upload = image.file

    def work() -> list[ListingHit]:
        # read here, not on the event loop: a photo past 1 MiB was spooled to disk, and
        # reading it there would cost a thread hand-off of its own
        upload.seek(0)
        data = upload.read()
        check_header(data, name)  # the cheap checks first (413, 415), nothing decoded
        try:  # the decode belongs to the encoder (422)
            query = encoder.encode(data, name)
        except ImageDecodeError as exc:
            raise UploadError(422, str(exc)) from exc
        return search_images(services.index, query.vector, k, search_filter, services.reranker,
                             query.image, services.load_catalog_image,
                             view_vectors=query.view_vectors)[:k]

    try:
        hits = await to_thread.run_sync(work)
    except UploadError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return results("image", services, hits)


@router.post("/text", response_model=SearchResults, summary="Listings that match words")
async def search_text(body: TextSearchBody, state: StateDep, services: ServicesDep,
                      caller: CallerDep) -> SearchResults:
    search_filter = to_filter(body.filter)
    search = state.text_search()
    catalog = services.catalog

    def allowed(row) -> bool:
        return passes(payload_of(row, catalog.suppliers.get(row.supplier_id)), search_filter)

    try:
        hits = await to_thread.run_sync(lambda: search.search(
            body.query, k=body.k, search_filter=search_filter, allowed=allowed))
    except ValueError as exc:
        raise HTTPException(422, f"query: {exc}") from None
    return results(search.mode, services, hits)
