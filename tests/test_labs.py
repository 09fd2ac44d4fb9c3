"""Course labs: each grader passes its reference solution and fails the untouched starter with
feedback that names what is missing and the README step to read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from labs.grader import check_lab, lab_folder
from labs.grader import lab3

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "labs" / "reference"
cli = CliRunner()


def _failures(report) -> str:
    return "\n".join(report.lines())


def _assert_helpful(report, todo_step: str) -> None:
    """The starter fails, every failure says what and where, and the first points at a TODO."""
    assert not report.passed
    assert report.failed, "a failing report names its failed checks"
    for check in report.failed:
        assert check.detail and check.step and check.step.startswith("step "), check
    text = _failures(report)
    assert f"see {todo_step} of labs/{report.readme.parent.name}/README.md" in text, text
    assert (report.readme).is_file()


def test_every_lab_has_readme_starter_and_reference():
    for number in (1, 2, 3, 4):
        folder = lab_folder(number)
        readme = (folder / "README.md").read_text(encoding="utf-8")
        for heading in ("## Goals", "## Steps", "## Hand in"):
            assert heading in readme, f"{folder.name}/README.md lacks {heading}"
        starter = [p for p in folder.iterdir() if p.suffix in (".py", ".yaml")]
        assert any("TODO" in p.read_text(encoding="utf-8") for p in starter), folder
        assert (REFERENCE / f"lab{number}").is_dir()


# -- lab 1: index, recall, embedders ---------------------------------------------------------

def test_lab1_grader_passes_the_reference(demo_services):
    report = check_lab(1, REFERENCE / "lab1", services=demo_services)
    assert report.passed, _failures(report)
    figures = " ".join(report.figures)
    assert "your embedder" in figures and "project's embedder" in figures


def test_lab1_grader_fails_the_untouched_starter(demo_services):
    report = check_lab(1, services=demo_services)
    _assert_helpful(report, "step 3")
    assert any("NotImplementedError" in c.detail for c in report.failed)
    assert any(c.name == "name and dim" and c.step == "step 1" for c in report.failed)


# -- lab 2: a ranking node in the graph ------------------------------------------------------

def test_lab2_grader_passes_the_reference(demo_services):
    report = check_lab(2, REFERENCE / "lab2", services=demo_services)
    assert report.passed, _failures(report)
    names = {check.name for check in report.checks}
    assert "weights {'price': 1}: cheapest qualifying offer first" in names
    assert "every claim grounded, every entry's price stated" in names


def test_lab2_grader_fails_the_untouched_starter(demo_services):
    report = check_lab(2, services=demo_services)
    _assert_helpful(report, "step 3")
    assert "qualifies() is not written yet" in _failures(report)


# -- lab 3: a market's rules -----------------------------------------------------------------

def test_lab3_grader_passes_the_reference():
    report = check_lab(3, REFERENCE / "lab3")
    assert report.passed, _failures(report)
    assert sum(c.name.startswith("case ") for c in report.checks) == len(lab3.load_cases())


def test_lab3_grader_fails_the_untouched_starter():
    report = check_lab(3)
    _assert_helpful(report, "step 3")
    text = _failures(report)
    for act in ("Portaria Inmetro nº 148/2022", "Resolução Anatel nº 715/2019",
                "Portaria Inmetro nº 302/2021"):
        assert f"'{act}' missing" in text


def test_lab3_names_a_citation_that_is_not_official(tmp_path):
    data = yaml.safe_load((REFERENCE / "lab3" / "br.yaml").read_text(encoding="utf-8"))
    data["rules"][1]["legal_act"] = "Portaria 148"
    data["rules"][2]["source_url"] = "https://www.example.com/anatel"
    (tmp_path / "br.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                      encoding="utf-8")
    report = check_lab(3, tmp_path)
    citation = next(c for c in report.checks if c.name == "every rule cites its law")
    assert not citation.passed and citation.step == "step 2"
    assert "'Portaria 148' is not in official form" in citation.detail
    assert "host 'www.example.com' is not under official_domains" in citation.detail


def test_lab3_follows_a_schema_that_requires_official_domains(tmp_path):
    """The project's rule format is growing (``official_domains`` on every market file): the
    grader loads the student's file with whichever schema the project has."""
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "data" / "rules" / "compliance", rules)
    schema_path = rules / "rule.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    schema["properties"]["official_domains"] = {"type": "array", "minItems": 1,
                                                "items": {"type": "string"}}
    schema["required"] = sorted({*schema["required"], "official_domains"})
    schema_path.write_text(json.dumps(schema), encoding="utf-8")
    for path in rules.glob("*.yaml"):
        if path.name == "product_kinds.yaml":
            continue
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.setdefault("official_domains", sorted({rule["source_url"].split("/")[2]
                                                    for rule in data["rules"]}))
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    report = lab3.grade(REFERENCE / "lab3", rules_dir=rules)
    assert report.passed, _failures(report)

    data = yaml.safe_load((REFERENCE / "lab3" / "br.yaml").read_text(encoding="utf-8"))
    del data["official_domains"]
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "br.yaml").write_text(yaml.safe_dump(data, allow_unicode=True),
                                                  encoding="utf-8")
    report = lab3.grade(tmp_path / "student", rules_dir=rules)
    assert not report.passed
    assert "official_domains is missing" in _failures(report)


# -- lab 4: an agent end to end, two runs compared -------------------------------------------

def test_lab4_grader_passes_the_reference(demo_services):
    report = check_lab(4, REFERENCE / "lab4", services=demo_services)
    assert report.passed, _failures(report)
    assert any(key.startswith("yours") for key in report.figures)


def test_lab4_grader_fails_the_untouched_starter(demo_services):
    report = check_lab(4, services=demo_services)
    _assert_helpful(report, "step 4")
    text = _failures(report)
    assert "list_regressions is not written yet" in text
    assert "MyAgent.__call__ is not written yet" in text


# -- the command ------------------------------------------------------------------------------

def test_lab_check_command_exit_codes():
    failed = cli.invoke(app, ["lab", "check", "3"])
    assert failed.exit_code == 1, failed.output
    assert "[FAIL]" in failed.output and "see step 3 of labs/lab3_rules/README.md" in failed.output
    passed = cli.invoke(app, ["lab", "check", "3", "--path", str(REFERENCE / "lab3")])
    assert passed.exit_code == 0, passed.output
    assert "PASSED: 9/9 checks pass" in passed.output
    unknown = cli.invoke(app, ["lab", "check", "9"])
    assert unknown.exit_code == 2 and "there is no lab 9" in unknown.output


@pytest.mark.parametrize("number", [1, 3])
def test_lab_check_command_refuses_a_missing_folder(number, tmp_path):
    result = cli.invoke(app, ["lab", "check", str(number), "--path", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "lab folder not found" in result.output
