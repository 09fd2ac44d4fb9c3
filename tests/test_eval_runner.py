"""The eval runner: metric definitions on hand-made results, aggregation, errors, report.json."""

from __future__ import annotations

import json
import math

import pytest

from evals.runner import case_metrics, format_table, ranked_products, run_eval
from evals.sets import EvalCase

REQUIRED = ("product_recall@1", "product_recall@5", "product_recall@10", "mrr", "ndcg@10",
            "source_factory_precision@1", "latency_ms_p50", "latency_ms_p95", "source_factory@1",
            "source_factory@3", "hs_heading@1", "hs_heading_top1", "hs_heading_top3",
            "legal_act_recall", "unsupported_claims", "n")


def case(case_id: str = "c1", tags: tuple[str, ...] = (), **expect) -> EvalCase:
    return EvalCase(id=case_id, market="US", title="a product", tags=tags, expect=expect)


def group(product_id: str, source: str | None = None) -> dict:
    return {"product_id": product_id, "score": 0.5, "listing_ids": [], "supplier_ids": [],
            "source": {"supplier_id": source, "reasons": []}}


def candidate(product_id: str, supplier_id: str) -> dict:
    return {"product_id": product_id, "supplier": {"supplier_id": supplier_id}}


def test_ranking_metrics_by_hand():
    # relevant products at ranks 3 and 5
    result = {"products": [group(p) for p in ("A", "B", "C", "D", "E", "F")]}
    metrics = case_metrics(case(relevant_product_ids=["C", "E"]), result)
    assert metrics["product_recall@1"] == 0.0
    assert metrics["product_recall@3"] == 1.0
    assert metrics["product_recall@5"] == 1.0
    assert metrics["product_recall@10"] == 1.0
    assert metrics["mrr"] == pytest.approx(1 / 3)
    # DCG = 1/log2(4) + 1/log2(6) = 0.5 + 0.386853; ideal = 1/log2(2) + 1/log2(3) = 1 + 0.630930
    assert metrics["ndcg@10"] == pytest.approx((0.5 + 0.3868528072) / (1 + 0.6309297536))


def test_first_rank_hit_is_perfect_and_a_miss_is_zero():
    hit = case_metrics(case(relevant_product_ids=["A"]), {"products": [group("A"), group("B")]})
    assert (hit["product_recall@1"], hit["mrr"], hit["ndcg@10"]) == (1.0, 1.0, 1.0)
    miss = case_metrics(case(relevant_product_ids=["Z"]), {"products": [group("A"), group("B")]})
    assert (miss["product_recall@10"], miss["mrr"], miss["ndcg@10"]) == (0.0, 0.0, 0.0)


def test_relevant_past_rank_ten_counts_for_mrr_only():
    shortlist = [candidate(f"P{i}", "S1") for i in range(1, 13)]
    metrics = case_metrics(case(relevant_product_ids=["P12"]), {"shortlist": shortlist})
    assert metrics["product_recall@10"] == 0.0
    assert metrics["ndcg@10"] == 0.0
    assert metrics["mrr"] == pytest.approx(1 / 12)


def test_ideal_dcg_is_capped_at_ten_relevant_products():
    relevant = [f"P{i}" for i in range(12)]
    result = {"products": [group(p) for p in relevant[:10]]}
    assert case_metrics(case(relevant_product_ids=relevant), result)["ndcg@10"] == pytest.approx(1.0)


def test_duplicate_products_keep_their_first_rank():
    result = {"products": [group("A"), group("A"), group("B")]}
    assert ranked_products(result) == ["A", "B"]
    metrics = case_metrics(case(relevant_product_ids=["A"]), result)
    assert metrics["ndcg@10"] == pytest.approx(1.0)


