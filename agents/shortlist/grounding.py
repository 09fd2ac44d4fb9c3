"""Grounding check: a claim stands only if every evidence id it cites exists and every number
in its text equals a value held by the evidence it cites.

Numbers are compared as numbers (``12.50`` equals ``12.5``); a number inside a cited text value
(``2014/35/EU`` holds 2014 and 35) counts as held. Claims that fail are removed from the result
and reported under ``grounding.unsupported`` with the reason.
"""

from __future__ import annotations

import math
import re
from typing import Any
from collections.abc import Iterable

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:,\d{3})*(?:\.\d+)?")


def numbers_in(text: str) -> list[float]:
    return [float(match.replace(",", "")) for match in NUMBER.findall(text)]


def _held_numbers(values: Iterable[Any]) -> list[float]:
    held: list[float] = []
    for value in values:
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            held.append(float(value))
        elif isinstance(value, str):
            held.extend(numbers_in(value))
        elif isinstance(value, (list, tuple)):
            held.extend(_held_numbers(value))
    return held


def check_claim(claim: dict[str, Any], evidence: dict[str, dict[str, Any]]) -> str | None:
    """None when the claim is supported, else the reason it is not."""
    cited = claim.get("evidence") or []
    if not cited:
        return "cites no evidence"
    missing = [eid for eid in cited if eid not in evidence]
    if missing:
        return f"cites missing evidence: {', '.join(missing)}"
    held = _held_numbers(evidence[eid]["value"] for eid in cited)
    for number in numbers_in(claim["text"]):
        if not any(math.isclose(number, value, rel_tol=1e-9, abs_tol=1e-9) for value in held):
            return f"number {number:g} is not in the cited evidence"
    return None


def ground(claims: list[dict[str, Any]], evidence: dict[str, dict[str, Any]]
           ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Split claims into supported ones and a ``grounding`` report."""
    kept, unsupported = [], []
    for claim in claims:
        reason = check_claim(claim, evidence)
        if reason is None:
            kept.append(claim)
        else:
            unsupported.append({**claim, "reason": reason})
    report = {"total": len(claims), "supported": len(kept), "unsupported": unsupported}
    return kept, report
