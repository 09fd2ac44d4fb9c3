"""A small local fake of the OpenAI chat-completions API, for tests and the grounding eval.

It serves ``POST /v1/chat/completions`` over real HTTP on 127.0.0.1, so the real ``openai``
client, its retries and its parsing are exercised. It answers from the prompt itself: it reads
the EVIDENCE block the writer sends and states facts from it, citing their ids (a truthful
model). It can be told to misbehave:

- ``script``: a list of behaviours for the next requests, one each, then the default:
  ``"good"``, ``"malformed"`` (not JSON), ``"invented_supplier"``, ``"wrong_price"``,
  ``"missing_evidence"``, ``"uncited_law"``, ``"invented_company"`` (a company named with no
  number or id), ``"slow"`` (sleeps ``slow_s``), ``"429"``, ``"500"``, ``"html"`` (a
  200 whose body is a web page, as a proxy or a wrong base URL answers);
- ``false_every``: every n-th good answer carries one false claim (cycling through invented
  supplier id, wrong number, evidence id that does not exist, law that is not cited, invented
  company name).

Every false statement it injects is recorded in ``injected`` (its text), so an eval can check
that each was removed.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

EVIDENCE_BLOCK = re.compile(r"EVIDENCE:\n```json\n(.*?)\n```", re.S)
LIES = ("invented_supplier", "wrong_price", "missing_evidence", "uncited_law",
        "invented_company")


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _facts(evidence: dict[str, dict[str, Any]], limit: int = 4) -> list[tuple[str, dict]]:
    chosen = [(eid, record) for eid, record in evidence.items()
              if isinstance(record.get("value"), (int, float, str, list))
              and not isinstance(record.get("value"), bool) and _fmt(record["value"]).strip()]
    numeric = [item for item in chosen if isinstance(item[1]["value"], (int, float))]
    return (numeric + [item for item in chosen if item not in numeric])[:limit]


def _sentence(record: dict[str, Any], chinese: bool = False) -> str:
    field, rid, value = record.get("field"), record.get("record_id"), _fmt(record.get("value"))
    return f"{rid} 的 {field} 为 {value}。" if chinese else f"The {field} of {rid} is {value}."


class FakeChatServer:
    """Context manager: ``with FakeChatServer() as fake: fake.base_url``."""

    def __init__(self, script: list[str] | None = None, false_every: int = 0,
                 slow_s: float = 2.0) -> None:
        self.script: deque[str] = deque(script or [])
        self.false_every = false_every
        self.slow_s = slow_s
        self.requests: list[dict[str, Any]] = []
        self.injected: list[str] = []
        self._good = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- answers ---------------------------------------------------------------------------
    def _next_behaviour(self) -> str:
        with self._lock:
            if self.script:
                return self.script.popleft()
            self._good += 1
            if self.false_every and self._good % self.false_every == 0:
                return LIES[(self._good // self.false_every - 1) % len(LIES)]
            return "good"

    def _lie(self, kind: str, facts: list[tuple[str, dict]]) -> tuple[str, list[str]]:
        eid, record = facts[0] if facts else ("x", {"record_id": "?", "field": "?", "value": 1})
        if kind == "invented_supplier":
            text = f"Supplier S999 also makes this product at the same {record.get('field')}."
            cited = [eid]
        elif kind == "wrong_price":
            number = next((r["value"] for _, r in facts if isinstance(r["value"], (int, float))),
                          10.0)
            text = f"The {record.get('field')} of {record.get('record_id')} is {number * 1.37 + 1:.2f}."
            cited = [eid]
        elif kind == "missing_evidence":
            text = (f"An audit confirms the {record.get('field')} of {record.get('record_id')}: "
                    f"{_fmt(record.get('value'))}.")
            cited = ["audits.csv:A000:result"]
        elif kind == "invented_company":  # no number, no id: only its name gives it away
            text = "Shenzhen Hongda Precision Electronics Co., Ltd. also makes this product."
            cited = [eid]
        else:  # uncited_law
            text = f"Imports need a declaration under 2099/99/EU, as {record.get('record_id')} shows."
            cited = [eid]
        with self._lock:
            self.injected.append(text)
        return text, cited

    def _answer(self, body: dict[str, Any], behaviour: str) -> str:
        messages = body.get("messages") or []
        prompt = messages[-1].get("content") if messages else ""
        if isinstance(prompt, list):  # vision request: text part and image part
            if not any(part.get("type") == "image_url" for part in prompt):
                return json.dumps({"error": "no image"})
            return json.dumps({"category": "small kitchen appliance", "materials": ["plastic"],
                               "production_method": "injection moulding",
                               "intended_user": "adults", "facts": {"mains_powered": True}})
        if "not valid" in str(prompt):  # a repair request: answer the original task again
            prompt = next((m["content"] for m in messages if m.get("role") == "user"), "")
        match = EVIDENCE_BLOCK.search(str(prompt))
        evidence = json.loads(match.group(1)) if match else {}
        facts = _facts(evidence)
        lie = self._lie(behaviour, facts) if behaviour in LIES else None
        if '"required": ["en", "zh", "evidence"]' in str(prompt):
            en = " ".join(_sentence(record) for _, record in facts)
            zh = "".join(_sentence(record, chinese=True) for _, record in facts)
            cited = [eid for eid, _ in facts]
            if lie:
                en, cited = f"{en} {lie[0]}", cited + lie[1]
            return json.dumps({"en": "Request for quotation. " + en, "zh": "询价。" + zh,
                               "evidence": cited}, ensure_ascii=False)
        claims = [{"text": _sentence(record), "evidence": [eid]} for eid, record in facts]
        if lie:
            claims.append({"text": lie[0], "evidence": lie[1]})
        return json.dumps({"claims": claims}, ensure_ascii=False)

    # -- HTTP ------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, payload: dict[str, Any],
                      headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                fake.requests.append(body)
                behaviour = fake._next_behaviour()
                if behaviour in ("429", "500"):
                    status = int(behaviour)
                    self._send(status, {"error": {"message": f"scripted {status}"}},
                               {"retry-after-ms": "5"})
                    return
                if behaviour == "html":  # a proxy or a wrong base URL answering 200
                    page = b"<html><body>Sign in to continue</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                if behaviour == "slow":
                    time.sleep(fake.slow_s)
                content = ("Sure! Here is the answer: {not json"
                           if behaviour == "malformed" else fake._answer(body, behaviour))
                self._send(200, {
                    "id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion",
                    "created": 0, "model": body.get("model", "fake"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": len(json.dumps(body)) // 4,
                              "completion_tokens": len(content) // 4,
                              "total_tokens": (len(json.dumps(body)) + len(content)) // 4}})

        return Handler

    def __enter__(self) -> FakeChatServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start the server first (use it as a context manager)"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"
