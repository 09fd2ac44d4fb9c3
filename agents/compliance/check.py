"""Text-only compliance check: a product described in words (no photo yet) against one market.

    >>> from agents.compliance.check import check_text
    >>> report = check_text("EU", title="electric kettle 2200W 230V")
    >>> sorted({r["legal_act"] for r in report["compliance"]["requirements"]})[:2]
    ['2011/65/EU', '2012/19/EU']

The product's kinds and facts come from the title, the description, an optional HS code and
optional listing attributes; the answer has the same ``compliance`` shape as a full run (each
requirement with its legal act, reason, matched conditions and official source) plus the
questions whose answers would decide further rules. Guidance for screening, not legal advice.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agents.compliance.node import compliance_report
from agents.compliance.rules import PROJECT_ROOT, RuleBook

DEFAULT_RULES_DIR = PROJECT_ROOT / "data" / "rules" / "compliance"


def text_product(title: str | None = None, description: str | None = None,
                 hs_code: str | None = None, attributes: dict[str, Any] | None = None,
                 material: str | None = None, category: str | None = None,
                 rulebook: RuleBook | None = None) -> dict[str, Any]:
    """The ``product`` dict intake would have written, built from the seller's words.

    A material not given is read from the words (``"stainless steel"``, ``"cotton"``) when the
    rule book knows the word; an HS code given by the seller becomes the only HS candidate.
    """
    title = (title or "").strip() or None
    description = (description or "").strip() or None
    if not (title or description):
        raise ValueError("a text-only check needs a title or a description")
    hs_candidates = []
    if hs_code is not None and str(hs_code).strip():
        code = re.sub(r"[\s.]", "", str(hs_code))
        if not re.fullmatch(r"\d{2,10}", code):
            raise ValueError(f"HS code {hs_code!r} is not 2 to 10 digits (e.g. 8516 or 851671)")
        hs_candidates = [{"code": code, "score": 1.0, "source": "seller"}]
    if material is None and rulebook is not None:
        material = rulebook.materials_in_text(title, description)
    return {"category": category, "title": title, "text": description, "material": material,
            "attributes": dict(attributes or {}), "hs_candidates": hs_candidates}


def check_text(market: str, title: str | None = None, description: str | None = None,
               hs_code: str | None = None, attributes: dict[str, Any] | None = None,
               material: str | None = None, category: str | None = None,
               rulebook: RuleBook | None = None,
               rules_dir: str | Path | None = None) -> dict[str, Any]:
    """Check a product described in words against ``market``'s rules.

    Returns ``{"request", "product", "compliance", "evidence"}``; ``compliance`` is the same
    contract a full run writes. Raises ``UnknownMarketError`` (a ``ValueError``) naming the known
    markets, or ``ValueError`` for a missing title and description or a malformed HS code.
    """
    book = rulebook or RuleBook.load(rules_dir or DEFAULT_RULES_DIR)
    product = text_product(title, description, hs_code, attributes, material, category, book)
    result = book.match(market, product)
    compliance, evidence = compliance_report(result)
    compliance["guidance"] = ("Screening guidance from the rules file, not legal advice: confirm "
                              "with the official text or a compliance professional.")
    return {"request": {"market": (market or "").strip().upper(), "title": title,
                        "description": description, "hs_code": hs_code},
            "product": product, "compliance": compliance, "evidence": evidence}
