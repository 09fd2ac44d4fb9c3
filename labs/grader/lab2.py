"""Grader of lab 2: the student's supplier-ranking node replaces ``shortlist`` in the project's
graph and runs on reserved demo photos. Checked as properties, not against fixed answers:

* the node runs inside the graph and returns a result with a ranked ``shortlist``;
* every shortlisted offer is one of the candidates ``supplier_match`` handed over and meets the
  request's hard constraints (re-checked with the project's ``violations``);
* price-weighted ranking: with ``weights={"visual": 0, "price": 1}`` the first entry is the
  cheapest qualifying offer at the requested quantity; with ``{"visual": 1, "price": 0}`` it
  belongs to the best-matching product; offers of one product are in price order;
* every claim is grounded (the project's grounding check passes, nothing removed) and every
  entry has a claim that states its unit price.

The graph runs without the local-feature re-ranker (``reranker=None``): the lab is about
ranking suppliers, and the first-stage search keeps each run about a second.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from labs.grader.feedback import Report, StudentFileError, describe, load_student_module

TITLE = "Write your own supplier-ranking node and plug it into the graph"
FOLDER = "lab2_ranking"
README = Path(__file__).resolve().parents[1] / FOLDER / "README.md"
NODE = "ranking_node"
# reserved demo photos (kept out of every listing) and the requests run on each
PHOTOS = ("demo-mh03-back", "demo-steam-iron-main")
REQUESTS: tuple[dict[str, Any], ...] = (
    {},
    {"max_moq": 50},
    {"supplier_kind": "factory", "quantity": 500},
)
PRICE_ONLY = {"visual": 0.0, "price": 1.0}
VISUAL_ONLY = {"visual": 1.0, "price": 0.0}


def _photos() -> dict[str, Path]:
    from api.cli import demo_set_path
    from evals.sets import load_eval_set

    cases = {case.id: case for case in load_eval_set(demo_set_path())}
    return {case_id: cases[case_id].image for case_id in PHOTOS}


def _entry_price(entry: dict[str, Any]) -> float | None:
    price = (entry.get("price") or {}).get("unit_price_at_quantity")
    return float(price) if isinstance(price, (int, float)) else None


def _shortlist_problems(result: Any, state: dict[str, Any], services: Any,
                        constraints: dict[str, Any]) -> list[str]:
    """Structure, candidates and constraints of one result; empty when all is well."""
    from agents.supplier_match.tools import Constraints, unit_price_at, violations

    if not isinstance(result, dict) or not isinstance(result.get("shortlist"), list):
        return ["the node must return {'result': {...}} whose 'shortlist' is a list"]
    shortlist = result["shortlist"]
    candidates = {c["listing_id"]: c for c in state.get("candidates") or []}
    if candidates and not shortlist:
        return [f"the shortlist is empty although {len(candidates)} candidates qualify"]
    size = state.get("top_k") or services.shortlist_size
    problems = []
    if len(shortlist) > size:
        problems.append(f"{len(shortlist)} entries, more than the shortlist size {size}")
    wanted = Constraints.from_dict(constraints)
    excluded = {c["listing_id"] for c in state.get("excluded") or []}
    for position, entry in enumerate(shortlist, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("listing"), dict):
            problems.append(f"entry {position} must be a dict with a 'listing' dict holding "
                            "its listing_id")
            continue
        listing_id = entry["listing"].get("listing_id")
        where = f"entry {position} ({listing_id})"
        if entry.get("rank") != position:
            problems.append(f"{where}: rank is {entry.get('rank')!r}, expected {position}")
        if listing_id not in candidates:
            why = " (supplier_match excluded it)" if listing_id in excluded else ""
            problems.append(f"{where}: not one of the candidates handed to the node{why}")
            continue
        listing = services.catalog.listings[listing_id]
        supplier = services.catalog.suppliers[listing.supplier_id]
        broken = violations(listing, supplier, wanted)
        if broken:
            problems.append(f"{where}: breaks the constraints {constraints}: "
                            f"{'; '.join(broken)}")
        expected = unit_price_at(listing, wanted.quantity)
        got = _entry_price(entry)
        if expected is not None and (got is None or not math.isclose(got, expected,
                                                                      rel_tol=1e-6)):
            problems.append(f"{where}: price.unit_price_at_quantity is {got!r}, the listing's "
                            f"price for {wanted.quantity or 'an unstated'} pieces is {expected}")
    return problems


def _order_problems(result: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """Offers of one product must be in price order (they share their visual match)."""
    product_of = {c["listing_id"]: c.get("product_key", c.get("product_id"))
                  for c in state.get("candidates") or []}
    last: dict[Any, tuple[float, str]] = {}
    problems = []
    for entry in result["shortlist"]:
        listing_id = entry["listing"]["listing_id"]
        price = _entry_price(entry)
        key = product_of.get(listing_id)
        if price is None or key is None:
            continue
        if key in last and price < last[key][0] - 1e-9:
            problems.append(f"{listing_id} ({price}) is ranked below {last[key][1]} "
                            f"({last[key][0]}), a dearer offer of the same product")
        last[key] = (price, listing_id)
    return problems


def _claim_problems(result: dict[str, Any]) -> list[str]:
    from agents.shortlist.grounding import check_claim, numbers_in

    evidence = result.get("evidence")
    claims = result.get("claims")
    if not isinstance(evidence, dict) or not isinstance(claims, list):
        return ["the result needs 'claims' (a list) and 'evidence' (a dict by evidence id)"]
    problems = []
    unsupported = (result.get("grounding") or {}).get("unsupported")
    if unsupported is None:
        problems.append("the result has no grounding report: pass your claims through "
                        "agents.shortlist.grounding.ground")
    for claim in unsupported or []:
        problems.append(f"claim {claim.get('id')} was removed by the grounding check: "
                        f"{claim.get('reason')}")
    by_id = {claim.get("id"): claim for claim in claims}
    for claim in claims:
        reason = check_claim(claim, evidence)
        if reason:
            problems.append(f"claim {claim.get('id')} ({claim.get('text')!r}) {reason}")
    for entry in result["shortlist"]:
        price = _entry_price(entry)
        ids = entry.get("claims") or []
        own = [by_id[cid] for cid in ids if cid in by_id]
        listing_id = entry["listing"]["listing_id"]
        if len(own) < len(ids):
            problems.append(f"{listing_id}: names claims that are not in the result: "
                            f"{sorted(set(ids) - set(by_id))}")
        if price is not None and not any(
                any(math.isclose(number, price, rel_tol=1e-9) for number in
                    numbers_in(claim["text"])) for claim in own):
            problems.append(f"{listing_id}: none of its claims states its unit price {price}")
    return problems


def grade(path: Path, services: Any = None) -> Report:
    from agents.graph import build_graph
    from agents.run import SourcingRunner

    report = Report(2, TITLE, path, readme=README)
    try:
        module = load_student_module(path / "ranking_node.py", "step 2")
    except StudentFileError as exc:
        report.fail("ranking_node.py imports", str(exc), "step 2")
        return report
    node = getattr(module, NODE, None)
    if not report.expect(callable(node), f"ranking_node.py defines {NODE}",
                         f"ranking_node.py has no function {NODE}(state, runtime)", "step 2"):
        return report
    services = dataclasses.replace(services if services is not None else _services(),
                                   reranker=None)
    seen: dict[str, Any] = {}

    def spy(state, runtime):
        seen["state"], seen["runtime"] = dict(state), runtime
        return node(state, runtime)

    runner = SourcingRunner(services, build_graph(nodes={"shortlist": spy}))
    runs = []
    for case_id, image in _photos().items():
        for constraints in REQUESTS:
            label = f"{case_id} with constraints {constraints or '{}'}"
            try:
                result = runner.run_file(image, "US", constraints=constraints or None)
            except Exception as exc:  # the student's node inside the graph
                report.fail("the node runs in the graph", f"{label}: {describe(exc)}",
                            _step_of(exc))
                return report
            runs.append((label, constraints, result, seen["state"], seen["runtime"]))
    report.ok("the node runs in the graph", f"{len(runs)} requests on {len(PHOTOS)} photos")

    problems = [f"{label}: {problem}" for label, constraints, result, state, _ in runs
                for problem in _shortlist_problems(result, state, services, constraints)]
    if not report.expect(not problems, "shortlists hold qualifying candidates",
                         _first(problems), "step 3"):
        return report
    problems = [f"{label}: {problem}" for label, _, result, state, _ in runs
                for problem in _order_problems(result, state)]
    report.expect(not problems, "offers of one product in price order", _first(problems),
                  "step 4")

    price_first, visual_first = [], []
    for label, constraints, _, state, runtime in runs:
        candidates = state.get("candidates") or []
        if not candidates:
            continue
        for weights, wrong in ((PRICE_ONLY, price_first), (VISUAL_ONLY, visual_first)):
            try:
                update = node({**state, "weights": weights}, runtime)
            except Exception as exc:  # the student's node
                wrong.append(f"{label}, weights {weights}: {describe(exc)}")
                continue
            shortlist = ((update or {}).get("result") or {}).get("shortlist") or []
            if not shortlist:
                wrong.append(f"{label}, weights {weights}: empty shortlist")
                continue
            top = shortlist[0]["listing"]["listing_id"]
            if weights is PRICE_ONLY:
                cheapest = _cheapest(candidates, services, constraints)
                if cheapest and _entry_price(shortlist[0]) != cheapest[0]:
                    wrong.append(f"{label}: first entry {top} costs "
                                 f"{_entry_price(shortlist[0])}, the cheapest qualifying "
                                 f"offer is {cheapest[1]} at {cheapest[0]}")
            else:
                best = max(c["match_score"] for c in candidates)
                top_match = next(c["match_score"] for c in candidates if c["listing_id"] == top)
                if top_match < best - 1e-9:
                    wrong.append(f"{label}: first entry {top} has match score {top_match}, "
                                 f"the best-matching product scores {best}")
    report.expect(not price_first, "weights {'price': 1}: cheapest qualifying offer first",
                  _first(price_first), "step 4")
    report.expect(not visual_first, "weights {'visual': 1}: best-matching product first",
                  _first(visual_first), "step 4")

    problems = [f"{label}: {problem}" for label, _, result, _, _ in runs
                for problem in _claim_problems(result)]
    report.expect(not problems, "every claim grounded, every entry's price stated",
                  _first(problems), "step 5")
    return report


def _cheapest(candidates: list[dict[str, Any]], services: Any,
              constraints: dict[str, Any]) -> tuple[float, str] | None:
    from agents.supplier_match.tools import Constraints, unit_price_at, violations

    wanted = Constraints.from_dict(constraints)
    offers = []
    for candidate in candidates:
        listing = services.catalog.listings[candidate["listing_id"]]
        supplier = services.catalog.suppliers[listing.supplier_id]
        price = unit_price_at(listing, wanted.quantity)
        if price is not None and not violations(listing, supplier, wanted):
            offers.append((price, listing.listing_id))
    return min(offers) if offers else None


def _first(problems: list[str]) -> str:
    if not problems:
        return ""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0] + more


def _step_of(exc: BaseException) -> str:
    """The README step a TODO's message names, else the step about plugging the node in."""
    import re

    found = re.search(r"step (\d+)", str(exc))
    return f"step {found.group(1)}" if found else "step 2"


def _services() -> Any:
    from api.services import build_services
    from api.settings import Settings

    return build_services(Settings(), build_index_if_missing=True)
