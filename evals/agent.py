"""The agent interface that evaluators score, and how an agent is named on the command line.

**An agent is a callable** ``agent(request: dict) -> dict`` that returns the result contract (see
the project README, "Result contract", and ``api/schemas/result.schema.json``). ``request`` holds:

- ``id``: the case id (for logging only; an agent must not look answers up by it);
- ``market``: ISO code of the target market (``"US"``, ``"EU"``...);
- ``image``: absolute path of the query photo, or None for a text-only case;
- ``title`` / ``description``: the seller's words, or None;
- ``constraints``: hard constraints such as ``{"max_moq": 50, "capabilities": ["small_batch"]}``.

An agent that cannot answer a request raises; the case is then counted as a failure and the run
goes on. So is a result that is not a JSON object, or whose fields the metrics cannot read (a
``shortlist`` that is not a list of objects, say); the error says which. Only the keys a metric
reads need to be present in the result (for example ``products`` / ``shortlist`` for recall,
``compliance.requirements`` for compliance scores).

``sourcing eval run --agent SPEC`` loads ``SPEC`` = ``package.module:name`` or
``path/to/file.py:name``; ``name`` is the agent callable, or a class / factory that takes no
arguments and returns one.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from evals.sets import EvalCase

Agent = Callable[[dict[str, Any]], dict[str, Any]]


def case_request(case: EvalCase) -> dict[str, Any]:
    return {"id": case.id, "market": case.market,
            "image": str(case.image) if case.image is not None else None,
            "title": case.title, "description": case.description,
            "constraints": dict(case.constraints or {})}


def import_file(path: Path, name: str) -> ModuleType:
    """Import the Python file ``path`` as module ``name`` (registered in ``sys.modules`` so that
    its dataclasses and pickling work); a failed import leaves nothing registered."""
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise ValueError(f"cannot load {path}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _module(spec: str) -> Any:
    """The agent's module; anything its import raises (a syntax error, a missing dependency, an
    error in its top-level code) becomes a ``ValueError`` naming the file or module."""
    if spec.endswith(".py") or "/" in spec:
        path = Path(spec).resolve()
        if not path.is_file():
            raise ValueError(f"agent file not found: {spec}")
        try:
            return import_file(path, f"_eval_agent_{path.stem}")
        except Exception as exc:  # noqa: BLE001 - whatever the student's file raises
            raise ValueError(f"cannot load agent file {spec}: {_described(exc)}") from exc
    try:
        return importlib.import_module(spec)
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"cannot import agent module {spec!r}: {_described(exc)}") from exc


def _described(exc: BaseException) -> str:
    """An exception in one line, with the line a syntax error is on."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"


def load_agent(spec: str) -> Agent:
    """The agent named by ``module:name`` or ``file.py:name`` (see the module docstring)."""
    if ":" not in spec:
        raise ValueError(f"--agent wants MODULE:NAME or FILE.py:NAME, got {spec!r}")
    where, name = spec.rsplit(":", 1)
    module = _module(where)
    target = getattr(module, name, None)
    if target is None:
        raise ValueError(f"{where} has no attribute {name!r}")
    if inspect.isclass(target) or (callable(target)
                                   and not inspect.signature(target).parameters):
        try:  # a class, or a factory
            target = target()
        except Exception as exc:  # noqa: BLE001
            raise ValueError(f"creating the agent {spec} failed: {_described(exc)}") from exc
    if not callable(target):
        raise ValueError(f"{spec} is not callable: an agent maps a request dict to a result")
    return target


class ProjectAgent:
    """This project's agent behind the interface (the default of ``eval run``): a request with a
    photo runs the sourcing graph (``runner``), a text-only request the text-only compliance
    check (``text_agent``, see ``evals.compliance.text_only_agent``)."""

    def __init__(self, runner: Any = None, text_agent: Agent | None = None) -> None:
        self.runner = runner
        self.text_agent = text_agent
        parts = ([f"sourcing graph, {runner.services.image_embedder.name}"] if runner else []) + (
            ["text-only compliance check"] if text_agent else [])
        self.name = " + ".join(parts) or "nothing"

    def __call__(self, request: dict[str, Any]) -> dict[str, Any]:
        if not request.get("image"):
            if self.text_agent is None:
                raise ValueError(f"case {request.get('id')} has no photo and no text agent was "
                                 "given")
            return self.text_agent(request)
        if self.runner is None:
            raise ValueError(f"case {request.get('id')} has a photo but no image agent was given")
        return self.runner.run_file(request["image"], request["market"],
                                    constraints=request.get("constraints") or None,
                                    title=request.get("title"),
                                    description=request.get("description"))


def provenance(services: Any = None, settings: Any = None,
               set_path: str | Path | None = None) -> dict[str, Any]:
    """What a report's figures depend on: code version, data and index fingerprints, settings."""
    import hashlib
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    record: dict[str, Any] = {}
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=5, check=True).stdout.strip()
        record["code_version"] = head + ("+modified" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        from importlib.metadata import PackageNotFoundError, version

        try:
            record["code_version"] = f"sourcing-agent {version('sourcing-agent')}"
        except PackageNotFoundError:
            record["code_version"] = "unknown"
    if set_path is not None and Path(set_path).is_file():
        record["set_sha256"] = hashlib.sha256(Path(set_path).read_bytes()).hexdigest()
    if services is not None:
        from retrieval.build import catalog_fingerprint

        record["catalog_fingerprint"] = catalog_fingerprint(services.catalog)
        record["index_fingerprint"] = getattr(services.index, "catalog_fingerprint", None)
        record["index_size"] = len(services.index)
        record["embedder"] = services.image_embedder.name
    if settings is not None:
        record["settings"] = {key: (str(value) if value is not None else None)
                              for key, value in settings.model_dump().items()
                              if "key" not in key and "secret" not in key}
    return record
