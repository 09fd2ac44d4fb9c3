"""The writer: where a configured model helps people read the result, behind the grounding gate.

Runs after the shortlist. With no model configured (``Services.llm`` is None) it changes nothing.
With one, it adds

- ``market.narrative``: claims about the market written from the market section's evidence;
- ``shortlist[i].rfq``: a request for quotation per candidate in English and Chinese, using only
  that candidate's cited facts (listing, price, MOQ, quantity, certificates for the market);
- ``summary``: a few claims about the whole run;

then passes every claim and draft through ``agents.llm.gate``. What the evidence does not hold is
removed and counted under ``grounding.model``; a draft that fails is replaced by the deterministic
template draft. A failed call (endpoint down, invalid JSON twice) leaves the deterministic answer
in place and says so in ``warnings``. ``llm`` lists each call (model, tokens, latency, outcome).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langgraph.runtime import Runtime

from agents.context import Services
from agents.evidence import cite
from agents.llm import tasks
from agents.llm.client import CallRecord, LLMError
from agents.llm.gate import check, gate
from agents.state import State


def ids_in(value: Any, evidence: dict[str, Any]) -> list[str]:
    """Evidence ids mentioned anywhere inside ``value`` (a section of the result), in order."""
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, str):
            if item in evidence:
                found.append(item)
        elif isinstance(item, dict):
            for child in item.values():
                walk(child)
        elif isinstance(item, (list, tuple)):
            for child in item:
                walk(child)

    walk(value)
    return list(dict.fromkeys(found))


def missing_certificates(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    return [gap for gap in (candidate.get("compliance") or {}).get("gaps") or []
            if gap.get("status") == "missing"]


def gap_evidence(evidence: dict[str, dict[str, Any]], gaps: list[dict[str, Any]]) -> list[str]:
    """Cite, for each certificate gap, the legal act and the documents its rule asks for."""
    ids = []
    for gap in gaps:
        ids.append(cite(evidence, "rules", gap["rule_id"], "legal_act", gap["legal_act"]))
        ids.append(cite(evidence, "rules", gap["rule_id"], "supplier_evidence",
                        list(gap.get("needs") or [])))
    return ids


def candidate_evidence(result: dict[str, Any], candidate: dict[str, Any]) -> list[str]:
    """The evidence a candidate's claims cite, then its price's and certificate gaps'."""
    evidence = result["evidence"]
    wanted = set(candidate.get("claims") or [])
    ids = [eid for claim in result.get("claims") or [] if claim.get("id") in wanted
           for eid in claim.get("evidence") or []]
    ids += ids_in(candidate.get("price"), evidence)
    ids += gap_evidence(evidence, missing_certificates(candidate))
    return list(dict.fromkeys(ids))


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def template_rfq(result: dict[str, Any], candidate: dict[str, Any],
                 quantity_id: str | None) -> dict[str, Any]:
    """The deterministic draft: the same facts, from the candidate's own fields and evidence."""
    evidence = result["evidence"]
    listing = candidate.get("listing") or {}
    supplier = candidate.get("supplier") or {}
    sid, lid = supplier.get("supplier_id"), listing.get("listing_id")
    cited = [eid for eid in (f"suppliers.csv:{sid}:name", f"listings.csv:{lid}:title")
             if eid in evidence]
    en = [f"Dear {supplier.get('name')},", f"we are interested in your listing {lid} "
          f"\"{listing.get('title')}\"."]
    zh = [f"{supplier.get('name')} 您好：", f"我们对贵司的商品 {lid}（{listing.get('title')}）感兴趣。"]
    if quantity_id:
        quantity = evidence[quantity_id]["value"]
        en.append(f"Please quote for {_fmt(quantity)} pieces.")
        zh.append(f"请报 {_fmt(quantity)} 件的价格。")
        cited.append(quantity_id)
    price_min, price_max = f"listings.csv:{lid}:price_min", f"listings.csv:{lid}:price_max"
    if price_min in evidence and price_max in evidence:
        low, high = evidence[price_min]["value"], evidence[price_max]["value"]
        en.append(f"Your listed unit price is {_fmt(low)} to {_fmt(high)}; please confirm the "
                  "price at our quantity.")
        zh.append(f"贵司标价为每件 {_fmt(low)} 至 {_fmt(high)}，请确认该数量下的单价。")
        cited += [price_min, price_max]
    missing = missing_certificates(candidate)
    if missing:
        names = "; ".join(f"{' or '.join(gap.get('needs') or [])} ({gap['legal_act']})"
                          for gap in missing)
        en.append(f"For our market we need: {names}. Can you provide these?")
        zh.append(f"我们的市场需要：{names}。贵司能否提供？")
        cited += gap_evidence(evidence, missing)
    return {"en": " ".join(en), "zh": "".join(zh), "evidence": list(dict.fromkeys(cited)),
            "source": "template"}


def _checked_rfq(draft: dict[str, Any], evidence: dict[str, Any],
                 names: list[str]) -> str | None:
    for language in ("en", "zh"):
        reason = check({"text": draft[language], "evidence": draft["evidence"]}, evidence, names,
                       language)
        if reason:
            return f"{language}: {reason}"
    return None


