"""What a grader hands back: named checks, each passed or failed with a detail and the README
step to look at, plus the figures it measured. Also loads a student's files by path."""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any


class StudentFileError(Exception):
    """A student's file is missing or cannot be imported; the message says which and why."""


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""
    step: str | None = None  # the README step that covers this check, e.g. "step 2"


@dataclass
class Report:
    lab: int
    title: str
    path: Path
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    readme: Path | None = None  # the lab's README, which the failure hints point into

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def ok(self, name: str, detail: str = "") -> None:
        self.checks.append(Check(name, True, detail))

    def fail(self, name: str, detail: str, step: str | None) -> None:
        self.checks.append(Check(name, False, detail, step))

    def expect(self, condition: bool, name: str, detail: str, step: str | None,
               passed_detail: str = "") -> bool:
        """Record ``name`` as passed when ``condition`` holds, else failed with ``detail``."""
        if condition:
            self.ok(name, passed_detail)
        else:
            self.fail(name, detail, step)
        return bool(condition)

    def lines(self) -> list[str]:
        """The feedback as plain text lines, failures with where to look."""
        readme = _shown(self.readme or self.path / "README.md")
        out = [f"Lab {self.lab}: {self.title} ({_shown(self.path)})"]
        for check in self.checks:
            mark = "PASS" if check.passed else "FAIL"
            text = f"  [{mark}] {check.name}"
            if check.detail:
                text += f": {check.detail}"
            out.append(text)
            if not check.passed and check.step:
                out.append(f"         -> see {check.step} of {readme}")
        for key, value in self.figures.items():
            out.append(f"  {key}: {value}")
        passed = sum(check.passed for check in self.checks)
        verdict = "PASSED" if self.passed else "NOT YET"
        out.append(f"{verdict}: {passed}/{len(self.checks)} checks pass")
        return out


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_student_module(path: Path, step: str | None = None) -> ModuleType:
    """Import a student's Python file by path under a private module name."""
    if not path.is_file():
        raise StudentFileError(f"{path} not found" + (f" (see {step} of the README)"
                                                     if step else ""))
    from evals.agent import import_file

    try:
        return import_file(path, f"_lab_student_{path.parent.name}_{path.stem}")
    except Exception as exc:  # the student's code: report anything it raises
        raise StudentFileError(f"importing {path.name} raised {describe(exc)}") from exc


def describe(exc: BaseException) -> str:
    """One line for an exception raised by a student's code: type, message and where."""
    if isinstance(exc, NotImplementedError):
        return f"NotImplementedError: {exc or 'a TODO is still open'}"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def first_todo(exc: BaseException) -> BaseException | None:
    """The NotImplementedError behind ``exc`` (directly or as a cause), if any."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, NotImplementedError):
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None
