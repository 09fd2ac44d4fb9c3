"""The HS classifier scored with priors withheld (``evals/hs_holdout.py``): which priors each
variant withholds, and what that does to a case a prior decides."""

from __future__ import annotations

import numpy as np
import pytest

from agents.market.hs import HSClassifier, Prior
from evals.hs_holdout import _kept_priors, hs_holdout
from evals.sets import EvalCase


class LookupEmbedder:
    """Text vectors by keyword: "woven" texts one way, "knitted" texts another, and a tank top's
    words nearer to woven shirts than to knitted vests (so similarity alone gets it wrong)."""

    name = "lookup"

    def embed_texts(self, texts):
        rows = []
        for text in texts:
            text = text.lower()
            row = ([1.0, 0.8] if "tank" in text else [0.0, 1.0] if "knitted" in text
                   else [1.0, 0.0])
            rows.append(np.asarray(row) / np.linalg.norm(row))
        return np.asarray(rows, dtype=np.float32)


def _classifier():
    priors = [Prior(("tank",), "6109", 1.0, "tank tops are knitted singlets", 2),
              Prior(("singlet",), "6109", 1.0, "singlets are knitted", 3),
              Prior(("shirt",), "6205", 1.0, "shirts are woven", 4)]
    return HSClassifier({"610910": "T-shirts, singlets and vests, knitted",
                         "620520": "Men's shirts, woven"},
                        {"6109": "T-shirts, knitted", "6205": "Men's shirts"}, priors)


def test_each_variant_withholds_its_priors():
    classifier = _classifier()
    product = {"title": "Tank top"}
    lines = {variant: [p.line for p in _kept_priors(classifier, variant, product, "6109")]
             for variant in ("all_priors", "own_priors_withheld", "heading_priors_withheld",
                             "no_priors")}
    # the case's own prior (tank) goes; a prior of the same heading its words do not name stays
    assert lines == {"all_priors": [2, 3, 4], "own_priors_withheld": [3, 4],
                     "heading_priors_withheld": [4], "no_priors": []}


def test_a_case_its_prior_decides_is_lost_when_the_prior_is_withheld():
    cases = [EvalCase("tank", "US", title="Tank top", expect={"hs_heading": "6109"}),
             EvalCase("shirt", "US", title="Shirt",
                      expect={"hs_heading": "6205"}),
             EvalCase("no-heading", "US", title="Tank top")]
    report = hs_holdout(_classifier(), LookupEmbedder(), cases)
    assert report["n"] == 2  # the case without an expected heading is not scored
    first = report["cases"][0]
    assert first["all_priors"][0] == "6109" and first["own_priors_withheld"][0] == "6205"
    assert first["no_priors"][0] == "6205"
    metrics = report["metrics"]
    assert metrics["all_priors_top1"]["value"] == 1.0
    assert metrics["own_priors_withheld_top1"]["value"] == 0.5  # the shirt keeps its heading
    assert metrics["no_priors_top3"]["value"] == 1.0  # two headings: both in the top 3


def test_a_set_without_text_cases_expecting_a_heading_is_refused():
    with pytest.raises(ValueError, match="expects an hs_heading"):
        hs_holdout(_classifier(), LookupEmbedder(), [EvalCase("x", "US", title="Tank top")])


def test_the_command_scores_the_gold_set_and_writes_its_report(tmp_path):
    import json

    from typer.testing import CliRunner

    from api.cli import app

    outcome = CliRunner().invoke(app, ["eval", "hs-holdout", "--out", str(tmp_path)],
                                 env={"HF_HUB_OFFLINE": "1"})
    assert outcome.exit_code == 0, outcome.output
    report = json.loads((tmp_path / "hs_holdout.json").read_text())
    assert report["n"] == 75 and len(report["cases"]) == 75
    metrics = report["metrics"]
    # the priors decide the gold set: withholding them costs most of its accuracy
    assert metrics["all_priors_top1"]["value"] > metrics["own_priors_withheld_top1"]["value"]
    assert "own priors withheld" in outcome.output
