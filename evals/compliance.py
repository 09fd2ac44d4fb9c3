"""Compliance scoring: which legal acts a result names against those a case expects.

Metrics of one case (only for cases whose ``expect`` carries ``required_legal_acts``, which then
lists every act that applies to the product in that market)
    predicted = the distinct ``legal_act`` values of ``result["compliance"]["requirements"]``,
    expected = ``expect["required_legal_acts"]``, both compared after ``normalise_act``.
    ``compliance_precision`` = |predicted & expected| / |predicted| (0 when nothing is predicted),
    ``compliance_recall`` = |predicted & expected| / |expected|,
    ``compliance_f1`` = their harmonic mean (0 when both are 0).
    Acts a rule only asks about (a question to the seller) are not predicted.

Aggregation: the runner averages them over cases, overall and per tag, and ``by_market`` averages
them per target market (``compliance_by_market``).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from evals.sets import EvalCase

METRICS = ("compliance_precision", "compliance_recall", "compliance_f1")
_PREFIXES = re.compile(r"^(council |commission (delegated |implementing )?)?(directive )?")


def normalise_act(act: str) -> str:
    """A legal act's name for comparison: case, spacing, dots and commas do not count, nor does a
    leading "Directive" / "Council Directive" / "Commission (Delegated) Regulation" -> "Regulation".

    >>> normalise_act("Council Directive 84/500/EEC") == normalise_act("84/500/EEC")
    True
    >>> normalise_act("21 U.S.C. 364c") == normalise_act("21 USC 364c")
    True
    """
    text = " ".join(str(act).lower().replace(".", "").replace(",", "").split())
    text = re.sub(r"^commission (delegated |implementing )?regulation", "regulation", text)
    return _PREFIXES.sub("", text)


def predicted_acts(result: dict[str, Any]) -> set[str]:
    """The normalised legal acts a result's compliance requirements name."""
    requirements = (result.get("compliance") or {}).get("requirements") or []
    return {normalise_act(req["legal_act"]) for req in requirements if req.get("legal_act")}


def compliance_metrics(case: EvalCase, result: dict[str, Any]) -> dict[str, float]:
    """Precision, recall and F1 of the result's legal acts; empty when the case expects none."""
    wanted = case.expect.get("required_legal_acts")
    if not wanted:
        return {}
    expected = {normalise_act(act) for act in wanted}
    predicted = predicted_acts(result)
    hits = len(expected & predicted)
    precision = hits / len(predicted) if predicted else 0.0
    recall = hits / len(expected)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"compliance_precision": precision, "compliance_recall": recall, "compliance_f1": f1}


def compliance_by_market(cases: Iterable[EvalCase], per_case: list[dict[str, Any]]
                         ) -> dict[str, dict[str, float | int]]:
    """Mean compliance metrics per target market over the scored cases that carry them."""
    market_of = {case.id: case.market.upper() for case in cases}
    rows: dict[str, list[dict[str, float]]] = defaultdict(list)
    for row in per_case:
        if "compliance_recall" in row["metrics"]:
            rows[market_of.get(row["id"], "?")].append(row["metrics"])
    summary: dict[str, dict[str, float | int]] = {}
    for market in sorted(rows):
        metrics = rows[market]
        summary[market] = {key: round(sum(m[key] for m in metrics) / len(metrics), 4)
                           for key in METRICS}
        summary[market]["n"] = len(metrics)
    return summary


def text_only_agent(rulebook: Any, hs_classifier: Any = None, text_embedder: Any = None
                    ) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """An agent for requests without a photo: the text-only compliance check of their title and
    description, plus the HS classifier's candidates when one is given (no supplier search, no
    shortlist)."""
    from agents.compliance.check import check_text

    def agent(request: dict[str, Any]) -> dict[str, Any]:
        title, description = request.get("title"), request.get("description")
        result = check_text(request["market"], title=title, description=description,
                            rulebook=rulebook)
        if hs_classifier is not None and text_embedder is not None:
            from agents.market.hs import text_only_result

            classified = text_only_result(hs_classifier, text_embedder, title, description)
            result["product"] = {**(result.get("product") or {}),
                                 "hs_candidates": classified["product"]["hs_candidates"]}
            result["evidence"] = {**(result.get("evidence") or {}), **classified["evidence"]}
        return result

    return agent
