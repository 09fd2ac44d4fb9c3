"""Request and response bodies of the HTTP API, named by role (``RunAccepted``, ``RunPage``...).

The run result itself is the committed JSON Schema ``api/schemas/result.schema.json``, published
in the OpenAPI document as ``SourcingResult``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunStatus = Literal["queued", "running", "succeeded", "failed"]


class Problem(BaseModel):
    """Every error: what went wrong, and the request id to quote in a report."""

    detail: Any = Field(examples=["photo.jpg: not an image in an allowed format"])
    request_id: str | None = Field(default=None, examples=["5f0c9a1e2b7d4c3a"])


class RunAccepted(BaseModel):
    id: str = Field(examples=["3b1f0e9c8d7a4b6e9f0a1b2c3d4e5f60"])
    status: RunStatus = "queued"
    links: dict[str, str] = Field(examples=[{"self": "/v1/runs/3b1f...", "events":
                                             "/v1/runs/3b1f.../events"}])


class RunSummary(BaseModel):
    id: str
    status: RunStatus
    created_at: str = Field(examples=["2026-01-05T10:11:12.345+00:00"])
    updated_at: str
    market: str = Field(examples=["US"])
    image_sha256: str | None = None
    image_name: str | None = None
    error: str | None = None
    timings: dict[str, float] | None = Field(default=None, examples=[{"intake": 812.4,
                                                                      "total": 1040.2}])


class RunDetail(RunSummary):
    request: dict[str, Any] = Field(examples=[{"market": "US", "image_sha256": "32...",
                                               "constraints": {"max_moq": 100}}])
    result: dict[str, Any] | None = Field(
        default=None, description="The result contract (SourcingResult) once the run succeeded")


class RunPage(BaseModel):
    items: list[RunSummary]
    next_cursor: int | None = Field(default=None, description="Pass as `before` for the next page")


class SearchHit(BaseModel):
    listing_id: str = Field(examples=["L0283"])
    score: float
    image: str = Field(examples=["images/S013/mh01-gray_main.jpg"])
    image_url: str
    product_id: str | None = None
    title: str
    supplier_id: str
    supplier_kind: str | None = None
    moq: int | None = None
    price_min: float | None = None
    currency: str | None = None


class SearchResults(BaseModel):
    mode: str = Field(examples=["image", "title-minilm"])
    hits: list[SearchHit]


class SearchFilterBody(BaseModel):
    """Optional filters applied inside the search (see ``retrieval.filters.SearchFilter``)."""

    model_config = ConfigDict(extra="forbid")

    max_moq: int | None = Field(default=None, ge=0)
    max_unit_price: float | None = Field(default=None, ge=0)
    supplier_kind: Literal["factory", "trading_company"] | None = None
    capabilities: list[str] | None = None
    certifications: list[str] | None = None
    categories: list[str] | None = None
    countries: list[str] | None = None


class TextSearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=500, pattern=r"\S", examples=["electric kettle"])
    k: int = Field(default=10, ge=1, le=100)
    filter: SearchFilterBody | None = None


class ComplianceCheckBody(BaseModel):
    """A product described in words (no photo): what the market requires of it."""

    model_config = ConfigDict(extra="forbid",
                              json_schema_extra={"examples": [{
                                  "market": "EU", "title": "Electric kettle 1.7 L 2200 W",
                                  "category": "Kitchen/Kettles", "material": "stainless steel",
                                  "attributes": {"voltage": "220-240V"}, "hs_code": "851671"}]})

    market: str = Field(min_length=2, max_length=8, examples=["US"])
    title: str | None = Field(default=None, max_length=1000)
    description: str | None = Field(default=None, max_length=5000)
    category: str | None = Field(default=None, max_length=300)
    material: str | None = Field(default=None, max_length=300)
    attributes: dict[str, Any] = Field(default_factory=dict)
    hs_code: str | None = Field(default=None, pattern=r"^[0-9]{4,10}$")


class ComplianceRequirement(BaseModel):
    rule_id: str
    title: str
    legal_act: str = Field(examples=["2014/35/EU"])
    kind: str
    why: str
    source_url: str


class ComplianceReport(BaseModel):
    market: str
    rules_market: str
    product_kinds: list[str]
    requirements: list[ComplianceRequirement]
    questions: list[dict[str, Any]]
    checks: list[dict[str, Any]]


class Market(BaseModel):
    code: str = Field(examples=["EU"])
    name: str
    members: list[str]
    marketplace_data: bool = Field(description="Whether price band and demand data exist")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    runs_in_flight: int


class Readiness(BaseModel):
    ready: bool
    detail: str
    listings: int | None = None
    indexed_photos: int | None = None
