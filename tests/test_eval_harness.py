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
    # a misspelt key would change what is scored: refused, naming the keys it could have been
    ('{"id": "a", "market": "US", "title": "t", "constraints": {"max_mq": 5}}',
     r"constraints: Additional properties are not allowed \('max_mq' was unexpected\); "
     "known: max_moq"),
    ('{"id": "a", "market": "US", "title": "t", "expect": {"required_legal_act": ["x"]}}',
     r"expect: Additional properties .*; known: relevant_product_ids"),
    ('{"id": "a", "market": "US", "title": "t", "constraints": {"supplier_kind": "Factory"}}',
     "constraints/supplier_kind"),
    ('{"id": "a", "market": "US", "title": "t", "constraints": {"min_on_time_rate": 5}}',
     "constraints/min_on_time_rate"),
    ("[1, 2]", "a case is a JSON object, not list"),
])
def test_a_case_breaking_the_schema_is_named(tmp_path, line, message):
    from evals.sets import load_eval_set

    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n")
    with pytest.raises(ValueError, match=f"bad.jsonl:1: {message}"):
        load_eval_set(path)


def test_an_empty_set_and_an_unknown_market_are_refused_on_load(tmp_path):
    from agents.compliance.rules import RuleBook
    from evals.sets import load_eval_set

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="empty.jsonl: no cases"):
        load_eval_set(empty)
    typo = tmp_path / "typo.jsonl"
    typo.write_text('{"id": "a", "market": "US", "title": "t"}\n'
                    '{"id": "b", "market": "USA", "title": "t"}\n')
    rules = RuleBook.load(Path(__file__).resolve().parents[1] / "data" / "rules" / "compliance")
    with pytest.raises(ValueError, match="typo.jsonl:2: market: unknown market 'USA'"):
        load_eval_set(typo, rules.market_rules)
    assert len(load_eval_set(typo)) == 2  # without a check, another agent's markets are its own


def _scored_cases(n=3):
    return [EvalCase(id=f"c{i}", market="US", title="t",
                     expect={"relevant_product_ids": ["A"], "source_supplier_id": "S1"})
            for i in range(n)]


@pytest.mark.parametrize("answer, message", [
    (None, "MalformedResult: the agent returned NoneType, not a result object"),
    ([{"product_id": "A"}], "the agent returned list"),
    ({"products": ["A"]}, "result.products must be a list of objects"),
    ({"shortlist": [{"product_id": "A", "supplier": "S1"}]}, "does not follow the contract"),
])
def test_a_result_the_metrics_cannot_read_fails_its_case_not_the_run(answer, message):
    good = {"products": [{"product_id": "A"}], "shortlist": []}
    report = run_eval(_scored_cases(), lambda r: answer if r["id"] == "c1" else good,
                      progress=False)
    assert report["metrics"]["n"] == 2 and report["metrics"]["n_errors"] == 1
    assert report["metrics"]["product_recall@1"] == 1.0
    assert [error["id"] for error in report["errors"]] == ["c1"]
    assert message in report["errors"][0]["error"]


def test_source_factory_is_not_scored_where_a_constraint_excludes_the_source():
    from evals.runner import case_metrics

    result = {"products": [{"product_id": "A", "source": {"supplier_id": "S1"}}],
              "shortlist": [{"product_id": "A", "supplier": {"supplier_id": "S2"}}]}
    free = EvalCase(id="f", market="US", title="t",
                    expect={"relevant_product_ids": ["A"], "source_supplier_id": "S1"})
    assert case_metrics(free, result)["source_factory@1"] == 0.0
    constrained = EvalCase(id="c", market="US", title="t", constraints={"max_moq": 5},
                           expect={"relevant_product_ids": ["A"], "source_supplier_id": "S1",
                                   "excluded_supplier_ids": ["S1"]})
    metrics = case_metrics(constrained, result)
    assert "source_factory@1" not in metrics and "source_factory@3" not in metrics
    assert metrics["source_factory_precision@1"] == 1.0  # the product's source is still named
    assert metrics["excluded_supplier_rate"] == 1.0


