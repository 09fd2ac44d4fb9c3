"""The writer node on the real demo services with the model at the local fake server: RFQ drafts
per candidate, a market narrative and a summary, all through the grounding gate."""

from __future__ import annotations

import dataclasses
import json

import jsonschema
import pytest

from agents.llm.client import ChatClient
from agents.llm.gate import check
from agents.run import SourcingRunner
from evals.fake_llm import FakeChatServer
from evals.grounding import grounding_eval
from tests.conftest import REPO

SCHEMA = json.loads((REPO / "api" / "schemas" / "result.schema.json").read_text())


def _runner(services, fake, **options):
    client = ChatClient(fake.base_url, "fake-model", timeout_s=options.pop("timeout_s", 5.0),
                        max_retries=options.pop("max_retries", 1), **options)
    return SourcingRunner(dataclasses.replace(services, llm=client))


@pytest.fixture(scope="module")
def case(demo_cases):
    return demo_cases[0]


def test_no_model_no_writer_output(demo_services, case):
    result = SourcingRunner(demo_services).run_file(case.image, "US")
    assert "llm" not in result and "summary" not in result
    assert all("rfq" not in candidate for candidate in result["shortlist"])
    assert "model" not in result["grounding"]


def test_truthful_model_adds_cited_text_and_loses_nothing(demo_services, case):
    with FakeChatServer() as fake:
        result = _runner(demo_services, fake).run_file(case.image, "US",
                                                       constraints={"quantity": 200})
    jsonschema.validate(result, SCHEMA)
    model = result["grounding"]["model"]
    assert model["total"] > 0 and model["removed"] == 0 and model["supported"] == model["total"]
    assert result["market"]["narrative"] and result["summary"]
    for candidate in result["shortlist"]:
        rfq = candidate["rfq"]
        assert rfq["source"] == "model" and rfq["en"] and rfq["zh"]
        for language in ("en", "zh"):  # every fact in the draft is cited
            assert check({"text": rfq[language], "evidence": rfq["evidence"]},
                         result["evidence"]) is None
    calls = result["llm"]["calls"]
    assert result["llm"]["model"] == "fake-model" and all(c["outcome"] == "ok" for c in calls)
    assert result["llm"]["prompt_tokens"] > 0 and "writer" in result["timings"]


def test_lies_are_removed_and_counted(demo_services, case):
    with FakeChatServer(false_every=1) as fake:  # every answer carries one false claim
        result = _runner(demo_services, fake).run_file(case.image, "US")
        injected = list(fake.injected)
    removed = [item["text"] for item in result["grounding"]["model"]["unsupported"]]
    assert injected and result["grounding"]["model"]["removed"] == len(injected)
    assert all(any(lie in text for text in removed) for lie in injected)
    shown = json.dumps([result["market"].get("narrative"), result.get("summary"),
                        [c["rfq"] for c in result["shortlist"]]], ensure_ascii=False)
    assert not any(lie in shown for lie in injected)
    assert all(c["rfq"]["source"] == "template" for c in result["shortlist"])


def test_failing_model_falls_back_with_warnings(demo_services, case):
    # an answer invalid twice fails its task only; an endpoint failing after its retries (here
    # timing out twice) fails its task, and the tasks left are not sent to it at all
    script = ["malformed", "malformed"] + ["slow", "slow"]
    with FakeChatServer(script=script, slow_s=1.5) as fake:
        result = _runner(demo_services, fake, timeout_s=1.0, max_retries=1).run_file(
            case.image, "US")
        sent = len(fake.requests)
    warnings = " ".join(result["warnings"])
    assert "market narrative: the model failed (invalid answer" in warnings
    assert "template draft is shown" in warnings
    shortlist = result["shortlist"]
    assert all(c["rfq"]["source"] == "template" and c["rfq"]["en"] and c["rfq"]["zh"]
               and c["rfq"]["evidence"] for c in shortlist)
    outcomes = [call["outcome"] for call in result["llm"]["calls"]]
    assert outcomes == ["failed", "failed"]  # the narrative, then the first RFQ draft
    assert sent == 4  # nothing after the endpoint failed
    skipped = next(w for w in result["warnings"] if w.startswith("model: the endpoint failed"))
    # the other RFQ drafts and the summary
    assert f"{len(shortlist)} later task(s)" in skipped and "summary" in skipped
    jsonschema.validate(result, SCHEMA)


def test_an_endpoint_answering_a_web_page_falls_back_instead_of_failing_the_run(demo_services,
                                                                                 case):
    with FakeChatServer(script=["html"] * 4) as fake:
        result = _runner(demo_services, fake).run_file(case.image, "US")
        sent = len(fake.requests)
    assert result["shortlist"] and result["grounding"]["unsupported"] == []
    assert "market narrative: the model failed" in " ".join(result["warnings"])
    assert sent <= 2  # one request and the client's one retry at most, then the breaker
    assert all(c["rfq"]["source"] == "template" for c in result["shortlist"])


def test_vision_breakdown_feeds_product_facts(demo_services, case):
    with FakeChatServer() as fake:
        runner = _runner(demo_services, fake, vision_model="fake-vision")
        result = runner.run_file(case.image, "US")
        vision = [body for body in fake.requests if body["model"] == "fake-vision"]
    breakdown = result["product"]["breakdown"]
    assert breakdown["source"] == "model" and breakdown["category"]
    assert vision and "data:image/jpeg;base64," in json.dumps(vision[0]["messages"])
    assert result["product"]["attributes"].get("mains_powered") is not None
    assert result["llm"]["calls"][0]["task"] == "product_breakdown"


def test_grounding_eval_rates(demo_services, demo_cases):
    report = grounding_eval(demo_services, demo_cases[:2], false_every=2)
    assert report["false_injected"] > 0 and report["false_removed_rate"] == 1.0
    assert report["false_kept"] == 0
    assert report["true_claims"] > 0 and report["true_removed_rate"] == 0.0
