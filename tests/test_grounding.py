"""The grounding check: claims stand only on evidence that exists and holds their numbers."""

from agents.shortlist.grounding import check_claim, ground, numbers_in

EVIDENCE = {
    "listings.csv:L1:price_min": {"source": "listings.csv", "record_id": "L1",
                                  "field": "price_min", "value": 12.5},
    "listings.csv:L1:moq": {"source": "listings.csv", "record_id": "L1", "field": "moq",
                            "value": 100},
    "rules/eu.yaml:EU-LVD:legal_act": {"source": "rules/eu.yaml", "record_id": "EU-LVD",
                                       "field": "legal_act", "value": "2014/35/EU"},
}


def test_numbers_are_read_as_numbers():
    assert numbers_in("price 12.50 USD, MOQ 1,000 pieces, -3") == [12.5, 1000.0, -3.0]
    assert numbers_in("no digits here") == []


def test_supported_claim():
    claim = {"id": "c1", "text": "Unit price 12.50, MOQ 100 pieces",
             "evidence": ["listings.csv:L1:price_min", "listings.csv:L1:moq"]}
    assert check_claim(claim, EVIDENCE) is None


def test_numbers_inside_cited_text_values_count():
    claim = {"id": "r1", "text": "Low Voltage Directive (2014/35/EU)",
             "evidence": ["rules/eu.yaml:EU-LVD:legal_act"]}
    assert check_claim(claim, EVIDENCE) is None


def test_wrong_number_missing_evidence_and_no_evidence_are_rejected():
    wrong = {"id": "c2", "text": "Unit price 11.9", "evidence": ["listings.csv:L1:price_min"]}
    ghost = {"id": "c3", "text": "MOQ 100", "evidence": ["listings.csv:L9:moq"]}
    bare = {"id": "c4", "text": "Great factory", "evidence": []}
    assert "11.9" in check_claim(wrong, EVIDENCE)
    assert "missing evidence" in check_claim(ghost, EVIDENCE)
    assert check_claim(bare, EVIDENCE) == "cites no evidence"


def test_ground_removes_and_counts_unsupported_claims():
    claims = [
        {"id": "ok", "text": "MOQ 100", "evidence": ["listings.csv:L1:moq"]},
        {"id": "bad", "text": "MOQ 50", "evidence": ["listings.csv:L1:moq"]},
    ]
    kept, report = ground(claims, EVIDENCE)
    assert [c["id"] for c in kept] == ["ok"]
    assert report["total"] == 2 and report["supported"] == 1
    assert [c["id"] for c in report["unsupported"]] == ["bad"]
    assert "50" in report["unsupported"][0]["reason"]
