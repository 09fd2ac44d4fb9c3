"""Eval sets (the JSON Lines contract in DESIGN.md): read and validate cases."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class EvalCase:
    id: str
    market: str
    image: Path | None = None
    title: str | None = None
    description: str | None = None
    constraints: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    expect: dict[str, Any] = field(default_factory=dict)


SCHEMA_PATH = Path(__file__).resolve().parent / "sets" / "case.schema.json"


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def schema_problem(raw: Any) -> str | None:
    """The first way ``raw`` breaks ``sets/case.schema.json`` as ``field: message``, or None."""
    errors = sorted(_validator().iter_errors(raw), key=lambda e: list(e.path))
    if not errors:
        return None
    error = errors[0]
    where = "/".join(map(str, error.path)) or "case"
    if error.validator == "additionalProperties":  # a typo: name the keys it could have been
        return (f"{where}: {error.message}; known: "
                f"{', '.join(error.schema.get('properties') or {})}")
    return f"{where}: {error.message}"


def load_eval_set(path: str | Path,
                  check_market: Callable[[str], Any] | None = None) -> list[EvalCase]:
    """Cases of a JSONL eval set, each checked against ``sets/case.schema.json``; image paths
    are resolved against the set's folder. ``check_market`` raises ``ValueError`` for a market
    the agent cannot serve (the command line passes the compliance rules' lookup), so that a
    typo fails on its line before any case runs. A set without cases is refused."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"eval set not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path}: a folder; an eval set is a JSON Lines file")
    cases, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path.name}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(raw, dict):
            raise ValueError(f"{path.name}:{number}: a case is a JSON object, not "
                             f"{type(raw).__name__}")
        for key in ("id", "market"):
            if not raw.get(key):
                raise ValueError(f"{path.name}:{number}: {key}: missing")
        problem = schema_problem(raw)
        if problem and not (raw.get("image") or raw.get("title") or raw.get("description")):
            problem = None  # reported below with a clearer message
        if problem:
            raise ValueError(f"{path.name}:{number}: {problem}")
        if not (raw.get("image") or raw.get("title") or raw.get("description")):
            raise ValueError(f"{path.name}:{number}: image: a case needs an image or a title")
        if raw["id"] in seen:
            raise ValueError(f"{path.name}:{number}: id: duplicate {raw['id']!r}")
        seen.add(raw["id"])
        if check_market is not None:
            try:
                check_market(raw["market"])
            except ValueError as exc:
                raise ValueError(f"{path.name}:{number}: market: {exc}") from None
        image = path.parent / raw["image"] if raw.get("image") else None
        if image is not None and not image.is_file():
            raise ValueError(f"{path.name}:{number}: image: file not found: {raw['image']} "
                             f"(paths are relative to the set's folder, {path.parent})")
        cases.append(EvalCase(id=raw["id"], market=raw["market"], image=image,
                              title=raw.get("title"), description=raw.get("description"),
                              constraints=raw.get("constraints") or {},
                              tags=tuple(raw.get("tags") or ()), expect=raw.get("expect") or {}))
    if not cases:
        raise ValueError(f"{path.name}: no cases (an eval set holds one JSON object per line)")
    return cases
