"""Compliance: the target market's requirements for the product intake recognised.

Reads ``state['product']`` and ``state['market']``; writes ``compliance`` and the evidence each
requirement cites (its rules file, rule id and legal act). Facts the rules need but nobody knows
become ``questions`` for the seller rather than guesses.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from agents.compliance.rules import MatchResult, UnknownMarketError
from agents.context import Services
from agents.evidence import cite
from agents.state import State


def compliance_report(result: MatchResult) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The ``compliance`` dict for one match, and the evidence records it cites."""
    evidence: dict[str, dict[str, Any]] = {}
    source = result.rules.source
    requirements = []
    for requirement in result.requirements:
        rule_id = requirement["rule_id"]
        cited = [
            cite(evidence, source, rule_id, "legal_act", requirement["legal_act"],
                 source_url=requirement["source_url"]),
            cite(evidence, source, rule_id, "title", requirement["title"]),
        ]
        requirements.append({**requirement, "evidence": cited})
    checks = []
    for check in result.checks:
        cited = [cite(evidence, source, "mains", "nominal_voltage_v", check["market_voltage_v"])]
        checks.append({**check, "evidence": cited})
    compliance = {
        "market": result.market,
        "available": True,
        "rules_market": result.rules.market,
        "product_kinds": list(result.product_kinds),
        "product_kind_reasons": dict(result.product_kinds),
        "facts": {name: fact.as_dict() for name, fact in result.facts.items()},
        "requirements": requirements,
        "questions": result.questions,
        "checks": checks,
        "rules_source": result.rules.rules_source,
    }
    return compliance, evidence


def compliance_node(state: State, runtime: Runtime[Services]) -> dict[str, Any]:
    rulebook = runtime.context.rulebook
    market = (state.get("market") or "").strip().upper()
    product = state.get("product") or {}
    try:
        result = rulebook.match(market, product)
    except UnknownMarketError as error:
        return {"compliance": {"market": market, "available": False, "reason": str(error),
                               "product_kinds": [], "requirements": [], "questions": [],
                               "checks": []},
                "warnings": [f"compliance: {error}"]}
    compliance, evidence = compliance_report(result)
    update: dict[str, Any] = {"compliance": compliance, "evidence": evidence}
    mismatches = [check["detail"] for check in compliance["checks"]
                  if check["status"] == "mismatch"]
    if mismatches:
        update["warnings"] = [f"compliance: {detail}" for detail in mismatches]
    return update
