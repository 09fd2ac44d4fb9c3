"""Chat with any OpenAI-compatible endpoint (Qwen on DashScope or vLLM, Ollama, OpenAI) through the
``openai`` package, and get JSON back that matches a schema.

- **Retries**: the ``openai`` client retries 429, 5xx, timeouts and dropped connections itself,
  with exponential backoff and the server's ``Retry-After`` honoured (``max_retries``).
- **Limits**: every call has a timeout (``timeout_s``) and a completion budget (``max_tokens``).
- **Structured output**: the request asks for a JSON object (``response_format``); the answer is
  parsed and validated against the task's JSON Schema. One repair attempt sends the problem back
  to the model; a second bad answer raises ``LLMError``.
- **Accounting**: each call returns a ``CallRecord`` (task, model, tokens, latency, attempts:
  every HTTP request sent, the client's own retries included; outcome) that the result's
  ``llm`` section lists.

Nothing here runs at import time; ``ChatClient.from_settings`` returns None when no endpoint is
configured, and every caller then takes its deterministic path.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from jsonschema import Draft202012Validator


class LLMError(RuntimeError):
    """The model did not give a usable answer (API error after retries, or invalid JSON twice).
    ``endpoint_failed``: the endpoint itself failed (down, timing out, answering something that
    is not an API response), so the next call would most likely fail the same way."""

    def __init__(self, message: str, record: CallRecord, endpoint_failed: bool = False) -> None:
        super().__init__(message)
        self.record = record
        self.endpoint_failed = endpoint_failed


@dataclass
class CallRecord:
    task: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    # HTTP requests sent: the answers asked for (1, or 2 with the repair attempt) and the
    # openai client's own retries of 429, 5xx and timeouts inside each
    attempts: int = 0
    outcome: str = "ok"  # ok | repaired | failed
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record.update(record.pop("extra"))
        return record


def image_part(image_bytes: bytes, mime: str = "image/jpeg") -> dict[str, Any]:
    """A chat message part carrying a photo as a data URL (what vision models accept)."""
    encoded = base64.b64encode(image_bytes).decode("ascii")
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{encoded}"}}


def _first_json_object(text: str) -> Any:
    """The JSON in an answer, tolerating a Markdown fence around it."""
    text = text.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text[text.find("\n") + 1:] if "\n" in text else text
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("the answer holds no JSON object")
    return json.loads(text[start:end + 1])


def _requests_sent(exc: Exception) -> int:
    """Requests the openai client sent before raising ``exc``: its last request carries the
    count of retries before it (the ``x-stainless-retry-count`` header the client sets)."""
    request = getattr(exc, "request", None)
    try:
        return 1 + int(request.headers.get("x-stainless-retry-count", 0))
    except (AttributeError, TypeError, ValueError):  # no request (or no count) to read
        return 1


class ChatClient:
    """One configured endpoint and model; see the module docstring."""

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 vision_model: str | None = None, timeout_s: float = 30.0,
                 max_retries: int = 3, max_tokens: int = 800, client: Any = None) -> None:
        from openai import OpenAI

        self.model = model
        self.vision_model = vision_model
        self.max_tokens = max_tokens
        self._client = client or OpenAI(base_url=base_url, api_key=api_key or "not-needed",
                                        timeout=timeout_s, max_retries=max_retries)

    @classmethod
    def from_settings(cls, settings: Any) -> ChatClient | None:
        if not settings.llm_base_url:
            return None
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        return cls(settings.llm_base_url, settings.llm_model, api_key=key,
                   vision_model=settings.llm_vision_model, timeout_s=settings.llm_timeout_s,
                   max_retries=settings.llm_max_retries, max_tokens=settings.llm_max_tokens)

    def _ask(self, model: str, messages: list[dict[str, Any]], record: CallRecord) -> str:
        from openai import OpenAIError

        try:
            raw = self._client.chat.completions.with_raw_response.create(
                model=model, messages=messages, max_tokens=self.max_tokens, temperature=0,
                response_format={"type": "json_object"})
            record.attempts += 1 + raw.retries_taken
            response = raw.parse()
            if response.usage is not None:
                record.prompt_tokens += response.usage.prompt_tokens or 0
                record.completion_tokens += response.usage.completion_tokens or 0
            choice = response.choices[0] if response.choices else None
            return (choice.message.content or "") if choice is not None else ""
        except (OpenAIError, ValueError, TypeError, AttributeError) as exc:
            # besides the API's own errors: a body that is not a chat completion at all (an
            # HTML page from a proxy or a wrong base URL answering 200) fails to parse here
            if isinstance(exc, OpenAIError):
                record.attempts += _requests_sent(exc)
            record.outcome, record.error = "failed", f"{type(exc).__name__}: {exc}"[:300]
            raise LLMError(f"{record.task}: the model endpoint failed: {record.error}",
                           record, endpoint_failed=True) from exc

    def chat_json(self, task: str, messages: list[dict[str, Any]], schema: dict[str, Any],
                  vision: bool = False) -> tuple[dict[str, Any], CallRecord]:
        """The model's answer as a dict valid against ``schema``, with its call record.

        Raises ``LLMError`` (carrying the record) when the endpoint fails after its retries or
        the answer is still invalid after one repair attempt.
        """
        model = (self.vision_model or self.model) if vision else self.model
        record = CallRecord(task=task, model=model)
        validator = Draft202012Validator(schema)
        start = time.perf_counter()
        try:
            conversation = list(messages)
            for attempt in range(2):
                content = self._ask(model, conversation, record)
                try:
                    answer = _first_json_object(content)
                    problems = sorted(validator.iter_errors(answer), key=lambda e: list(e.path))
                    if problems:
                        where = "/".join(map(str, problems[0].path)) or "(top level)"
                        raise ValueError(f"{where}: {problems[0].message}")
                except ValueError as exc:  # json.JSONDecodeError is a ValueError
                    if attempt == 1:
                        record.outcome, record.error = "failed", f"invalid answer: {exc}"[:300]
                        raise LLMError(f"{task}: the model's answer stayed invalid after one "
                                       f"repair attempt: {exc}", record) from exc
                    conversation += [
                        {"role": "assistant", "content": content[:4000]},
                        {"role": "user", "content": f"Your answer was not valid ({exc}). Reply "
                                                    "again with one JSON object only, matching "
                                                    "the schema you were given."}]
                    continue
                record.outcome = "ok" if attempt == 0 else "repaired"
                return answer, record
            raise AssertionError("unreachable")
        finally:
            record.latency_ms = round((time.perf_counter() - start) * 1000, 1)
