"""What a market requires of a product described in words (no photo, no supplier search)."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, HTTPException

from agents.compliance.node import compliance_report
from agents.compliance.rules import UnknownMarketError
from api.deps import CallerDep, ServicesDep
from api.models import ComplianceCheckBody, ComplianceReport
from api.routes import COMMON_ERRORS

router = APIRouter(prefix="/v1/compliance", tags=["compliance"], responses=COMMON_ERRORS)


@router.post("/check", response_model=ComplianceReport,
             summary="Requirements, open questions and checks for one product and market")
async def check(body: ComplianceCheckBody, services: ServicesDep,
                caller: CallerDep) -> ComplianceReport:
    # as the command line: with no words about the product only generic rules would match,
    # answered as if they were its requirements
    if not ((body.title or "").strip() or (body.description or "").strip()):
        raise HTTPException(422, "title, description: give a non-blank title or description of "
                                 "the product")
    product = {"title": body.title, "text": body.description, "category": body.category,
               "material": body.material, "attributes": body.attributes,
               "hs_candidates": [{"code": body.hs_code, "score": 1.0}] if body.hs_code else []}
    try:
        match = await to_thread.run_sync(services.rulebook.match, body.market, product)
    except UnknownMarketError as exc:
        raise HTTPException(422, f"market: {exc}") from None
    report, _evidence = compliance_report(match)
    return ComplianceReport(**report)
