"""Evidence records: the facts a result may state, each pointing at the record it came from.

An evidence id is ``<source>:<record_id>:<field>`` (for example ``suppliers.csv:S017:moq``), so the
same fact cited twice gets the same id. ``source`` names a table (``suppliers.csv``,
``listings.csv``, ``amazon_products.csv``, a rules file...) or ``derived`` for a value computed from
other evidence, whose ``inputs`` list those evidence ids.
"""

from __future__ import annotations

from typing import Any

from agents.market.trade import COST_CURRENCY


def evidence_id(source: str, record_id: str, field: str) -> str:
    return f"{source}:{record_id}:{field}"


def cite(
    evidence: dict[str, dict[str, Any]],
    source: str,
    record_id: str,
    field: str,
    value: Any,
    **extra: Any,
) -> str:
    """Add one evidence record to ``evidence`` (in place) and return its id."""
    eid = evidence_id(source, record_id, field)
    evidence[eid] = {"source": source, "record_id": record_id, "field": field, "value": value,
                     **extra}
    return eid


def cite_sale_price(evidence: dict[str, dict[str, Any]], price: float) -> str:
    """The seller's own sale price (``COST_CURRENCY``), given with the request, as an evidence record; the
    market and shortlist agents both cite it, with the same id and content."""
    return cite(evidence, "request", "pricing", "sale_price", float(price),
                currency=COST_CURRENCY)
