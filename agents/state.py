"""Graph state: what each node reads and writes, and how parallel writes merge.

``supplier_match``, ``market`` and ``compliance`` run as parallel branches after ``intake``; each
writes its own key, and the shared keys (``evidence``, ``timings``, ``warnings``) carry reducers so
their parallel updates merge instead of colliding.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import numpy as np


def merge_dicts(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: union of two dicts; on a repeated key the right (newer) value wins."""
    return {**(left or {}), **(right or {})}


class InputState(TypedDict, total=False):
    """What a caller hands in. ``image_bytes`` is the uploaded photo; ``market`` an ISO code;
    ``sale_price`` (USD) and ``shipping_mode`` (express, air or sea) are the seller's own, for
    the landed cost and margin (the market's median price and a mode chosen by weight without)."""

    image_bytes: bytes
    image_name: str
    market: str
    constraints: dict[str, Any]
    weights: dict[str, float]
    title: str
    description: str
    top_k: int
    sale_price: float
    shipping_mode: str


class State(InputState, total=False):
    """Full state. Comments say which node writes each key."""

    # intake: category, attributes, HS candidates, matched listing ids (see agents/intake/node.py)
    product: dict[str, Any]
    # intake: the decoded query photo and its embedding, reused by supplier_match
    query_image: Any
    query_vector: np.ndarray
    # intake: the embeddings of the photo's views (retrieval.search.VIEWS), reused likewise
    query_view_vectors: np.ndarray
    # intake: unfiltered (re-ranked) image-search hits, reused by supplier_match without filters
    image_hits: list[Any]
    # supplier_match: scored (supplier, product) candidates before ranking
    candidates: list[dict[str, Any]]
    # supplier_match: ranked product groups (best first), each with its likely source named
    products: list[dict[str, Any]]
    # supplier_match: candidates dropped by a hard constraint, each with its reasons
    excluded: list[dict[str, Any]]
    # market: price band, demand and the Amazon category it matched
    market_analysis: dict[str, Any]
    # compliance: requirements for the market and open questions
    compliance: dict[str, Any]
    # shortlist: the final result contract
    result: dict[str, Any]
    # every node: evidence records keyed by evidence id (merged)
    evidence: Annotated[dict[str, dict[str, Any]], merge_dicts]
    # every node: milliseconds spent, keyed by node name (merged)
    timings: Annotated[dict[str, float], merge_dicts]
    # every node: human-readable warnings (appended)
    warnings: Annotated[list[str], operator.add]
