"""Compliance rules: the shipped tables validate, products meet the right legal acts for the
facts they show, unknown facts become questions, and the node runs inside a real graph."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from langgraph.graph import END, START, StateGraph

from agents.compliance.node import compliance_node
from agents.compliance.rules import RuleBook, UnknownMarketError
from agents.compliance.tools import certificate_gaps
from agents.context import Services
from agents.state import State

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "data" / "rules" / "compliance"
MARKETS = ["AE", "AU", "CA", "EU", "ID", "IN", "JP", "KE", "KZ", "MY", "NG", "PH", "SA", "SG",
           "TH", "UK", "US", "VN", "ZA"]

COFFEE_MACHINE = {
    "category": "Kitchen -> Coffee Machines",
    "title": "Automatic Espresso Machine",
    "material": None,
    "attributes": {"voltage": "220-240V", "wattage": "1400W", "warranty": "2 Years"},
    "hs_candidates": [{"code": "851671", "score": 0.8}],
    "text": None,
}
HOODIE = {
    "category": "Men/Tops/Hoodies & Sweatshirts",
    "title": "Chaz Kangeroo Hoodie",
    "material": "Wool",
    "attributes": {"sizes": "XS|S|M", "colors": "Black|Gray|Orange"},
    "hs_candidates": [{"code": "611020", "score": 0.8}],
    "text": None,
}
AIR_PURIFIER = {
    "category": "Air & Climate -> Air Purifiers",
    "title": "Air Purifier Compact",
    "attributes": {"voltage": "220-240V", "wattage": "40W"},
    "hs_candidates": [],
}


@pytest.fixture(scope="module")
def rulebook() -> RuleBook:
    return RuleBook.load(RULES)


def by_id(requirements: list[dict]) -> dict[str, dict]:
    return {requirement["rule_id"]: requirement for requirement in requirements}


# -- the shipped tables --------------------------------------------------------------------------


def test_shipped_rule_files_validate(rulebook: RuleBook) -> None:
    assert rulebook.markets == MARKETS
    for market in rulebook.markets:
        book = rulebook.market_rules(market)
        assert len(book.rules) >= 3
        for rule in book.rules:
            assert rule["market"] == market
            assert rule["legal_act"] and rule["why"]
            host = rule["source_url"].split("/")[2]
            assert any(host == d or host.endswith("." + d) for d in book.official_domains), \
                rule["rule_id"]
            assert "2026-11-01" <= rule["last_reviewed"] <= "2026-11-22"


def test_legal_acts_are_in_official_form(rulebook: RuleBook) -> None:
    acts = {rule["legal_act"] for market in rulebook.markets
            for rule in rulebook.market_rules(market).rules}
    assert {"16 CFR 303", "16 CFR 423", "16 CFR 1610", "19 CFR 134", "47 CFR 15",
            "2014/35/EU", "2014/30/EU", "2011/65/EU", "2012/19/EU", "2014/53/EU",
            "Regulation (EC) No 1907/2006", "Regulation (EC) No 1935/2004",
            "Regulation (EU) No 1007/2011", "Regulation (EU) 2023/1542"} <= acts


def _copy_rules(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    shutil.copytree(RULES, folder)
    return folder


def test_rule_missing_a_field_is_named_with_file_and_rule(tmp_path: Path) -> None:
    folder = _copy_rules(tmp_path)
    path = folder / "us.yaml"
    data = yaml.safe_load(path.read_text())
    del data["rules"][3]["legal_act"]
    broken_id = data["rules"][3]["rule_id"]
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ValueError) as error:
        RuleBook.load(folder)
    message = str(error.value)
    assert "us.yaml" in message and broken_id in message and "legal_act" in message


def test_bad_kind_and_unknown_product_kind_are_rejected(tmp_path: Path) -> None:
    folder = _copy_rules(tmp_path)
    path = folder / "eu.yaml"
    data = yaml.safe_load(path.read_text())
    data["rules"][0]["kind"] = "recommendation"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ValueError, match=r"eu\.yaml: rule EU-GPSR-SAFETY: field kind"):
        RuleBook.load(folder)

    data["rules"][0]["kind"] = "test_report"
    data["rules"][0]["applies_when"] = {"product_kinds": ["spaceship"]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ValueError, match="spaceship"):
        RuleBook.load(folder)


def test_rule_market_must_match_its_file(tmp_path: Path) -> None:
    folder = _copy_rules(tmp_path)
    path = folder / "us.yaml"
    data = yaml.safe_load(path.read_text())
    data["rules"][0]["market"] = "EU"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ValueError, match=r"rule US-ORIGIN-MARKING: field market"):
        RuleBook.load(folder)


# -- matching ------------------------------------------------------------------------------------


def test_coffee_machine_in_eu(rulebook: RuleBook) -> None:
    result = rulebook.match("EU", COFFEE_MACHINE)
    assert list(result.product_kinds)[:2] == ["electrical_appliance", "kitchen_appliance"]
    found = by_id(result.requirements)
    acts = {requirement["legal_act"] for requirement in result.requirements}
    assert {"2014/35/EU", "2014/30/EU", "2011/65/EU", "2012/19/EU",
            "Regulation (EC) No 1935/2004"} <= acts

    lvd = found["EU-LVD"]["matched"]
    assert {"condition": "product_kinds contains electrical_appliance",
            "fact": "category 'Kitchen -> Coffee Machines' -> electrical_appliance"} in lvd
    assert {"condition": "mains_powered is true",
            "fact": "attribute voltage '220-240V' -> rated for mains"} in lvd
    food = found["EU-FOOD-CONTACT"]["matched"]
    assert food == [{"condition": "food_contact is true",
                     "fact": "category 'Kitchen -> Coffee Machines'"}]
    assert found["EU-ROHS"]["supplier_evidence"] == ["RoHS"]
    assert "EU-TEXTILE-FIBRE-LABEL" not in found
    # the 220-240 V machine fits EU mains
    assert result.checks[0]["status"] == "ok"


def test_hoodie_in_us(rulebook: RuleBook) -> None:
    result = rulebook.match("US", HOODIE)
    found = by_id(result.requirements)
    acts = {requirement["legal_act"] for requirement in result.requirements}
    assert {"16 CFR 303", "16 CFR 423", "16 CFR 1610", "16 CFR 300", "19 CFR 134"} <= acts
    assert {"condition": "product_kinds contains apparel",
            "fact": "category 'Men/Tops/Hoodies & Sweatshirts' -> apparel"} in \
        found["US-TEXTILE-FIBER-LABEL"]["matched"]
    assert {"condition": "material contains wool", "fact": "material 'Wool'"} in \
        found["US-WOOL-LABEL"]["matched"]
    # a men's hoodie is not a children's product, and has no plug or radio: nothing to ask
    assert not any(rule_id.startswith("US-CHILD") for rule_id in found)
    assert "US-FCC-PART15-DIGITAL" not in found
    assert result.questions == []
    assert result.checks == []


def test_polyester_hoodie_has_no_wool_label(rulebook: RuleBook) -> None:
    result = rulebook.match("US", {**HOODIE, "material": "Fleece|Polyester"})
    assert "US-WOOL-LABEL" not in by_id(result.requirements)
    unknown_material = rulebook.match("US", {**HOODIE, "material": None})
    assert [q["attribute"] for q in unknown_material.questions] == ["material"]


def test_radio_is_asked_when_unknown_and_red_applies_with_bluetooth(rulebook: RuleBook) -> None:
    result = rulebook.match("EU", AIR_PURIFIER)
    radio = [q for q in result.questions if q["attribute"] == "radio"]
    assert len(radio) == 1 and radio[0]["rule_id"] == "EU-RED"
    assert "Bluetooth" in radio[0]["question"]
    found = by_id(result.requirements)
    assert "EU-RED" not in found and "EU-LVD" in found and "EU-EMC" in found

    connected = {**AIR_PURIFIER, "attributes": {**AIR_PURIFIER["attributes"],
                                                "connectivity": "Bluetooth"}}
    result = rulebook.match("EU", connected)
    found = by_id(result.requirements)
    assert {"condition": "radio is true",
            "fact": "attribute connectivity 'Bluetooth' -> radio"} in found["EU-RED"]["matched"]
    # radio equipment is assessed under RED, which covers electrical safety and EMC itself
    assert "EU-LVD" not in found and "EU-EMC" not in found
    assert not [q for q in result.questions if q["attribute"] == "radio"]

    us = by_id(rulebook.match("US", connected).requirements)
    assert us["US-FCC-PART15-RADIO"]["kind"] == "certification"


def test_children_question_and_answer(rulebook: RuleBook) -> None:
    bag = {"category": "Gear/Bags", "title": "Wayfarer Messenger Bag", "material": "Nylon"}
    result = rulebook.match("US", bag)
    question = next(q for q in result.questions if q["attribute"] == "for_children")
    assert "US-CHILDRENS-PRODUCT-CERTIFICATE" in question["rule_ids"]

    kids = rulebook.match("US", {**bag, "text": "Kids school messenger bag"})
    found = by_id(kids.requirements)
    assert found["US-CHILDRENS-PRODUCT-CERTIFICATE"]["matched"][0]["condition"] == \
        "for_children is true"
    assert not [q for q in kids.questions if q["attribute"] == "for_children"]


def test_battery_voltage_and_mains_check(rulebook: RuleBook) -> None:
    vacuum = {"category": "Floor Care -> Cordless Vacuums", "title": "Cordless Stick Vacuum 18V",
              "attributes": {"voltage": "18V Lithium", "runtime": "35 minutes"}}
    kinds, facts = rulebook.product_kinds(vacuum)
    assert "vacuum_cleaner" in kinds
    assert facts["mains_powered"].value is False and facts["battery"].value is True
    found = by_id(rulebook.match("EU", vacuum).requirements)
    assert "EU-LVD" not in found and "EU-BATTERY-PRODUCER" in found

    us = rulebook.match("US", COFFEE_MACHINE)
    assert us.checks[0]["status"] == "mismatch" and "120 V" in us.checks[0]["detail"]


def test_unknown_market_lists_known_ones(rulebook: RuleBook) -> None:
    with pytest.raises(UnknownMarketError) as error:
        rulebook.match("BR", HOODIE)
    assert isinstance(error.value, ValueError)
    assert "'BR'" in str(error.value) and "EU, ID" in str(error.value)


def test_member_state_uses_union_rules(rulebook: RuleBook) -> None:
    result = rulebook.match("de", COFFEE_MACHINE)
    assert result.market == "DE" and result.rules.market == "EU"
    assert "EU-LVD" in by_id(result.requirements)


def test_product_without_kind_gets_only_universal_rules_and_a_question(rulebook: RuleBook) -> None:
    result = rulebook.match("EU", {"category": None, "title": None, "text": None})
    assert {r["rule_id"] for r in result.requirements} == {
        "EU-GPSR-SAFETY", "EU-GPSR-TRACEABILITY", "EU-REACH-SVHC", "EU-PACKAGING"}
    assert any(q["attribute"] == "product_kind" for q in result.questions)


def test_seller_text_alone_gives_kinds(rulebook: RuleBook) -> None:
    kinds, facts = rulebook.product_kinds({"text": "Electric kettle 1.7L with Wi-Fi app control"})
    assert "kitchen_appliance" in kinds and facts["radio"].value is True
    assert facts["food_contact"].value is True


# -- certificate gaps ----------------------------------------------------------------------------


def test_certificate_gaps_severities(rulebook: RuleBook) -> None:
    requirements = rulebook.match("EU", COFFEE_MACHINE).requirements
    gaps = {gap["rule_id"]: gap for gap in certificate_gaps(requirements, ["ce", "ISO9001"])}
    assert gaps["EU-LVD"] == {"rule_id": "EU-LVD", "legal_act": "2014/35/EU",
                              "needs": ["CE", "CB", "GS"], "held": ["CE"], "status": "covered",
                              "severity": "blocking"}
    assert gaps["EU-ROHS"]["status"] == "missing"
    assert gaps["EU-ROHS"]["severity"] == "needs_test_report"
    assert gaps["EU-FOOD-CONTACT"]["severity"] == "needs_test_report"
    assert "EU-WEEE" not in gaps  # a registration the seller makes, no supplier document

    label_rule = {"rule_id": "X-LABEL", "legal_act": "16 CFR 303", "kind": "label",
                  "supplier_evidence": ["OEKO-TEX"]}
    [gap] = certificate_gaps([label_rule], ["Oeko-Tex"])
    assert gap["severity"] == "label_only" and gap["held"] == ["OEKO-TEX"]
    assert certificate_gaps([label_rule], [])[0]["status"] == "missing"


# -- the node in a graph -------------------------------------------------------------------------


def _one_node_graph():
    builder = StateGraph(State, context_schema=Services)
    builder.add_node("compliance", compliance_node)
    builder.add_edge(START, "compliance")
    builder.add_edge("compliance", END)
    return builder.compile()


def _services(rulebook: RuleBook) -> Services:
    return Services(catalog=None, image_embedder=None, index=None, text_embedder=None,
                    rulebook=rulebook)


def test_node_in_graph_cites_every_requirement(rulebook: RuleBook) -> None:
    state = _one_node_graph().invoke({"market": "EU", "product": COFFEE_MACHINE},
                                     context=_services(rulebook))
    compliance = state["compliance"]
    assert compliance["market"] == "EU" and compliance["available"] is True
    assert compliance["rules_source"] == "data/rules/compliance/eu.yaml"
    assert compliance["product_kinds"][:2] == ["electrical_appliance", "kitchen_appliance"]
    evidence = state["evidence"]
    for requirement in compliance["requirements"]:
        legal_act_id = f"rules/eu.yaml:{requirement['rule_id']}:legal_act"
        assert legal_act_id in requirement["evidence"]
        assert evidence[legal_act_id]["value"] == requirement["legal_act"]
        assert evidence[legal_act_id]["source"] == "rules/eu.yaml"
    assert not state.get("timings")  # timings are added by the graph wrapper, not the node


def test_node_in_graph_reports_unknown_market(rulebook: RuleBook) -> None:
    state = _one_node_graph().invoke({"market": "BR", "product": HOODIE},
                                     context=_services(rulebook))
    assert state["compliance"]["available"] is False
    assert "known markets: AE, AU, CA, EU" in state["compliance"]["reason"]
    assert state["warnings"] and "BR" in state["warnings"][0]
