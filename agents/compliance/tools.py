"""Compliance tools: what a supplier holds against what the market's rules ask for."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# How much a missing document matters, by the rule's kind.
SEVERITY_BY_KIND = {
    "certification": "blocking",
    "conformity_marking": "blocking",
    "registration": "blocking",
    "test_report": "needs_test_report",
    "restricted_substance": "needs_test_report",
    "label": "label_only",
}
SEVERITY_ORDER = ("blocking", "needs_test_report", "label_only")


def _code_key(code: str) -> str:
    """Compare codes ignoring case, spaces and punctuation: ``Oeko-Tex`` equals ``OEKO-TEX``."""
    return re.sub(r"[^a-z0-9]", "", str(code).lower())


def certificate_gaps(requirements: list[dict[str, Any]], held: Iterable[str]
                     ) -> list[dict[str, Any]]:
    """One row per requirement that a supplier document can satisfy (non-empty
    ``supplier_evidence``): the codes it needs, the ones the supplier holds, whether any one of
    them is held (``covered``) or none is (``missing``), and how much a gap matters."""
    held_keys = {_code_key(code) for code in held or () if str(code).strip()}
    gaps = []
    for requirement in requirements:
        needs = list(requirement.get("supplier_evidence") or [])
        if not needs:
            continue
        matching = [code for code in needs if _code_key(code) in held_keys]
        gaps.append({
            "rule_id": requirement["rule_id"],
            "legal_act": requirement["legal_act"],
            "needs": needs,
            "held": matching,
            "status": "covered" if matching else "missing",
            "severity": SEVERITY_BY_KIND.get(requirement.get("kind", ""), "blocking"),
        })
    return gaps


def gap_summary(gaps: list[dict[str, Any]]) -> dict[str, Any]:
    """A shortlist candidate's compliance: ``status`` (``gaps``, ``covered`` or
    ``no_supplier_evidence_required``), every gap row, and the missing ones counted by severity
    with the worst named first (``blocking`` > ``needs_test_report`` > ``label_only``)."""
    missing = [gap for gap in gaps if gap["status"] == "missing"]
    counts = {severity: sum(gap["severity"] == severity for gap in missing)
              for severity in SEVERITY_ORDER}
    worst = next((severity for severity in SEVERITY_ORDER if counts[severity]), None)
    status = "gaps" if missing else ("covered" if gaps else "no_supplier_evidence_required")
    return {"status": status, "worst_severity": worst, "missing_by_severity": counts,
            "gaps": gaps}
