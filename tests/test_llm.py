"""The LLM layer against a local fake chat-completions server (real HTTP, the real ``openai``
client): good answers, malformed JSON, invented suppliers, wrong prices, slow answers, 429 and 500.
No crash, no unsupported claim in any result, a warning when the fallback answered."""

from __future__ import annotations

import pytest

from agents.llm.client import ChatClient, LLMError, image_part
from agents.llm.gate import check, gate
from agents.llm.tasks import CLAIMS_SCHEMA
from evals.fake_llm import FakeChatServer

EVIDENCE = {
    "listings.csv:L0001:price_min": {"source": "listings.csv", "record_id": "L0001",
                                     "field": "price_min", "value": 12.5},
    "suppliers.csv:S017:name": {"source": "suppliers.csv", "record_id": "S017",
                                "field": "name", "value": "Ningbo Bright Appliance Co."},
    "suppliers.csv:S017:on_time_rate": {"source": "suppliers.csv", "record_id": "S017",
                                        "field": "on_time_rate", "value": 0.97},
    "eu.yaml:EU-LVD:legal_act": {"source": "eu.yaml", "record_id": "EU-LVD",
                                 "field": "legal_act", "value": "2014/35/EU"},
}
NAMES = ["Ningbo Bright Appliance Co.", "Yiwu Star Trading Co."]
EVIDENCE.update({
    "suppliers.csv:S017:certifications": {"source": "suppliers.csv", "record_id": "S017",
                                          "field": "certifications", "value": ["CE", "RoHS"]},
    "request:constraints:quantity": {"source": "request", "record_id": "constraints",
                                     "field": "quantity", "value": 1000},
    "suppliers.csv:S018:name": {"source": "suppliers.csv", "record_id": "S018",
                                "field": "name", "value": "宁波明亮电器有限公司"},
})


def _messages(evidence=EVIDENCE):
    import json
    return [{"role": "user", "content": "TASK: t\n\nEVIDENCE:\n```json\n"
             + json.dumps(evidence) + "\n```\n\nSCHEMA: {}"}]


@pytest.mark.parametrize("text, cited", [
    ("S017 (Ningbo Bright Appliance Co.) lists a unit price of 12.5", [
        "suppliers.csv:S017:name", "listings.csv:L0001:price_min"]),
    ("Ningbo Bright Appliance Co. delivers 97% of orders on time", [
        "suppliers.csv:S017:name", "suppliers.csv:S017:on_time_rate"]),
    ("单价12.5美元（L0001）", ["listings.csv:L0001:price_min"]),
    ("Electrical safety follows 2014/35/EU", ["eu.yaml:EU-LVD:legal_act"]),
    ("ningbo bright delivers ninety-seven percent of orders on time", [
        "suppliers.csv:S017:name", "suppliers.csv:S017:on_time_rate"]),
    ("It holds CE marking under 2014/35/EU", ["suppliers.csv:S017:certifications",
                                               "eu.yaml:EU-LVD:legal_act"]),
    ("我们订购一千件，统一报价", ["request:constraints:quantity"]),
    ("One of the offers is priced at 12.5", ["listings.csv:L0001:price_min"]),
    ("l0001 is priced at 12.5", ["listings.csv:L0001:price_min"]),  # an id in any case
    ("The p10 of the band is 12.5", ["listings.csv:L0001:price_min"]),  # a percentile, not an id
    # a cited supplier named with a word before its name, and a company form with no name
    ("Shortlisted Ningbo Bright Appliance Co. has a unit price of 12.5", [
        "suppliers.csv:S017:name", "listings.csv:L0001:price_min"]),
    ("The company lists a unit price of 12.5", ["listings.csv:L0001:price_min"]),
    ("Factory price is 12.5", ["listings.csv:L0001:price_min"]),
    # a supplier named in Chinese as the evidence holds it, after a word that runs into it
    ("致宁波明亮电器有限公司：单价12.5", ["suppliers.csv:S018:name",
                                     "listings.csv:L0001:price_min"]),
    ("贵公司单价12.5", ["listings.csv:L0001:price_min"]),  # "your company": no legal form
])
def test_gate_keeps_true_claims(text, cited):
    assert check({"text": text, "evidence": cited}, EVIDENCE, NAMES) is None


