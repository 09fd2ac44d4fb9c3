"""Compliance across the 19 markets: text-only checks name the right acts with their reasons,
deciding facts that are unknown become questions, official sources are enforced, a shortlist
candidate shows its certificate gaps with severity, and the gold set is scored per market."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from langgraph.graph import END, START, StateGraph
from typer.testing import CliRunner

from agents.compliance.check import check_text
from agents.compliance.node import compliance_node
from agents.compliance.rules import RuleBook, UnknownMarketError
from agents.compliance.tools import certificate_gaps, gap_summary
from agents.context import Services
from agents.shortlist.node import shortlist_node
from agents.state import State
from data.catalog.schema import Catalog, Listing, Supplier
from evals.agent import ProjectAgent
from evals.compliance import compliance_metrics, normalise_act, text_only_agent
from evals.runner import run_eval
from evals.sets import EvalCase, load_eval_set

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "data" / "rules" / "compliance"
GOLD = ROOT / "evals" / "sets" / "compliance_gold" / "compliance_gold.jsonl"
EU_ACT = re.compile(r"/EU$|/EC$|/EEC$|\(EU\)|\(EC\)")
KETTLE = "electric kettle 2200W 230V"


@pytest.fixture(scope="module")
def rulebook() -> RuleBook:
    return RuleBook.load(RULES)


def acts_of(report: dict) -> dict[str, dict]:
    return {req["legal_act"]: req for req in report["compliance"]["requirements"]}


# -- the acceptance example -----------------------------------------------------------------------


def test_eu_kettle_lists_lvd_emc_rohs_weee_each_with_its_reason(rulebook: RuleBook) -> None:
    report = check_text("EU", title=KETTLE, rulebook=rulebook)
    acts = acts_of(report)
    for act in ("2014/35/EU", "2014/30/EU", "2011/65/EU", "2012/19/EU"):
        requirement = acts[act]
        assert requirement["why"] and requirement["source_url"].startswith(
            "https://eur-lex.europa.eu/")
        assert {"condition": "product_kinds contains electrical_appliance",
                "fact": "title 'electric kettle 2200W 230V' mentions 'kettle' -> "
                        "electrical_appliance"} in requirement["matched"]
    assert {"condition": "mains_powered is true",
            "fact": "title 'electric kettle 2200W 230V' states '230V' -> rated for mains"} in \
        acts["2014/35/EU"]["matched"]
    # the kettle's radio is unknown: RED is asked about, not flagged and not dropped silently
    radio = next(q for q in report["compliance"]["questions"] if q["attribute"] == "radio")
    assert "EU-RED" in radio["rule_ids"] and "2014/53/EU" not in acts


def test_us_kettle_lists_no_eu_act(rulebook: RuleBook) -> None:
    report = check_text("US", title=KETTLE, rulebook=rulebook)
    acts = acts_of(report)
    assert not [act for act in acts if EU_ACT.search(act)]
    assert {"47 CFR 15", "29 CFR 1910.303", "21 CFR 174", "19 CFR 134"} <= set(acts)
    [check] = report["compliance"]["checks"]
    assert check["status"] == "mismatch" and "120 V" in check["detail"]
    assert check_text("EU", title=KETTLE, rulebook=rulebook)["compliance"]["checks"][0][
        "status"] == "ok"


def test_japan_mains_is_100_v_at_50_and_60_hz(rulebook: RuleBook, tmp_path: Path) -> None:
    """Eastern Japan runs at 50 Hz, western Japan at 60 Hz: neither alone is "JP mains"."""
    [check] = check_text("JP", title=KETTLE, rulebook=rulebook)["compliance"]["checks"]
    assert check["market_frequency_hz"] == [50, 60] and check["status"] == "mismatch"
    assert "JP mains 100 V / 50/60 Hz" in check["detail"]
    [check] = check_text("JP", title="electric kettle 1200W 100V", rulebook=rulebook)[
        "compliance"]["checks"]
    assert check["status"] == "ok"
    [check] = check_text("US", title=KETTLE, rulebook=rulebook)["compliance"]["checks"]
    assert check["market_frequency_hz"] == [60] and "120 V / 60 Hz" in check["detail"]
    # the schema takes a list of frequencies, not an empty one
    folder = tmp_path / "rules"
    shutil.copytree(RULES, folder)
    path = folder / "jp.yaml"
    data = yaml.safe_load(path.read_text())
    data["mains"]["frequency_hz"] = []
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    with pytest.raises(ValueError, match="frequency_hz"):
        RuleBook.load(folder)


def test_cli_compliance_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["compliance", "--market", "EU", "--title", KETTLE, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert {"2014/35/EU", "2014/30/EU", "2011/65/EU", "2012/19/EU"} <= set(acts_of(report))

    result = runner.invoke(app, ["compliance", "--market", "US", "--title", KETTLE, "--json"])
    assert not [act for act in acts_of(json.loads(result.output)) if EU_ACT.search(act)]

    result = runner.invoke(app, ["compliance", "--market", "BR", "--title", KETTLE])
    assert result.exit_code == 2 and "known markets" in result.output

    for blank in (["--title", ""], ["--title", "  ", "--description", "\t"], []):
        result = runner.invoke(app, ["compliance", "--market", "EU", *blank])
        assert result.exit_code == 2 and "give --title or --description" in result.output

    table = runner.invoke(app, ["compliance", "--market", "JP", "--title", KETTLE,
                                "--hs", "851671"])
    assert table.exit_code == 0 and "Act No. 234 of 1961" in table.output
    assert "not legal advice" in table.output


# -- facts from words: negations, chemistry, unknowns ---------------------------------------------


def test_negated_radio_and_battery_are_facts_not_flags(rulebook: RuleBook) -> None:
    report = check_text("EU", title="Electric kettle 1.7L 230V",
                        description="Corded base, no Wi-Fi, no battery.", rulebook=rulebook)
    facts = report["compliance"]["facts"]
    assert facts["radio"]["value"] is False and facts["battery"]["value"] is False
    acts = acts_of(report)
    assert "2014/35/EU" in acts and "2014/53/EU" not in acts
    assert "Regulation (EU) 2023/1542" not in acts
    assert not report["compliance"]["questions"] or all(
        q["attribute"] not in {"radio", "battery"} for q in report["compliance"]["questions"])

    connected = check_text("EU", title="Wi-Fi smart plug 230V", rulebook=rulebook)
    assert "2014/53/EU" in acts_of(connected) and "2014/35/EU" not in acts_of(connected)


def test_unknown_voltage_becomes_a_question(rulebook: RuleBook) -> None:
    report = check_text("UK", title="Electric kettle", rulebook=rulebook)
    question = next(q for q in report["compliance"]["questions"]
                    if q["attribute"] == "mains_powered")
    assert {"UK-EESR", "UK-PLUGS"} <= set(question["rule_ids"])
    assert "S.I. 2016/1101" not in acts_of(report)
    # kind-level rules that need no fact still apply
    assert "S.I. 2016/1091" in acts_of(report)


def test_lithium_transport_needs_lithium(rulebook: RuleBook) -> None:
    alkaline = check_text("US", title="Laser pointer", description="Runs on AAA battery",
                          rulebook=rulebook)
    assert "49 CFR 173.185" not in acts_of(alkaline)
    lithium = check_text("US", title="Portable Bluetooth speaker",
                         description="Rechargeable lithium-ion battery", rulebook=rulebook)
    assert "49 CFR 173.185" in acts_of(lithium)
    unknown = check_text("US", title="Smart watch with battery", rulebook=rulebook)
    assert any(q["attribute"] == "lithium_battery" for q in unknown["compliance"]["questions"])


def test_exclusions_keep_other_acts_out(rulebook: RuleBook) -> None:
    bulb = acts_of(check_text("EU", title="LED bulb E27 9W 230V", description="no Wi-Fi",
                              rulebook=rulebook))
    assert "Commission Regulation (EU) 2019/2020" in bulb
    assert "Regulation (EU) 2023/826" not in bulb  # standby rules exclude light sources
    uk_bulb = acts_of(check_text("UK", title="LED bulb E27 9W 230V", rulebook=rulebook))
    assert "S.I. 1994/1768" not in uk_bulb  # a lamp cap, not a plug
    lipstick = acts_of(check_text("CA", title="Matte lipstick", rulebook=rulebook))
    assert "Cosmetic Regulations (C.R.C., c. 869)" in lipstick
    assert "Canada Consumer Product Safety Act (S.C. 2010, c. 21)" not in lipstick


@pytest.mark.parametrize(("market", "title", "expected"), [
    ("JP", "Electric kettle 100V", {"Electrical Appliance and Material Safety Act (Act No. 234 "
                                    "of 1961)", "Food Sanitation Act (Act No. 233 of 1947)"}),
    ("KZ", "Electric kettle 220V", {"TR CU 004/2011", "TR CU 020/2011", "TR EAEU 037/2016"}),
    ("RU", "Plush teddy bear toy", {"TR CU 008/2011"}),
    ("IN", "Power bank 10000mAh", {"Electronics and Information Technology Goods (Requirements "
                                   "for Compulsory Registration) Order, 2021"}),
    ("GB", "Sterling silver earrings", {"Regulation (EC) No 1907/2006"}),
    ("SA", "Men's cotton hoodie", {"SASO Technical Regulation for Textile Products"}),
    ("NG", "Matte lipstick", {"National Agency for Food and Drug Administration and Control "
                              "Act"}),
    ("ZA", "Hair dryer 2000W 230V", {"National Regulator for Compulsory Specifications Act, "
                                     "2008 (Act No. 5 of 2008)"}),
])
def test_market_specific_acts(rulebook: RuleBook, market: str, title: str,
                              expected: set[str]) -> None:
    assert expected <= set(acts_of(check_text(market, title=title, rulebook=rulebook)))


def test_seller_hs_code_gives_the_kind(rulebook: RuleBook) -> None:
    report = check_text("EU", title="Model X-200", hs_code="8516.71", rulebook=rulebook)
    assert "electrical_appliance" in report["compliance"]["product_kinds"]
    assert report["product"]["hs_candidates"] == [{"code": "851671", "score": 1.0,
                                                   "source": "seller"}]


def test_bad_text_input_is_named(rulebook: RuleBook) -> None:
    with pytest.raises(ValueError, match="title or a description"):
        check_text("EU", title="  ", rulebook=rulebook)
    with pytest.raises(ValueError, match="HS code 'abc'"):
        check_text("EU", title="kettle", hs_code="abc", rulebook=rulebook)
    with pytest.raises(UnknownMarketError, match="known markets: AE, AU"):
        check_text("XX", title="kettle", rulebook=rulebook)


# -- rules files -----------------------------------------------------------------------------------


def test_source_outside_official_domains_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    shutil.copytree(RULES, folder)
    path = folder / "jp.yaml"
    data = yaml.safe_load(path.read_text())
    data["rules"][0]["source_url"] = "https://www.example.com/pse"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    with pytest.raises(ValueError, match=r"jp\.yaml: rule JP-PSE: field source_url: host "
                                         r"'www\.example\.com'"):
        RuleBook.load(folder)

    del data["official_domains"]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    with pytest.raises(ValueError, match="official_domains"):
        RuleBook.load(folder)


def test_every_product_kind_is_covered_somewhere(rulebook: RuleBook) -> None:
    used = {kind for market in rulebook.markets for rule in rulebook.market_rules(market).rules
            for kind in rule["applies_when"].get("product_kinds") or []}
    for kind in ("apparel", "textile", "electrical_appliance", "radio_equipment", "battery",
                 "toy", "childcare_article", "cosmetic", "food_contact_article", "bag",
                 "leather", "jewellery", "watch", "fitness_equipment", "ppe", "lighting",
                 "laser_product", "chemical"):
        assert kind in used, kind
    attributes = {name for market in rulebook.markets
                  for rule in rulebook.market_rules(market).rules
                  for name in rule["applies_when"].get("attributes") or {}}
    assert {"mains_powered", "radio", "battery", "for_children", "food_contact"} <= attributes


# -- certificate gaps on a shortlist candidate ------------------------------------------------------


def _compliance_then_shortlist():
    builder = StateGraph(State, context_schema=Services)
    builder.add_node("compliance", compliance_node)
    builder.add_node("shortlist", shortlist_node)
    builder.add_edge(START, "compliance")
    builder.add_edge("compliance", "shortlist")
    builder.add_edge("shortlist", END)
    return builder.compile()


def test_shortlist_candidate_shows_gaps_with_severity(rulebook: RuleBook) -> None:
    suppliers = {"S1": Supplier("S1", "Cixi Kettle Factory", kind="factory",
                                certifications=("CE", "RoHS")),
                 "S2": Supplier("S2", "Ningbo Kettle Works", kind="factory",
                                certifications=("UKCA", "BS1363", "RoHS", "LFGB"))}
    listings = {"L1": Listing("L1", "S1", "Kettle 1.7L", ("k1.jpg",), product_id="P1",
                              category="Kitchen -> Kettles"),
                "L2": Listing("L2", "S2", "Kettle 1.7L", ("k2.jpg",), product_id="P1",
                              category="Kitchen -> Kettles")}
    services = Services(catalog=Catalog(Path("."), suppliers, listings),
                        image_embedder=SimpleNamespace(name="fake"), index=[],
                        text_embedder=None, rulebook=rulebook)
    candidates = [{"listing_id": lid, "supplier_id": listing.supplier_id, "product_id": "P1",
                   "match_score": 0.9, "similarity": 0.9, "similarity_evidence": "none",
                   "match_evidence": "none",
                   "matched_image": listing.images[0]} for lid, listing in listings.items()]
    product = {"category": "Kitchen -> Kettles", "title": "Electric kettle",
               "attributes": {"voltage": "220-240V", "connectivity": "none"},
               "material": "stainless steel"}
    state = _compliance_then_shortlist().invoke(
        {"market": "UK", "product": product, "candidates": candidates}, context=services)
    by_supplier = {item["supplier"]["supplier_id"]: item["compliance"]
                   for item in state["result"]["shortlist"]}

    lacking = by_supplier["S1"]
    assert lacking["status"] == "gaps" and lacking["worst_severity"] == "blocking"
    plugs = next(gap for gap in lacking["gaps"] if gap["rule_id"] == "UK-PLUGS")
    assert plugs == {"rule_id": "UK-PLUGS", "legal_act": "S.I. 1994/1768", "needs": ["BS1363"],
                     "held": [], "status": "missing", "severity": "blocking"}
    food = next(gap for gap in lacking["gaps"] if gap["rule_id"] == "UK-FOOD-CONTACT")
    assert food["status"] == "missing" and food["severity"] == "needs_test_report"
    assert lacking["missing_by_severity"]["blocking"] >= 1

    holder = by_supplier["S2"]
    assert holder["status"] == "covered" and holder["worst_severity"] is None
    assert all(gap["status"] == "covered" for gap in holder["gaps"])


def test_gap_summary_orders_severity() -> None:
    rules = [{"rule_id": "X-LABEL", "legal_act": "A", "kind": "label",
              "supplier_evidence": ["OEKO-TEX"]},
             {"rule_id": "X-TEST", "legal_act": "B", "kind": "test_report",
              "supplier_evidence": ["LFGB"]}]
    summary = gap_summary(certificate_gaps(rules, []))
    assert summary["worst_severity"] == "needs_test_report"
    assert summary["missing_by_severity"] == {"blocking": 0, "needs_test_report": 1,
                                              "label_only": 1}
    assert gap_summary([])["status"] == "no_supplier_evidence_required"


# -- scoring ----------------------------------------------------------------------------------------


def test_compliance_metrics_and_act_normalisation() -> None:
    case = EvalCase(id="c", market="EU", title="t",
                    expect={"required_legal_acts": ["Directive 2014/35/EU", "2012/19/EU"]})
    result = {"compliance": {"requirements": [{"legal_act": "2014/35/EU"},
                                              {"legal_act": "2014/35/EU"},
                                              {"legal_act": "Regulation (EU) 2023/988"}]}}
    metrics = compliance_metrics(case, result)
    assert metrics == {"compliance_precision": 0.5, "compliance_recall": 0.5,
                       "compliance_f1": 0.5}
    assert compliance_metrics(case, {"compliance": {"requirements": []}})[
        "compliance_precision"] == 0.0
    assert compliance_metrics(EvalCase(id="d", market="EU", title="t"), result) == {}
    assert normalise_act("Commission Delegated Regulation (EU) 2019/2015") == \
        normalise_act("Regulation (EU) 2019/2015")


def test_text_only_cases_run_without_an_image_and_report_per_market(rulebook: RuleBook) -> None:
    cases = [EvalCase(id="eu", market="EU", title=KETTLE,
                      expect={"required_legal_acts": ["2014/35/EU"]}),
             EvalCase(id="us", market="US", title=KETTLE,
                      expect={"required_legal_acts": ["47 CFR 15", "16 CFR 9999"]})]
    agent = ProjectAgent(None, text_only_agent(rulebook))
    report = run_eval(cases, agent, progress=False)
    assert report["metrics"]["n"] == 2 and not report["errors"]
    assert report["by_market"]["EU"]["compliance_recall"] == 1.0
    assert report["by_market"]["US"]["compliance_recall"] == 0.5
    assert 0 < report["by_market"]["EU"]["compliance_precision"] < 1
    assert report["metrics"]["compliance_f1"] is not None


def test_gold_set_shape_and_scores(rulebook: RuleBook) -> None:
    cases = load_eval_set(GOLD)
    assert len(cases) >= 100
    assert len({case.market for case in cases}) >= 10
    assert len({case.tags[1] for case in cases}) >= 15
    raw = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines()]
    assert all(row.get("reason") and not row.get("image") and row.get("title") for row in raw)
    report = run_eval(cases, text_only_agent(rulebook), progress=False)
    assert report["metrics"]["compliance_precision"] >= 0.90
    assert report["metrics"]["compliance_recall"] >= 0.90


def test_japan_children_toy_regime_covers_under_threes_only(rulebook: RuleBook) -> None:
    psc = "Consumer Product Safety Act (Act No. 31 of 1973)"
    assert psc in acts_of(check_text("JP", title="Baby rattle toy for 6m+", rulebook=rulebook))
    assert psc not in acts_of(check_text("JP", title="Plush toy for children aged 3+",
                                         rulebook=rulebook))
    unknown = check_text("JP", title="Wooden toy train", rulebook=rulebook)
    assert psc not in acts_of(unknown)
    assert any(q["attribute"] == "for_under_3" and "JP-PSC-CHILDREN-TOYS" in q["rule_ids"]
               for q in unknown["compliance"]["questions"])