def writer_node(state: State, runtime: Runtime[Services]) -> dict[str, Any]:
    services = runtime.context
    client = services.llm
    result = state.get("result")
    if client is None or not result:
        return {}
    result = dict(result)
    evidence = result["evidence"]
    names = [supplier.name for supplier in services.catalog.suppliers.values()]
    records, warnings, removed = [], list(result.get("warnings") or []), []
    breakdown_call = ((result.get("product") or {}).get("breakdown") or {}).get("call")
    if breakdown_call:
        records.append(breakdown_call)
    total = supported = 0

    def judge(claims: Iterable[dict[str, Any]], about: str) -> list[dict[str, Any]]:
        nonlocal total, supported
        claims = [{**claim, "about": about, "source": "model"} for claim in claims]
        kept, dropped = gate(claims, evidence, names)
        total += len(claims)
        supported += len(kept)
        removed.extend(dropped)
        return kept

    # once the endpoint has failed after its retries (down, timing out, not an API), the tasks
    # left are answered from data at once: each would wait out the same timeouts and retries,
    # minutes a run against an endpoint that hangs
    down: list[str] = []
    skipped: list[str] = []

    def ask(task: str, call: Any, *args: Any) -> tuple[dict[str, Any], Any]:
        if down:
            raise LLMError(f"{task}: skipped", CallRecord(task=task, model=client.model,
                                                          outcome="skipped"))
        try:
            return call(client, *args)
        except LLMError as exc:
            if exc.endpoint_failed:
                down.append(exc.record.error or "failed")
            raise

    def failed(task: str, exc: LLMError, fallback: str) -> None:
        if exc.record.outcome == "skipped":
            skipped.append(task)
            return
        records.append(exc.record.as_dict())
        warnings.append(f"{task}: the model failed ({exc.record.error}); {fallback}")

    market = dict(result.get("market") or {})
    market_ids = ids_in(market, evidence)
    if market_ids:
        try:
            answer, record = ask("market narrative", tasks.market_narrative, evidence,
                                 market_ids, str(market.get("market") or ""))
            records.append(record.as_dict())
            market["narrative"] = judge(answer["claims"], "market")
        except LLMError as exc:
            failed("market narrative", exc, "the market section stands without a narrative")
        result["market"] = market

    quantity = (result.get("request") or {}).get("constraints", {}).get("quantity")
    quantity_id = (cite(evidence, "request", "constraints", "quantity", quantity)
                   if quantity is not None else None)
    shortlist = []
    for candidate in result.get("shortlist") or []:
        candidate = dict(candidate)
        ids = candidate_evidence(result, candidate) + ([quantity_id] if quantity_id else [])
        fallback = template_rfq(result, candidate, quantity_id)
        supplier_name = (candidate.get("supplier") or {}).get("name") or "the supplier"
        try:
            answer, record = ask(f"RFQ draft for {supplier_name}", tasks.rfq_draft, evidence,
                                 ids, supplier_name)
            records.append(record.as_dict())
            draft = {"en": answer["en"], "zh": answer["zh"], "evidence": answer["evidence"],
                     "source": "model"}
            total += 1
            reason = _checked_rfq(draft, evidence, names)
            if reason is None:
                supported += 1
                candidate["rfq"] = draft
            else:
                removed.append({"about": f"shortlist[{candidate.get('rank', 0) - 1}].rfq",
                                "text": draft["en"], "evidence": draft["evidence"],
                                "source": "model", "reason": reason})
                candidate["rfq"] = fallback
        except LLMError as exc:
            failed(f"RFQ draft for {supplier_name}", exc, "the template draft is shown")
            candidate["rfq"] = fallback
        shortlist.append(candidate)
    result["shortlist"] = shortlist

    summary_ids = list(dict.fromkeys(
        eid for claim in result.get("claims") or [] for eid in claim.get("evidence") or []))
    if summary_ids:
        try:
            answer, record = ask("summary", tasks.run_summary, evidence, summary_ids)
            records.append(record.as_dict())
            result["summary"] = judge(answer["claims"], "summary")
        except LLMError as exc:
            failed("summary", exc, "no summary")

    if skipped:
        warnings.append(f"model: the endpoint failed ({down[0]}), so {len(skipped)} later "
                        f"task(s) were not sent to it and are answered from data: "
                        f"{', '.join(skipped)}")
    grounding = dict(result.get("grounding") or {})
    grounding["model"] = {"total": total, "supported": supported, "removed": len(removed),
                          "unsupported": removed}
    result["grounding"] = grounding
    result["warnings"] = warnings
    result["llm"] = {
        "model": client.model, "calls": records,
        "prompt_tokens": sum(record["prompt_tokens"] for record in records),
        "completion_tokens": sum(record["completion_tokens"] for record in records),
    }
    return {"result": result, "evidence": evidence}


def product_breakdown(client: Any, image_bytes: bytes, product: dict[str, Any]
                      ) -> tuple[dict[str, Any], list[str]]:
    """Ask the vision model what the photo shows (``product.breakdown``, marked as the model's
    observation) and fill the compliance facts (``mains_powered``, ``for_children``...) that the
    catalog listing leaves unknown; ``product.attribute_sources`` says which came from the
    model. Returns the new product and warnings; a failed call changes nothing."""
    mime = "image/png" if image_bytes[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    try:
        answer, record = tasks.product_breakdown(client, image_bytes, mime)
    except LLMError as exc:
        product = {**product, "breakdown": {"source": "model", "call": exc.record.as_dict()}}
        return product, [f"product breakdown: the model failed ({exc.record.error}); the "
                         "catalog's facts stand alone"]
    attributes = dict(product.get("attributes") or {})
    sources = dict(product.get("attribute_sources") or {})
    for key, value in (answer.get("facts") or {}).items():
        if value is not None and key not in attributes:
            attributes[key] = value
            sources[key] = "model"
    breakdown = {key: answer[key] for key in ("category", "materials", "production_method",
                                              "key_attributes", "intended_user") if key in answer}
    breakdown.update({"source": "model", "model": record.model, "call": record.as_dict()})
    return {**product, "attributes": attributes, "attribute_sources": sources,
            "breakdown": breakdown}, []
