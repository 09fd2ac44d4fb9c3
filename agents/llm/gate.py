"""The grounding gate for model-written text: a claim stands only if what it states is held by the
evidence it cites.

A claim is ``{"text": ..., "evidence": [ids]}``. It is removed when

- it cites no evidence, or an id that the result does not hold;
- a **number** in its text (``12.5``, ``1,200``, ``30%`` -> 30) is not a value of the cited
  evidence (numbers inside cited text count: ``2014/35/EU`` holds 2014 and 35). Numbers next to
  CJK characters count too (``单价12.5美元``), so a Chinese draft is checked like an English one;
  ``97%`` may cite a rate held as 0.97;
- it names an **entity** the cited evidence does not hold: an identifier (``S017``, ``L0123``,
  ``MH01``), a legal act (``2014/35/EU``, ``16 CFR 1500``, ``Regulation (EU) 2023/1542`` ->
  2023/1542), or the name of a supplier of the catalog.

The deterministic claims of the shortlist pass the same kind of check in
``agents.shortlist.grounding``; this gate adds the entity checks that free text needs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

NUMBER = re.compile(r"(?<![A-Za-z0-9_.])-?\d+(?:,\d{3})*(?:\.\d+)?")
IDENTIFIER = re.compile(r"(?<![A-Za-z0-9])[A-Z]{1,4}-?\d{2,}[A-Z0-9-]*(?![A-Za-z0-9])")
LEGAL_ACT = re.compile(r"\d{4}/\d+(?:/(?:EU|EC|EEC))?|\d+ CFR \d+")


def numbers(text: str) -> list[float]:
    return [float(match.replace(",", "")) for match in NUMBER.findall(text)]


def stated_numbers(text: str) -> list[tuple[float, bool]]:
    """Each number of a text with whether it is a percentage (``97%`` may cite a rate 0.97)."""
    return [(float(m.group().replace(",", "")), text[m.end():m.end() + 1] == "%")
            for m in NUMBER.finditer(text)]


def _flatten(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def _held(records: list[dict[str, Any]]) -> tuple[list[float], str]:
    """Numbers and text held by the cited evidence records (record ids included)."""
    held_numbers: list[float] = []
    texts: list[str] = []
    for record in records:
        record_id = str(record.get("record_id", ""))
        texts.append(record_id)
        held_numbers.extend(numbers(record_id))  # "price_band:US:110" holds category 110
        for value in _flatten(record.get("value")):
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, (int, float)):
                held_numbers.append(float(value))
                texts.append(str(value))
            else:
                texts.append(str(value))
                held_numbers.extend(numbers(str(value)))
    return held_numbers, " | ".join(texts)


def check(claim: dict[str, Any], evidence: dict[str, dict[str, Any]],
          supplier_names: Iterable[str] = ()) -> str | None:
    """None when the claim is supported, else the reason it is not."""
    text = str(claim.get("text") or "")
    cited = [eid for eid in claim.get("evidence") or [] if isinstance(eid, str)]
    if not text.strip():
        return "empty text"
    if not cited:
        return "cites no evidence"
    missing = [eid for eid in cited if eid not in evidence]
    if missing:
        return f"cites evidence the result does not hold: {', '.join(missing[:3])}"
    held_numbers, held_text = _held([evidence[eid] for eid in cited])
    for entity in LEGAL_ACT.findall(text) + IDENTIFIER.findall(text):
        if entity not in held_text:
            return f"names {entity}, which the cited evidence does not hold"
    for name in supplier_names:
        if name and name in text and name not in held_text:
            return f"names supplier {name!r}, which the cited evidence does not hold"
    for number, percent in stated_numbers(text):
        options = (number, number / 100) if percent else (number,)
        if not any(math.isclose(option, value, rel_tol=1e-9, abs_tol=1e-9)
                   for option in options for value in held_numbers):
            return f"number {number:g} is not in the cited evidence"
    return None


def gate(claims: list[dict[str, Any]], evidence: dict[str, dict[str, Any]],
         supplier_names: Iterable[str] = ()) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept claims, removed claims each with its ``reason``)."""
    names = list(supplier_names)
    kept, removed = [], []
    for claim in claims:
        reason = check(claim, evidence, names)
        if reason is None:
            kept.append(claim)
        else:
            removed.append({**claim, "reason": reason})
    return kept, removed