def test_ranking_falls_back_to_distinct_shortlist_products():
    result = {"shortlist": [candidate("X", "S9"), candidate("X", "S8"), candidate("Y", "S7"),
                            candidate("Z", "S1")]}
    assert ranked_products(result) == ["X", "Y", "Z"]
    metrics = case_metrics(case(relevant_product_ids=["Y"], source_supplier_id="S9"), result)
    assert metrics["product_recall@1"] == 0.0
    assert metrics["product_recall@5"] == 1.0
    assert metrics["mrr"] == pytest.approx(0.5)
    assert metrics["ndcg@10"] == pytest.approx(1 / math.log2(3))
    # without products, the source is the top shortlist candidate's supplier
    assert metrics["source_factory_precision@1"] == 1.0


def test_products_take_precedence_over_the_shortlist():
    result = {"products": [group("P2", "S2"), group("P1", "S1")],
              "shortlist": [candidate("P1", "S1"), candidate("P2", "S2")]}
    metrics = case_metrics(case(relevant_product_ids=["P2"], source_supplier_id="S2"), result)
    assert metrics["product_recall@1"] == 1.0
    assert metrics["source_factory_precision@1"] == 1.0
    # the listing-level metrics still read the shortlist
    assert metrics["source_factory@1"] == 0.0
    assert metrics["source_factory@3"] == 1.0


def test_source_precision_reads_the_top_product_group_only():
    expect = {"source_supplier_id": "S1"}
    second = {"products": [group("P1", "S2"), group("P2", "S1")]}
    assert case_metrics(case(**expect), second)["source_factory_precision@1"] == 0.0
    unnamed = {"products": [group("P1", None)], "shortlist": [candidate("P1", "S1")]}
    assert case_metrics(case(**expect), unnamed)["source_factory_precision@1"] == 0.0
    empty = {"products": [], "shortlist": [candidate("P1", "S1")]}
    assert case_metrics(case(**expect), empty)["source_factory_precision@1"] == 0.0
    nothing = {"shortlist": []}
    assert case_metrics(case(**expect), nothing)["source_factory_precision@1"] == 0.0


def test_metrics_appear_only_for_their_expect_keys():
    metrics = case_metrics(case(), {"products": [group("A", "S1")]})
    assert set(metrics) == {"unsupported_claims"}
    result = {"product": {"hs_candidates": [{"code": "611030", "score": 0.9}]},
              "compliance": {"requirements": [{"legal_act": "16 CFR 303"}]},
              "grounding": {"unsupported": ["c1", "c2"]}}
    metrics = case_metrics(case(hs_heading="6110", required_legal_acts=["16 CFR 303", "15 USC 70"]),
                           result)
    assert metrics == {"hs_heading@1": 1.0, "hs_heading_top1": 1.0, "hs_heading_top3": 1.0,
                       "legal_act_recall": 0.5, "unsupported_claims": 2.0}


def test_hs_heading_top3_counts_the_first_three_candidates_only():
    codes = ["850940", "851671", "841451", "611020"]
    result = {"product": {"hs_candidates": [{"code": code, "score": 0.2} for code in codes]}}
    assert case_metrics(case(hs_heading="8516"), result)["hs_heading_top1"] == 0.0
    assert case_metrics(case(hs_heading="8516"), result)["hs_heading_top3"] == 1.0
    assert case_metrics(case(hs_heading="6110"), result)["hs_heading_top3"] == 0.0
    assert case_metrics(case(hs_heading="6110"), {"product": {}})["hs_heading_top3"] == 0.0