@pytest.mark.parametrize("text, cited, reason", [
    ("Unit price 13.7", ["listings.csv:L0001:price_min"], "number 13.7"),
    ("单价13.7美元", ["listings.csv:L0001:price_min"], "number 13.7"),
    ("S999 offers the same price 12.5", ["listings.csv:L0001:price_min"], "names S999"),
    ("Yiwu Star Trading Co. sells it", ["suppliers.csv:S017:name"], "names supplier"),
    ("Needs 2014/53/EU", ["eu.yaml:EU-LVD:legal_act"], "names 2014/53/EU"),
    ("Price 12.5", ["listings.csv:L9999:price_min"], "does not hold"),
    ("Price 12.5", [], "cites no evidence"),
    # numbers written with a scale or as words, in English and in Chinese
    ("Price 12.5k", ["listings.csv:L0001:price_min"], "number 12500"),
    ("Price 1.25e1 each, twelve dollars", ["listings.csv:L0001:price_min"], "number 12 "),
    ("Unit price is thirteen dollars", ["listings.csv:L0001:price_min"], "number 13"),
    ("我们订购五千件", ["request:constraints:quantity"], "number 5000"),
    ("起订量八百件，单价12.5", ["listings.csv:L0001:price_min"], "number 800"),
    ("单价九块九", ["listings.csv:L0001:price_min"], "number 9"),
    # certificates and suppliers the evidence does not hold, whatever the case or short form
    ("Holds CE and FCC certificates", ["suppliers.csv:S017:certifications"], "certificate FCC"),
    ("yiwu star offers 12.5", ["listings.csv:L0001:price_min"], "names supplier"),
    ("l0099 is cheaper at 12.5", ["listings.csv:L0001:price_min"], "names l0099"),
    # a company the evidence does not hold, named with no number or id: by its legal form
    ("Shenzhen Bright Star Electronics Co., Ltd. also sells it at 12.5",
     ["listings.csv:L0001:price_min"], "names company 'Shenzhen Bright Star Electronics Co., Ltd.'"),
    ("Shenzhen Bright Appliance Co. offers 12.5", ["suppliers.csv:S017:name",
                                                   "listings.csv:L0001:price_min"],
     "names company"),
    ("Dongguan Hengli Factory is a cheaper source", ["listings.csv:L0001:price_min"],
     "names company 'Dongguan Hengli Factory'"),
    ("深圳鸿达精密电子有限公司也生产此产品，单价12.5", ["listings.csv:L0001:price_min"],
     "names company '深圳鸿达精密电子有限公司'"),
    # the seller reads English claims: another language is refused, whatever it says
    ("Спрос высокий, цена низкая", ["listings.csv:L0001:price_min"], "not in English"),
    ("需求很高，价格很低", ["listings.csv:L0001:price_min"], "not in English"),
])
def test_gate_removes_false_claims(text, cited, reason):
    # the Chinese cases check numbers, as an RFQ's Chinese draft is checked: any language
    language = "en" if reason == "not in English" else None
    kept, removed = gate([{"text": text, "evidence": cited}], EVIDENCE, NAMES, language)
    assert kept == [] and reason in removed[0]["reason"]


def _client(fake, **options):
    return ChatClient(fake.base_url, "fake-model", vision_model="fake-vision", timeout_s=1.0,
                      max_retries=options.pop("max_retries", 2), **options)


