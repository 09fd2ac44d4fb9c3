"""Eval sets (the JSON Lines contract in DESIGN.md): read and validate cases."""

from __future__ import annotations

import json
from functools import lru_cache
from dataclasses import dataclass, field
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
    where = "/".join(map(str, errors[0].path)) or "case"
    return f"{where}: {errors[0].message}"


def load_eval_set(path: str | Path) -> list[EvalCase]:
    """Cases of a JSONL eval set, each checked against ``sets/case.schema.json``; image paths
    are resolved against the set's folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"eval set not found: {path}")
    cases, seen = [], set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path.name}:{number}: not valid JSON ({exc.msg})") from exc
        for key in ("id", "market"):
            if not raw.get(key) if isinstance(raw, dict) else True:
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
        image = path.parent / raw["image"] if raw.get("image") else None
        if image is not None and not image.exists():
            raise ValueError(f"{path.name}:{number}: image: file not found: {raw['image']}")
        cases.append(EvalCase(id=raw["id"], market=raw["market"], image=image,
                              title=raw.get("title"), description=raw.get("description"),
                              constraints=raw.get("constraints") or {},
                              tags=tuple(raw.get("tags") or ()), expect=raw.get("expect") or {}))
    return cases