def test_legal_act_recall_compares_names_as_compliance_recall_does():
    from evals.runner import case_metrics

    case = EvalCase(id="k", market="EU", title="kettle",
                    expect={"required_legal_acts": ["2014/30/EU", "2014/35/EU"]})
    result = {"compliance": {"requirements": [{"legal_act": "Directive 2014/30/EU"}]}}
    assert case_metrics(case, result)["legal_act_recall"] == 0.5


def test_intervals_are_given_for_rates_only():
    cases = _scored_cases(4)
    report = run_eval(cases, lambda r: {"products": [{"product_id": "A"}],
                                        "grounding": {"unsupported": []}}, progress=False)
    assert report["metrics"]["unsupported_claims"] == 0.0
    assert "unsupported_claims" not in report["intervals"]
    assert "product_recall@1" in report["intervals"]


def test_an_agent_that_cannot_load_is_named_without_a_traceback(tmp_path):
    (tmp_path / "syntax.py").write_text("def agent(request)\n    return {}\n")
    with pytest.raises(ValueError, match=r"cannot load agent file .*syntax.py: SyntaxError: "
                                         r".*\(line 1\)"):
        load_agent(f"{tmp_path / 'syntax.py'}:agent")
    (tmp_path / "needs.py").write_text("import no_such_package_xyz\n")
    with pytest.raises(ValueError, match="ModuleNotFoundError: No module named"):
        load_agent(f"{tmp_path / 'needs.py'}:agent")
    (tmp_path / "init.py").write_text(
        "class Agent:\n    def __init__(self):\n        raise RuntimeError('no model')\n")
    with pytest.raises(ValueError, match="creating the agent .*: RuntimeError: no model"):
        load_agent(f"{tmp_path / 'init.py'}:Agent")
    eval_set = tmp_path / "one.jsonl"
    eval_set.write_text('{"id": "a", "market": "US", "title": "t"}\n')
    outcome = cli.invoke(app, ["eval", "run", "--set", str(eval_set), "--agent",
                               f"{tmp_path / 'syntax.py'}:agent"])
    assert outcome.exit_code == 2 and "SyntaxError" in outcome.output
    assert "Traceback" not in outcome.output


def test_a_run_where_every_case_fails_exits_1_and_shows_why(tmp_path):
    (tmp_path / "refuses.py").write_text(
        "def agent(request):\n    raise ValueError('no photo, no answer')\n")
    eval_set = tmp_path / "two.jsonl"
    eval_set.write_text('{"id": "a", "market": "US", "title": "t"}\n'
                        '{"id": "b", "market": "US", "title": "u"}\n')
    outcome = cli.invoke(app, ["eval", "run", "--set", str(eval_set), "--agent",
                               f"{tmp_path / 'refuses.py'}:agent"])
    assert outcome.exit_code == 1
    assert "2 of 2 case(s) failed" in outcome.output
    assert "a: ValueError: no photo, no answer" in outcome.output
    assert "no case was scored" in outcome.output


def test_compare_refuses_reports_of_different_sets(tmp_path):
    from evals.compare import mismatch

    base = {"set": "a.jsonl", "case_count": 10, "provenance": {"set_sha256": "1" * 64},
            "metrics": {"product_recall@1": 0.8, "n": 10, "n_errors": 0}}
    other = {**base, "set": "b.jsonl", "provenance": {"set_sha256": "2" * 64},
             "metrics": {"product_recall@1": None, "n": 0, "n_errors": 0}}
    assert mismatch(base, base) is None
    assert "different eval sets" in mismatch(base, other)
    assert "different numbers of cases" in mismatch(base, {**base, "case_count": 3,
                                                           "provenance": {}})
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "other.json").write_text(json.dumps(other))
    refused = cli.invoke(app, ["eval", "compare", str(tmp_path / "base.json"),
                               str(tmp_path / "other.json")])
    assert refused.exit_code == 2 and "different eval sets" in refused.output
    forced = cli.invoke(app, ["eval", "compare", str(tmp_path / "base.json"),
                              str(tmp_path / "other.json"), "--allow-different-sets"])
    assert forced.exit_code == 0 and "warning: the reports come from different" in forced.output