def test_good_answer_is_parsed_and_accounted():
    with FakeChatServer() as fake:
        answer, record = _client(fake).chat_json("t", _messages(), CLAIMS_SCHEMA)
    assert answer["claims"] and record.outcome == "ok" and record.attempts == 1
    assert record.prompt_tokens > 0 and record.completion_tokens > 0 and record.model == "fake-model"
    kept, removed = gate(answer["claims"], EVIDENCE, NAMES)
    assert removed == [] and len(kept) == len(answer["claims"])
    assert fake.requests[0]["response_format"] == {"type": "json_object"}


def test_an_invented_company_without_number_or_id_is_removed():
    with FakeChatServer(script=["invented_company"]) as fake:
        answer, _ = _client(fake).chat_json("t", _messages(), CLAIMS_SCHEMA)
        lie = fake.injected[0]
    kept, removed = gate(answer["claims"], EVIDENCE, NAMES)
    assert [claim["text"] for claim in removed] == [lie]
    assert "names company 'Shenzhen Hongda Precision Electronics Co., Ltd.'" in removed[0]["reason"]
    assert len(kept) == len(answer["claims"]) - 1


def test_malformed_json_is_repaired_once():
    with FakeChatServer(script=["malformed"]) as fake:
        answer, record = _client(fake).chat_json("t", _messages(), CLAIMS_SCHEMA)
    assert record.outcome == "repaired" and record.attempts == 2 and answer["claims"]
    assert "not valid" in fake.requests[1]["messages"][-1]["content"]


def test_malformed_twice_raises_with_record():
    with FakeChatServer(script=["malformed", "malformed"]) as fake:
        with pytest.raises(LLMError) as caught:
            _client(fake).chat_json("t", _messages(), CLAIMS_SCHEMA)
    assert caught.value.record.outcome == "failed" and caught.value.record.attempts == 2


@pytest.mark.parametrize("status", ["429", "500"])
def test_retries_on_429_and_5xx(status):
    with FakeChatServer(script=[status, status]) as fake:
        answer, record = _client(fake).chat_json("t", _messages(), CLAIMS_SCHEMA)
    assert answer["claims"] and len(fake.requests) == 3  # two refusals, then the answer
    assert record.attempts == 3 and record.outcome == "ok"  # the client's retries counted


def test_retried_request_and_repair_are_both_counted():
    with FakeChatServer(script=["500", "malformed"]) as fake:
        answer, record = _client(fake).chat_json("t", _messages(), CLAIMS_SCHEMA)
    assert record.outcome == "repaired" and record.attempts == len(fake.requests) == 3


def test_gives_up_after_retries():
    with FakeChatServer(script=["500"] * 5) as fake:
        with pytest.raises(LLMError, match="endpoint failed") as caught:
            _client(fake, max_retries=1).chat_json("t", _messages(), CLAIMS_SCHEMA)
    assert len(fake.requests) == 2 and caught.value.record.attempts == 2


def test_slow_answer_times_out():
    with FakeChatServer(script=["slow"], slow_s=1.5) as fake:
        with pytest.raises(LLMError, match="Timeout") as caught:
            _client(fake, max_retries=0).chat_json("t", _messages(), CLAIMS_SCHEMA)
    assert caught.value.record.attempts == 1


def test_image_goes_as_data_url():
    part = image_part(b"\xff\xd8\xffabc")
    assert part["image_url"]["url"].startswith("data:image/jpeg;base64,/9j/")


def test_from_settings_without_endpoint_is_none():
    from api.settings import Settings

    assert ChatClient.from_settings(Settings(llm_base_url=None)) is None


def test_rfq_drafts_must_be_in_their_languages():
    from agents.llm.gate import language_problem

    assert language_problem("Please quote 1000 pieces.", "en") is None
    assert language_problem("请报价一千件。", "en") == "not in English"
    assert language_problem("Please quote 1000 pieces.", "zh") == "holds no Chinese text"
    assert language_problem("请为 Ningbo Bright 报价。", "zh") is None
    assert language_problem("Café crème from Zürich, 12.5", "en") is None
