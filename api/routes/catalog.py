"""Catalog records and photos, and the markets the rules cover."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from api.deps import CallerDep, ServicesDep, StateDep
from api.models import Market
from api.routes import COMMON_ERRORS, NOT_FOUND
from api.routes.search import image_url

router = APIRouter(prefix="/v1", tags=["catalog"], responses=COMMON_ERRORS)


@router.get("/suppliers/{supplier_id}", responses=NOT_FOUND, summary="One supplier's profile",
            response_model=dict[str, Any])
def get_supplier(supplier_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    supplier = services.catalog.suppliers.get(supplier_id)
    if supplier is None:
        raise HTTPException(404, f"no supplier {supplier_id!r}")
    listings = sorted(row.listing_id for row in services.catalog.listings.values()
                      if row.supplier_id == supplier_id)
    return {**supplier.as_record(), "listing_ids": listings}


@router.get("/listings/{listing_id}", responses=NOT_FOUND, summary="One listing",
            response_model=dict[str, Any])
def get_listing(listing_id: str, services: ServicesDep, caller: CallerDep) -> dict[str, Any]:
    listing = services.catalog.listings.get(listing_id)
    if listing is None:
        raise HTTPException(404, f"no listing {listing_id!r}")
    return {**listing.as_record(), "image_urls": [image_url(path) for path in listing.images]}


@router.get("/markets", response_model=list[Market], summary="Markets with compliance rules")
def list_markets(services: ServicesDep, caller: CallerDep) -> list[Market]:
    rulebook = services.rulebook
    markets = []
    for code in rulebook.markets:
        rules = rulebook.market_rules(code)
        markets.append(Market(code=code, name=rules.name, members=list(rules.members),
                              marketplace_data=code in services.market_data))
    return markets


@router.get("/images/{path:path}", responses={
    **NOT_FOUND, 200: {"content": {"image/jpeg": {}, "image/png": {}},
                       "description": "A catalog photo"}},
            response_class=FileResponse, summary="A catalog photo named by a listing")
def get_image(path: str, state: StateDep, services: ServicesDep, caller: CallerDep):
    if path not in state.catalog_images():
        raise HTTPException(404, f"no catalog photo {path!r}")
    return FileResponse(services.catalog.image_path(path),
                        headers={"Cache-Control": "public, max-age=86400"})
