"""How the HS classifier does on product kinds its priors do not name.

The classifier (``agents.market.hs``) adds hand-written category priors to nomenclature
similarity, and on the gold set (``evals/sets/hs_gold``) the priors were written by the hand
that labelled it: its top-1 of 1.00 there measures the priors' coverage, not accuracy on a kind
nobody wrote a prior for. This eval classifies every text case that expects a heading four ways:

- ``all_priors``: as shipped;
- ``own_priors_withheld``: without the priors written for the case's kind, i.e. those that match
  its words and name its expected heading, as if the product were of a kind no prior names (the
  other priors stay, and may now pull it elsewhere);
- ``heading_priors_withheld``: without any prior naming the expected heading, as if no prior
  covered that heading at all;
- ``no_priors``: nomenclature similarity alone.

Each gives top-1 and top-3 heading accuracy (``hs_heading_top1`` / ``_top3`` of
``evals.metrics``) with a bootstrap interval, over the same cases.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from agents.market.hs import HSClassifier, Prior, product_text, text_only_result
from evals.sets import EvalCase
from evals.stats import rate_with_interval

VARIANTS = ("all_priors", "own_priors_withheld", "heading_priors_withheld", "no_priors")


def _kept_priors(classifier: HSClassifier, variant: str, product: dict[str, Any],
                 heading: str) -> list[Prior]:
    if variant == "all_priors":
        return classifier.priors
    if variant == "no_priors":
        return []
    if variant == "heading_priors_withheld":
        return [prior for prior in classifier.priors if prior.heading != heading]
    primary, category = product_text(product)  # own_priors_withheld
    return [prior for prior in classifier.priors
            if prior.heading != heading or not prior.weight_for(primary, category)]


class _SameTextOnce:
    """The text embedder, each text embedded once: the four variants classify the same words."""

    def __init__(self, embedder: Any) -> None:
        self._embedder = embedder
        self.name = getattr(embedder, "name", type(embedder).__name__)
        self._seen: dict[tuple[str, ...], Any] = {}

    def embed_texts(self, texts: Sequence[str]) -> Any:
        key = tuple(texts)
        if key not in self._seen:
            self._seen[key] = self._embedder.embed_texts(list(texts))
        return self._seen[key]


def hs_holdout(classifier: HSClassifier, embedder: Any,
               cases: Sequence[EvalCase]) -> dict[str, Any]:
    """The four variants' top-1 / top-3 heading accuracy over ``cases`` with a photo-less text
    and an expected ``hs_heading``; per case, the headings each variant ranked first."""
    chosen = [case for case in cases if case.image is None and case.expect.get("hs_heading")]
    if not chosen:
        raise ValueError("no case gives words without a photo and expects an hs_heading")
    embedder = _SameTextOnce(embedder)
    hits: dict[str, dict[str, list[float]]] = {v: {"top1": [], "top3": []} for v in VARIANTS}
    rows = []
    for case in chosen:
        heading = str(case.expect["hs_heading"])[:4]
        base = text_only_result(classifier, embedder, case.title, case.description)
        product = {key: base["product"].get(key) for key in ("title", "category", "text")}
        row: dict[str, Any] = {"id": case.id, "expected": heading}
        for variant in VARIANTS:
            variant_classifier = copy.copy(classifier)  # shares the subheading vectors
            variant_classifier.priors = _kept_priors(classifier, variant, product, heading)
            result = (base if variant == "all_priors" else
                      text_only_result(variant_classifier, embedder, case.title,
                                       case.description))
            ranked = [c["code"][:4] for c in result["product"]["hs_candidates"]]
            hits[variant]["top1"].append(float(ranked[:1] == [heading]))
            hits[variant]["top3"].append(float(heading in ranked[:3]))
            row[variant] = ranked[:3]
        rows.append(row)
    metrics = {}
    for variant in VARIANTS:
        for k in ("top1", "top3"):
            metrics[f"{variant}_{k}"] = rate_with_interval(hits[variant][k])
    return {"n": len(chosen), "metrics": metrics, "cases": rows}
