"""Graders of the course labs: ``check_lab(number, path)`` returns a ``Report`` of named checks,
each failure with the README step to look at. ``sourcing lab check N [--path DIR]`` prints it.

A lab's files are looked for in ``labs/<lab folder>`` unless ``path`` names another folder (a
copy of the starter, or ``labs/reference/labN``). Labs 2 and 4 run the project's graph on the
demo catalog; they take ``services`` (the real ``Services``) or build them from settings.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from labs.grader.feedback import Check, Report

LABS_DIR = Path(__file__).resolve().parents[1]
MODULES = {1: "labs.grader.lab1", 2: "labs.grader.lab2", 3: "labs.grader.lab3",
           4: "labs.grader.lab4"}

__all__ = ["Check", "Report", "check_lab", "lab_folder", "MODULES"]


def _module(number: int) -> Any:
    if number not in MODULES:
        raise ValueError(f"there is no lab {number}; the labs are "
                         f"{', '.join(str(n) for n in MODULES)}")
    return importlib.import_module(MODULES[number])


def lab_folder(number: int) -> Path:
    """The starter folder of lab ``number`` (where a student works by default)."""
    return LABS_DIR / _module(number).FOLDER


def check_lab(number: int, path: str | Path | None = None, services: Any = None) -> Report:
    """Grade lab ``number`` on the files in ``path`` (default: the lab's starter folder)."""
    module = _module(number)
    folder = Path(path) if path is not None else lab_folder(number)
    if not folder.is_dir():
        raise FileNotFoundError(f"lab folder not found: {folder}")
    return module.grade(folder, services=services)