def test_overall_and_per_tag_means():
    cases = [case("a", ("crop",), relevant_product_ids=["A"], source_supplier_id="S1"),
             case("b", ("crop", "jpeg"), relevant_product_ids=["B"], source_supplier_id="S1"),
             case("c", (), relevant_product_ids=["C"])]
    results = {"a": {"products": [group("A", "S1")]},  # hit at 1, right source
               "b": {"products": [group("X", "S2"), group("B", "S1")]},  # hit at 2, wrong source
               "c": {"products": [group("X")]}}  # miss
    report = run_eval(cases, lambda c: results[c["id"]], progress=False)
    overall = report["metrics"]
    assert overall["n"] == 3 and overall["n_errors"] == 0
    assert overall["product_recall@1"] == pytest.approx(round(1 / 3, 4))
    assert overall["product_recall@5"] == pytest.approx(round(2 / 3, 4))
    assert overall["mrr"] == pytest.approx(round((1 + 0.5 + 0) / 3, 4))
    assert overall["source_factory_precision@1"] == 0.5  # over the two cases with the key
    assert set(report["by_tag"]) == {"crop", "jpeg", "untagged"}
    crop, jpeg, untagged = (report["by_tag"][t] for t in ("crop", "jpeg", "untagged"))
    assert crop["n"] == 2 and crop["product_recall@1"] == 0.5 and crop["mrr"] == 0.75
    assert jpeg["n"] == 1 and jpeg["product_recall@1"] == 0.0 and jpeg["mrr"] == 0.5
    assert jpeg["ndcg@10"] == pytest.approx(round(1 / math.log2(3), 4))
    assert untagged["n"] == 1 and untagged["product_recall@10"] == 0.0
    assert untagged["source_factory_precision@1"] is None  # no case there carries the key
    for summary in (overall, crop, jpeg, untagged):
        assert summary["latency_ms_p50"] is not None and summary["latency_ms_p95"] is not None


def test_a_failing_case_is_recorded_and_the_run_goes_on():
    cases = [case("ok", ("crop",), relevant_product_ids=["A"]),
             case("boom", ("crop",), relevant_product_ids=["A"])]

    def agent(c):
        if c["id"] == "boom":
            raise RuntimeError("image decode failed")
        return {"products": [group("A")]}

    report = run_eval(cases, agent, progress=False)
    assert report["errors"] == [{"id": "boom", "tags": ["crop"],
                                 "error": "RuntimeError: image decode failed"}]
    assert report["metrics"]["n"] == 1 and report["metrics"]["n_errors"] == 1
    assert report["metrics"]["product_recall@1"] == 1.0
    assert report["by_tag"]["crop"]["n_errors"] == 1
    assert [row["id"] for row in report["cases"]] == ["ok"]


def test_report_json_has_every_required_key(tmp_path):
    cases = [case("a", ("held_out_view",), relevant_product_ids=["A"], source_supplier_id="S1",
                  hs_heading="6110"),
             case("b", ("crop",), relevant_product_ids=["B"], source_supplier_id="S2")]
    result = {"products": [group("A", "S1")], "shortlist": [candidate("A", "S1")],
              "product": {"hs_candidates": [{"code": "611020"}]}}
    run_eval(cases, lambda c: result, out_dir=tmp_path / "out", progress=False,
             agent_name="descriptor", set_path="evals/sets/dev.jsonl")
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["set"] == "evals/sets/dev.jsonl"
    assert report["agent"] == "descriptor"
    assert report["case_count"] == 2
    assert report["timestamp"]
    for summary in (report["metrics"], *report["by_tag"].values()):
        assert set(REQUIRED) <= set(summary)
    assert report["metrics"]["legal_act_recall"] is None  # required, but no case carries it
    row = report["cases"][0]
    assert set(row) >= {"id", "tags", "metrics", "latency_ms", "top"}
    assert row["top"]["product_id"] == "A" and row["top"]["source_supplier_id"] == "S1"
    assert row["metrics"]["product_recall@1"] == 1.0
    # the table shows every metric, a dash where no case carries it
    table = format_table(report)
    assert table[0] == ["metric", "all", "crop", "held_out_view"]
    names = [r[0] for r in table[1:]]
    assert set(REQUIRED) <= set(names)
    assert dict((r[0], r[1]) for r in table[1:])["legal_act_recall"] == "-"


def test_run_eval_keeps_its_positional_signature(tmp_path):
    report = run_eval([case(relevant_product_ids=["A"])], lambda c: {"shortlist": []},
                      tmp_path, False)
    assert (tmp_path / "report.json").exists()
    assert report["set"] is None and report["agent"] is None
