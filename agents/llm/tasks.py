"""What the model is asked to write, each with its JSON Schema and its prompt.

Every task hands the model the evidence it may use as a JSON block (id -> source, record, field,
value) and asks for claims that cite those ids; ``agents.llm.gate`` then removes what the evidence
does not hold. The product breakdown is the one task that reads the photo instead of evidence:
its answer is recorded as the model's observation, never as a catalog fact.
"""

from __future__ import annotations

import json
from typing import Any

from agents.llm.client import ChatClient, image_part

SYSTEM = (
    "You write for a sourcing agent that helps cross-border sellers buy from factories. State only "
    "facts found in the EVIDENCE block, cite the evidence ids of every fact you state, and copy "
    "numbers, names and identifiers exactly as the evidence gives them. Never invent a supplier, a "
    "price, a certificate or a law. Answer with one JSON object that matches the SCHEMA, nothing "
    "else.")

CLAIMS_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["claims"],
    "properties": {"claims": {"type": "array", "maxItems": 12, "items": {
        "type": "object", "required": ["text", "evidence"],
        "properties": {"text": {"type": "string", "minLength": 1, "maxLength": 600},
                       "evidence": {"type": "array", "items": {"type": "string"}}}}}},
}
RFQ_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["en", "zh", "evidence"],
    "properties": {"en": {"type": "string", "minLength": 1, "maxLength": 3000},
                   "zh": {"type": "string", "minLength": 1, "maxLength": 3000},
                   "evidence": {"type": "array", "items": {"type": "string"}}},
}
FACT_KEYS = ("mains_powered", "radio", "battery", "coin_battery", "for_children", "food_contact",
             "skin_contact")
BREAKDOWN_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["category"],
    "properties": {
        "category": {"type": "string", "maxLength": 200},
        "materials": {"type": "array", "items": {"type": "string", "maxLength": 100}},
        "production_method": {"type": "string", "maxLength": 300},
        "key_attributes": {"type": "object"},
        "intended_user": {"type": "string", "maxLength": 200},
        "facts": {"type": "object", "additionalProperties": False,
                  "properties": {key: {"type": ["boolean", "null"]} for key in FACT_KEYS}},
    },
}


def _evidence_block(evidence: dict[str, dict[str, Any]], ids: list[str]) -> str:
    records = {eid: evidence[eid] for eid in dict.fromkeys(ids) if eid in evidence}
    return json.dumps(records, ensure_ascii=False, default=str, indent=1)


def _messages(task: str, evidence: dict[str, dict[str, Any]], ids: list[str],
              schema: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": (
                f"TASK: {task}\n\nEVIDENCE:\n```json\n{_evidence_block(evidence, ids)}\n```\n\n"
                f"SCHEMA:\n```json\n{json.dumps(schema)}\n```")}]


def market_narrative(client: ChatClient, evidence: dict[str, dict[str, Any]], ids: list[str],
                     market: str) -> tuple[dict[str, Any], Any]:
    task = (f"In at most 6 short claims, tell a seller what the {market} marketplace evidence "
            "says: the price band, demand, competition, and niches worth a look (sub-segments "
            "where demand per listing is high or ratings are weak). One fact or two per claim.")
    return client.chat_json("market_narrative", _messages(task, evidence, ids, CLAIMS_SCHEMA),
                            CLAIMS_SCHEMA)


def rfq_draft(client: ChatClient, evidence: dict[str, dict[str, Any]], ids: list[str],
              supplier_name: str) -> tuple[dict[str, Any], Any]:
    task = (f"Draft a short request for quotation to the supplier {supplier_name}, in English "
            "(`en`) and in Simplified Chinese (`zh`): the product and listing, the quantity, the "
            "target unit price, and the certificates or test reports needed for the market, "
            "using only the evidence. List every evidence id you used in `evidence`.")
    return client.chat_json("rfq_draft", _messages(task, evidence, ids, RFQ_SCHEMA), RFQ_SCHEMA)


def run_summary(client: ChatClient, evidence: dict[str, dict[str, Any]],
                ids: list[str]) -> tuple[dict[str, Any], Any]:
    task = ("Summarise this sourcing run for the seller in at most 4 claims: the best supplier "
            "and why, the price and the market's price band, and what compliance needs.")
    return client.chat_json("summary", _messages(task, evidence, ids, CLAIMS_SCHEMA),
                            CLAIMS_SCHEMA)


def product_breakdown(client: ChatClient, image_bytes: bytes,
                      mime: str = "image/jpeg") -> tuple[dict[str, Any], Any]:
    text = ("Describe the product in the photo for customs classification and product-safety "
            "checks: its category, materials, production method, key attributes, intended user, "
            "and in `facts` true / false / null (unsure) for: " + ", ".join(FACT_KEYS)
            + f".\n\nSCHEMA:\n```json\n{json.dumps(BREAKDOWN_SCHEMA)}\n```")
    messages = [{"role": "system", "content": SYSTEM.replace("the EVIDENCE block", "the photo")},
                {"role": "user", "content": [{"type": "text", "text": text},
                                             image_part(image_bytes, mime)]}]
    return client.chat_json("product_breakdown", messages, BREAKDOWN_SCHEMA, vision=True)
