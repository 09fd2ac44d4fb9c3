"""Grounding eval: does the gate remove every false claim a model slips in, and keep the true ones?

The agent runs on eval cases with its model pointed at the local fake chat server
(``evals.fake_llm``), twice: once answering truthfully from the evidence it is given, once with
one false claim (invented supplier, wrong number, missing evidence id, uncited law, in turn) in
every ``false_every``-th answer. Reported:

- ``false_removed_rate``: injected false claims found among the removed ones / injected;
- ``true_removed_rate``: true claims removed / true claims (truthful run);
- counts behind both, and the calls and tokens spent.

The fake states facts as "The <field> of <record> is <value>", so this measures the gate, not a
real model's prose; with a real endpoint, ``grounding.model`` in each result gives the same counts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from agents.llm.client import ChatClient
from agents.run import SourcingRunner
from evals.fake_llm import FakeChatServer


def _removed_texts(result: dict[str, Any]) -> list[str]:
    return [item.get("text", "") for item in
            ((result.get("grounding") or {}).get("model") or {}).get("unsupported") or []]


def _kept_texts(result: dict[str, Any]) -> list[str]:
    texts = [claim["text"] for claim in (result.get("market") or {}).get("narrative") or []]
    texts += [claim["text"] for claim in result.get("summary") or []]
    for candidate in result.get("shortlist") or []:
        rfq = candidate.get("rfq") or {}
        texts += [rfq.get("en", ""), rfq.get("zh", "")]
    return texts


def _run(services: Any, cases: Iterable[Any], fake: FakeChatServer) -> list[dict[str, Any]]:
    client = ChatClient(fake.base_url, "fake-model", timeout_s=10.0, max_retries=1)
    runner = SourcingRunner(dataclasses.replace(services, llm=client))
    return [runner.run_file(case.image, case.market) for case in cases]


def grounding_eval(services: Any, cases: list[Any], false_every: int = 3) -> dict[str, Any]:
    """Run ``cases`` (with photos) truthfully and with injected lies; return the rates."""
    cases = [case for case in cases if case.image is not None]
    with FakeChatServer() as fake:
        truthful = _run(services, cases, fake)
    true_total = sum(((r.get("grounding") or {}).get("model") or {}).get("total", 0)
                     for r in truthful)
    true_removed = sum(len(_removed_texts(r)) for r in truthful)

    with FakeChatServer(false_every=false_every) as fake:
        lying = _run(services, cases, fake)
        injected = list(fake.injected)
    removed = [text for r in lying for text in _removed_texts(r)]
    kept = " || ".join(text for r in lying for text in _kept_texts(r))
    caught = sum(1 for lie in injected if any(lie in text for text in removed))
    slipped = sum(1 for lie in injected if lie in kept)
    calls = sum(len((r.get("llm") or {}).get("calls") or []) for r in truthful + lying)
    return {
        "cases": len(cases), "false_every": false_every,
        "false_injected": len(injected), "false_removed": caught, "false_kept": slipped,
        "false_removed_rate": round(caught / len(injected), 4) if injected else None,
        "true_claims": true_total, "true_removed": true_removed,
        "true_removed_rate": round(true_removed / true_total, 4) if true_total else None,
        "model_calls": calls,
    }
