"""The eval harness around the runner: any agent through ``--agent``, bootstrap intervals,
report.md and plots, ``eval compare`` as a regression gate, reproducible reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from evals.agent import case_request, load_agent
from evals.compare import compare
from evals.runner import run_eval
from evals.sets import EvalCase
from evals.stats import bootstrap_interval

cli = CliRunner()

def file_agent(request):
    """An agent that is not the project's (it lives in this test file, outside the package): it
    answers every photo of MH01 with product MH01 from S013, anything else with another product."""
    assert set(request) >= {"id", "market", "image", "title", "description", "constraints"}
    product = "MH01" if request["image"] and "mh01" in request["image"] else "OTHER"
    return {"products": [{"product_id": product, "score": 1.0, "listing_ids": [],
                          "supplier_ids": ["S013"],
                          "source": {"supplier_id": "S013", "reasons": []}}],
            "shortlist": [{"product_id": product, "supplier": {"supplier_id": "S013"}}],
            "timings": {"intake": 1.0, "shortlist": 2.0}}


def _set(tmp_path, demo_cases, n=6):
    lines = []
    for case in demo_cases[:n]:
        lines.append(json.dumps({"id": case.id, "image": str(case.image), "market": case.market,
                                 "tags": list(case.tags), "expect": case.expect}))
    path = tmp_path / "mini.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_an_agent_from_a_test_file_is_scored_through_the_cli(tmp_path, demo_cases):
    spec = f"{Path(__file__).resolve()}:file_agent"
    eval_set = _set(tmp_path, demo_cases)
    out = tmp_path / "report"
    result = cli.invoke(app, ["eval", "run", "--set", str(eval_set), "--agent",
                              spec, "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["agent"] == spec
    expected = sum(1 for c in demo_cases[:6] if "MH01" in c.expect["relevant_product_ids"]) / 6
    assert report["metrics"]["product_recall@1"] == pytest.approx(expected, abs=1e-4)
    assert report["node_latency_ms"]["shortlist"] == {"p50": 2.0, "p95": 2.0}
    assert report["provenance"]["set_sha256"] and report["provenance"]["code_version"]
    for name in ("report.md", "recall_at_k.png", "by_tag.png", "latency_by_node.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "recall_at_k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| product_recall@1 |" in (out / "report.md").read_text()

    # the same inputs give the same metrics and intervals
    again = tmp_path / "again"
    assert cli.invoke(app, ["eval", "run", "--set", str(eval_set), "--agent",
                            spec, "--out", str(again)]).exit_code == 0
    second = json.loads((again / "report.json").read_text())
    assert second["metrics"] | {"latency_ms_p50": 0, "latency_ms_p95": 0} == \
        report["metrics"] | {"latency_ms_p50": 0, "latency_ms_p95": 0}
    assert second["intervals"] == report["intervals"]

    # compare: identical reports pass, a seeded regression fails
    same = cli.invoke(app, ["eval", "compare", str(out), str(again)])
    assert same.exit_code == 0, same.output
    worse = json.loads(json.dumps(report))
    worse["metrics"]["product_recall@1"] = report["metrics"]["product_recall@1"] - 0.1
    (tmp_path / "worse.json").write_text(json.dumps(worse))
    failed = cli.invoke(app, ["eval", "compare", str(out), str(tmp_path / "worse.json")])
    assert failed.exit_code == 1 and "product_recall@1" in failed.output


def test_load_agent_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="MODULE:NAME"):
        load_agent("no_colon_here")
    with pytest.raises(ValueError, match="not found"):
        load_agent(str(tmp_path / "missing.py") + ":agent")
    (tmp_path / "a.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="no attribute 'agent'"):
        load_agent(f"{tmp_path / 'a.py'}:agent")
    with pytest.raises(ValueError, match="not callable"):
        load_agent(f"{tmp_path / 'a.py'}:x")
    with pytest.raises(ValueError, match="cannot import"):
        load_agent("no_such_module_xyz:agent")


def test_a_factory_or_class_is_instantiated(tmp_path):
    (tmp_path / "b.py").write_text(
        "class Agent:\n    def __call__(self, request):\n        return {'ok': request['id']}\n"
        "def make():\n    return lambda request: {'made': request['id']}\n")
    assert load_agent(f"{tmp_path / 'b.py'}:Agent")({"id": "c"}) == {"ok": "c"}
    assert load_agent(f"{tmp_path / 'b.py'}:make")({"id": "c"}) == {"made": "c"}


def test_case_request_carries_the_interface_keys(tmp_path):
    case = EvalCase(id="t", market="EU", title="kettle", constraints={"max_moq": 5})
    assert case_request(case) == {"id": "t", "market": "EU", "image": None, "title": "kettle",
                                  "description": None, "constraints": {"max_moq": 5}}


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = [1.0] * 30 + [0.0] * 10
    low, high = bootstrap_interval(values)
    assert low < 0.75 < high and 0.5 < low and high < 0.95
    assert bootstrap_interval(values) == [low, high]
    assert bootstrap_interval([1.0]) is None and bootstrap_interval([1.0, 1.0]) == [1.0, 1.0]


def test_compare_directions_and_tolerance():
    base = {"metrics": {"product_recall@1": 0.8, "latency_ms_p50": 100.0, "n_errors": 0,
                        "unsupported_claims": 0.0, "n": 10}}
    new = {"metrics": {"product_recall@1": 0.79, "latency_ms_p50": 300.0, "n_errors": 1,
                       "unsupported_claims": 0.0, "n": 12}}
    rows = {row["metric"]: row for row in compare(base, new, tolerance=0.02)}
    assert not rows["product_recall@1"]["regressed"]  # within tolerance
    assert not rows["latency_ms_p50"]["regressed"]  # latency only gates when asked
    assert rows["n_errors"]["regressed"] and "n" not in rows
    gated = {row["metric"]: row for row in compare(base, new, 0.02, gate_latency=True)}
    assert gated["latency_ms_p50"]["regressed"]
    assert {row["metric"]: row for row in compare(base, new, 0.0)}["product_recall@1"]["regressed"]


def test_run_eval_records_intervals_per_tag():
    cases = [EvalCase(id=f"c{i}", market="US", title="t", tags=("crop",),
                      expect={"relevant_product_ids": ["A"]}) for i in range(5)]
    report = run_eval(cases, lambda r: {"products": [{"product_id": "A" if r["id"] != "c0"
                                                      else "B"}]}, progress=False)
    assert report["metrics"]["product_recall@1"] == 0.8
    assert report["intervals"]["product_recall@1"][0] <= 0.8 <= \
        report["intervals"]["product_recall@1"][1]
    assert report["by_tag_intervals"]["crop"]["product_recall@1"] == \
        report["intervals"]["product_recall@1"]


def _candidate(product, supplier, is_source, moq=10, price=5.0, kind="factory", caps=()):
    return {"product_id": product, "is_source": is_source, "moq": moq,
            "price": {"unit_price_at_quantity": None, "min": price},
            "supplier": {"supplier_id": supplier, "kind": kind, "capabilities": list(caps),
                         "on_time_rate": 0.95}}


def test_extra_metrics_by_hand():
    from evals.metrics import MARKET_TABLES, _prices_by_category, extra_metrics

    case = EvalCase(id="c", market="US", title="t", constraints={"max_moq": 50,
                                                                 "capabilities": ["small_batch"]},
                    expect={"relevant_product_ids": ["A"], "source_supplier_id": "S1"})
    result = {"shortlist": [
        _candidate("A", "S1", True, moq=10, caps=["small_batch"]),   # right flag, meets both
        _candidate("A", "S2", True, moq=100, caps=["small_batch"]),  # wrong flag, MOQ too high
        _candidate("A", "S3", False, moq=20),                        # right flag, no capability
        _candidate("B", "S4", False, moq=5, caps=["small_batch"])],  # other product: not judged
        "grounding": {"total": 8, "supported": 6, "unsupported": [{}, {}],
                      "model": {"total": 2, "supported": 2, "removed": 0, "unsupported": []}}}
    out = extra_metrics(case, result)
    assert out["factory_vs_trading_accuracy"] == pytest.approx(2 / 3)
    assert out["constraint_satisfaction"] == pytest.approx(2 / 4)
    assert out["groundedness"] == pytest.approx(8 / 10)
    prices = _prices_by_category(MARKET_TABLES["US"])
    category, values = next(iter(prices.items()))
    import numpy as np
    true = float(np.median(values))
    result["market"] = {"market": "US", "category": {"category_id": int(category)},
                        "price_band": {"median": true * 1.1}}
    assert extra_metrics(case, result)["price_band_error"] == pytest.approx(0.1)



def test_the_evaluator_checks_min_margin_on_the_candidates_margin():
    from evals.metrics import extra_metrics

    case = EvalCase(id="c", market="US", title="t", constraints={"min_margin_pct": 20})
    shortlist = [_candidate("A", "S1", True, moq=10), _candidate("A", "S2", False, moq=10),
                 _candidate("A", "S3", False, moq=10)]
    shortlist[0]["margin"] = {"pct": 25.0}
    shortlist[1]["margin"] = {"pct": 19.9}  # below the floor; the third has no margin (unknown)
    out = extra_metrics(case, {"shortlist": shortlist})
    assert out["constraint_satisfaction"] == pytest.approx(1 / 3)


def test_every_bundled_set_passes_the_schema_check():
    from pathlib import Path

    from evals.sets import load_eval_set

    sets = sorted((Path(__file__).resolve().parents[1] / "evals" / "sets").rglob("*.jsonl"))
    assert len(sets) >= 3
    for path in sets:
        assert load_eval_set(path), path


@pytest.mark.parametrize("line, message", [
    ('{"id": "a", "market": "US", "title": "t", "expect": {"hs_heading": "61"}}',
     "expect/hs_heading"),
    ('{"id": "a", "market": "US", "title": "t", "tags": "crop"}', "tags"),
    ('{"id": "a", "market": "US", "title": "t", "constraints": []}', "constraints"),
])
def test_a_case_breaking_the_schema_is_named(tmp_path, line, message):
    from evals.sets import load_eval_set

    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=f"bad.jsonl:1: {message}"):
        load_eval_set(path)
