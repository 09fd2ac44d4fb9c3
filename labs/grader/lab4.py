"""Grader of lab 4: the student's agent behind the agent interface, an end-to-end eval of it
next to the project's agent, and the student's regression list checked on hand-made reports.

1. ``my_agent.py`` defines ``MyAgent``, buildable without arguments (so ``sourcing eval run
   --agent my_agent.py:MyAgent`` loads it) and with ``services=`` (so the grader shares its
   services).
2. The agent keeps the interface (``evals/agent.py``): it answers a photo request with a result
   the metrics can read, passes the request's market and constraints on, gives the same answer
   twice, and refuses a request without a photo with an error instead of a made-up answer.
3. ``run_eval`` scores it and the project's agent on the first ``EVAL_CASES`` cases of
   ``small.jsonl``; neither may fail a case.
4. ``list_regressions`` names exactly the metrics that regressed on hand-made report pairs, and
   agrees with ``evals.compare`` on the two real reports.

Graph runs skip the local-feature re-ranker (``reranker=None``) to keep the grader fast.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from pathlib import Path
from typing import Any

from labs.grader.feedback import Report, StudentFileError, describe, load_student_module

TITLE = "Evaluate an agent end to end and compare two runs"
FOLDER = "lab4_eval"
README = Path(__file__).resolve().parents[1] / FOLDER / "README.md"
SMALL_SET = Path(__file__).resolve().parents[1] / FOLDER / "small.jsonl"
EVAL_CASES = 4
CONSTRAINTS = {"max_moq": 50}


def _report(**metrics: Any) -> dict[str, Any]:
    base = {"product_recall@1": 0.6, "product_recall@5": 0.8, "mrr": 0.7,
            "source_factory@3": 0.75, "unsupported_claims": 0.0, "latency_ms_p50": 200.0,
            "latency_ms_p95": 900.0, "n": 20, "n_errors": 0}
    return {"metrics": {**base, **metrics}, "intervals": {}}


# (what, base report, new report, tolerance, metrics that must be listed)
COMPARISONS: list[tuple[str, dict[str, Any], dict[str, Any], float, list[str]]] = [
    ("identical reports", _report(), _report(), 0.02, []),
    ("recall@1 drops by 0.10", _report(), _report(**{"product_recall@1": 0.5}), 0.02,
     ["product_recall@1"]),
    ("recall@1 drops by 0.01, within tolerance", _report(),
     _report(**{"product_recall@1": 0.59}), 0.02, []),
    ("recall@5 improves, mrr drops", _report(),
     _report(**{"product_recall@5": 0.9, "mrr": 0.6}), 0.02, ["mrr"]),
    ("unsupported claims go up (lower is better)", _report(),
     _report(unsupported_claims=1.0), 0.02, ["unsupported_claims"]),
    ("a failing case appears", _report(), _report(n_errors=1), 0.02, ["n_errors"]),
    ("latency doubles (not a gate)", _report(),
     _report(latency_ms_p50=400.0, latency_ms_p95=1800.0), 0.02, []),
    ("a metric missing in the new report", _report(),
     {"metrics": {k: v for k, v in _report()["metrics"].items() if k != "mrr"}}, 0.02, []),
    ("two drops, a wider tolerance keeps one", _report(),
     _report(**{"product_recall@1": 0.45, "source_factory@3": 0.7}), 0.1,
     ["product_recall@1"]),
]


def _check_comparisons(report: Report, function: Any) -> bool:
    try:
        function(_report(), _report(), 0.02)
    except NotImplementedError as exc:
        report.fail("list_regressions is written", describe(exc), "step 4")
        return False
    except Exception:  # judged case by case below
        pass
    wrong = []
    for what, base, new, tolerance, expected in COMPARISONS:
        try:
            got = function(copy.deepcopy(base), copy.deepcopy(new), tolerance)
        except Exception as exc:  # the student's code
            wrong.append(f"{what}: raised {describe(exc)}")
            continue
        if list(got or []) != expected:
            wrong.append(f"{what}: listed {got!r}, expected {expected}")
    return report.expect(not wrong, "list_regressions on hand-made reports",
                         f"{len(wrong)} of {len(COMPARISONS)} wrong; first: {wrong[0]}"
                         if wrong else "", "step 4", f"{len(COMPARISONS)} cases")


def _interface_problems(agent: Any, cases: list[Any]) -> list[str]:
    from evals.agent import case_request
    from evals.runner import case_metrics

    case = cases[0]
    request = case_request(case)
    first = agent(dict(request))
    if not isinstance(first, dict) or not isinstance(first.get("shortlist"), list):
        return [f"agent(request) returned {type(first).__name__}; the result contract is a "
                "dict with a 'shortlist' list (see evals/agent.py)"]
    problems = []
    try:
        case_metrics(case, first)
    except Exception as exc:  # the result's shape
        problems.append(f"the eval runner cannot score the result: {describe(exc)}")
    if (first.get("request") or {}).get("market") != request["market"]:
        problems.append(f"result.request.market is "
                        f"{(first.get('request') or {}).get('market')!r}, the request asked "
                        f"for {request['market']!r}")
    again = agent(dict(request))
    ids = [(e.get("listing") or {}).get("listing_id") for e in first["shortlist"]]
    if [(e.get("listing") or {}).get("listing_id") for e in again["shortlist"]] != ids:
        problems.append("the same request gave two different shortlists")
    constrained = agent({**request, "constraints": dict(CONSTRAINTS)})
    too_big = [e.get("moq") for e in constrained.get("shortlist") or []
               if e.get("moq") is None or e["moq"] > CONSTRAINTS["max_moq"]]
    if too_big:
        problems.append(f"with constraints {CONSTRAINTS} the shortlist still holds MOQs "
                        f"{too_big}: pass request['constraints'] on")
    try:
        agent({**request, "image": None, "title": "electric kettle"})
    except ValueError:  # refusing is what the interface asks for
        pass
    except Exception as exc:  # a crash is not a refusal
        problems.append(f"a request without a photo raised {describe(exc)}; refuse it with a "
                        "ValueError that says why (README step 2)")
    else:
        problems.append("a request without a photo got an answer; raise ValueError instead "
                        "(the runner records it as a failed case)")
    return problems


def grade(path: Path, services: Any = None) -> Report:
    from evals.agent import ProjectAgent
    from evals.compare import compare
    from evals.runner import run_eval
    from evals.sets import load_eval_set

    report = Report(4, TITLE, path, readme=README)
    regressions = None
    try:
        module = load_student_module(path / "regressions.py", "step 4")
        regressions = getattr(module, "list_regressions", None)
        if report.expect(callable(regressions), "regressions.py defines list_regressions",
                         "regressions.py has no function list_regressions", "step 4"):
            if not _check_comparisons(report, regressions):
                regressions = None
        else:
            regressions = None
    except StudentFileError as exc:
        report.fail("regressions.py imports", str(exc), "step 4")

    try:
        module = load_student_module(path / "my_agent.py", "step 2")
    except StudentFileError as exc:
        report.fail("my_agent.py imports", str(exc), "step 2")
        return report
    cls = getattr(module, "MyAgent", None)
    if not report.expect(inspect.isclass(cls), "my_agent.py defines MyAgent",
                         "my_agent.py has no class MyAgent", "step 2"):
        return report
    parameters = inspect.signature(cls).parameters.values()
    report.expect(all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                      for p in parameters) and "services" in inspect.signature(cls).parameters,
                  "MyAgent() and MyAgent(services=...) both build",
                  "give __init__ one parameter, services=None, so --agent can build it "
                  "without arguments", "step 2")
    services = dataclasses.replace(services if services is not None else _services(),
                                   reranker=None)
    cases = load_eval_set(SMALL_SET)[:EVAL_CASES]
    try:
        agent = cls(services=services)
        problems = _interface_problems(agent, cases)
    except Exception as exc:  # the student's agent
        report.fail("the agent answers a request", describe(exc), "step 2")
        return report
    if not report.expect(not problems, "the agent keeps the interface", "; ".join(problems),
                         "step 2", "photo, market, constraints, repeatability, refusal"):
        return report

    base = run_eval(cases, ProjectAgent(_runner(services)), progress=False,
                    agent_name="project")
    mine = run_eval(cases, agent, progress=False, agent_name=getattr(agent, "name", "MyAgent"))
    errors = [f"{row['id']}: {row['error']}" for row in mine["errors"]]
    if not report.expect(not errors, f"run_eval on {len(cases)} cases without failures",
                         "; ".join(errors[:2]), "step 3"):
        return report
    for name, scored in (("project", base), ("yours", mine)):
        metrics = scored["metrics"]
        report.figures[f"{name}, {len(cases)} cases"] = ", ".join(
            f"{key} {metrics[key]:.3f}" for key in ("product_recall@1", "product_recall@5",
                                                     "source_factory@1", "source_factory@3")
            if metrics.get(key) is not None)
    expected = [row["metric"] for row in compare(base, mine) if row["regressed"]]
    report.figures["regressions of yours against the project's"] = ", ".join(expected) or "none"
    if regressions is not None:
        try:
            got = regressions(base, mine, 0.02)
        except Exception as exc:  # the student's code
            got = f"raised {describe(exc)}"
        report.expect(list(got) == expected if isinstance(got, list) else False,
                      "list_regressions agrees with evals.compare on the real reports",
                      f"listed {got!r}, evals.compare flags {expected}", "step 4")
    return report


def _runner(services: Any) -> Any:
    from agents.run import SourcingRunner

    return SourcingRunner(services)


def _services() -> Any:
    from api.services import build_services
    from api.settings import Settings

    return build_services(Settings(), build_index_if_missing=True)
