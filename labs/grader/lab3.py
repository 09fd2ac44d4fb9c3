"""Grader of lab 3: the student's rules file for a market the project does not cover (Brazil).

1. The file parses and every rule cites its law: ``legal_act`` in official Brazilian form
   (``<type> [<issuer>] nº <number>/<year>``), ``source_url`` on an official host (``gov.br``
   or a sub-domain, listed in the file's ``official_domains``), ``last_reviewed`` a real date
   that is not in the future.
2. The project's own loader accepts it: the file is written into a temporary copy of the
   project's rules folder (schema, product-kind table, the other markets) and loaded with
   ``RuleBook.load``, whose errors name the file, the rule and the field. Where this version of
   the project's schema does not know ``official_domains``, or only knows US and EU official
   hosts, the copy is adapted for the Brazilian file alone; step 1 checks those fields itself.
3. Every case of ``lab3_cases.yaml`` passes: ``RuleBook.match("BR", product)`` returns each
   expected act among its requirements and none of the acts the case lists as absent.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from labs.grader.feedback import Report

TITLE = "Add a market's rules with citations"
FOLDER = "lab3_rules"
README = Path(__file__).resolve().parents[1] / FOLDER / "README.md"
MARKET = "BR"
RULES_FILE = "br.yaml"
CASES_FILE = Path(__file__).with_name("lab3_cases.yaml")
OFFICIAL_ROOT = "gov.br"  # the Brazilian federal government's domain (planalto, inmetro, anatel)
# the README step that writes the rule behind each act the cases expect
ACT_STEPS = {"Lei nº 8.078/1990": "step 2", "Portaria Inmetro nº 148/2022": "step 3",
             "Resolução Anatel nº 715/2019": "step 4", "Portaria Inmetro nº 302/2021": "step 5"}
LEGAL_ACT = re.compile(
    r"^(Lei|Lei Complementar|Decreto|Decreto-Lei|Medida Provisória|Portaria|Resolução"
    r"|Instrução Normativa)( [A-Z][A-Za-z]+)? nº \d{1,3}(\.\d{3})*/\d{4}$")


def load_cases(path: Path = CASES_FILE) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]


def _citation_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(problem, README step) for the file's market, official domains and each rule's citation."""
    problems: list[tuple[str, str]] = []
    if data.get("market") != MARKET:
        problems.append((f"market is {data.get('market')!r}, expected {MARKET!r}", "step 2"))
    domains = data.get("official_domains")
    if not isinstance(domains, list) or not domains:
        problems.append((f"official_domains is missing: list the official domains your "
                         f"source_url links point at, e.g. [{OFFICIAL_ROOT}]", "step 2"))
        domains = []
    for domain in domains:
        if not (domain == OFFICIAL_ROOT or str(domain).endswith("." + OFFICIAL_ROOT)):
            problems.append((f"official_domains: {domain!r} is not a Brazilian government "
                             f"domain (*.{OFFICIAL_ROOT})", "step 2"))
    rules = data.get("rules")
    if not isinstance(rules, list) or not rules:
        problems.append(("rules: the file needs a list of rules", "step 2"))
        return problems
    today = dt.date.today()
    for number, rule in enumerate(rules):
        if not isinstance(rule, dict):
            problems.append((f"rules[{number}] is not a mapping", "step 2"))
            continue
        where = f"rule {rule.get('rule_id') or f'rules[{number}]'}"
        act = str(rule.get("legal_act") or "")
        if not LEGAL_ACT.match(act):
            problems.append((f"{where}: legal_act {act!r} is not in official form, e.g. "
                             "'Portaria Inmetro nº 148/2022' or 'Lei nº 8.078/1990' (type, "
                             "issuing body where there is one, 'nº', number/year)", "step 2"))
        url = str(rule.get("source_url") or "")
        host = urlsplit(url).hostname or ""
        if not url.startswith("https://"):
            problems.append((f"{where}: source_url {url!r} must be an https:// link",
                             "step 2"))
        elif not any(host == d or host.endswith("." + str(d)) for d in domains):
            problems.append((f"{where}: source_url host {host!r} is not under "
                             f"official_domains {domains}: cite the regulator's or the "
                             "legislature's own page", "step 2"))
        reviewed = str(rule.get("last_reviewed") or "")
        try:
            when = dt.date.fromisoformat(reviewed)
        except ValueError:
            problems.append((f"{where}: last_reviewed {reviewed!r} is not a date "
                             "YYYY-MM-DD (quote it in YAML)", "step 2"))
        else:
            if when > today:
                problems.append((f"{where}: last_reviewed {reviewed} is in the future",
                                 "step 2"))
    return problems


def _adapted_copy(project_rules: Path, data: dict[str, Any], folder: Path) -> Path:
    """The project's rules folder copied to ``folder`` with the student's file added, adapted to
    what this version of the project's schema knows (see the module docstring)."""
    from agents.compliance.rules import SCHEMA_FILE

    target = folder / "rules"
    shutil.copytree(project_rules, target)
    existing = target / RULES_FILE
    if existing.exists():  # a project that already covers Brazil: grade the student's file
        existing.unlink()
    schema = json.loads((target / SCHEMA_FILE).read_text(encoding="utf-8"))
    data = dict(data)
    if "official_domains" not in schema.get("properties", {}):
        data.pop("official_domains", None)
    url_rule = (schema.get("$defs", {}).get("rule", {}).get("properties", {})
                .get("source_url", {}))
    pattern = url_rule.get("pattern")
    urls = [str(rule.get("source_url") or "") for rule in data.get("rules") or []
            if isinstance(rule, dict)]
    if pattern and not all(re.search(pattern, url) for url in urls):
        url_rule["pattern"] = "^https://"  # this schema lists US and EU hosts only
        (target / SCHEMA_FILE).write_text(json.dumps(schema), encoding="utf-8")
    (target / RULES_FILE).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                                     encoding="utf-8")
    return target


def _case_check(report: Report, rulebook: Any, case: dict[str, Any]) -> None:
    result = rulebook.match(MARKET, case["product"])
    found = {req["legal_act"] for req in result.requirements}
    missing = [act for act in case["expect"] if act not in found]
    extra = [act for act in case.get("absent") or [] if act in found]
    problems = []
    for act in missing:
        hint = ""
        near = [f for f in found if _loose(f) == _loose(act)]
        if near:
            hint = f" (your rules write it {near[0]!r}: use the exact official form)"
        asked = [q["question"] for q in result.questions]
        if not near and asked:
            hint = f" (the rule book asked instead: {asked[0]!r}; which fact does it need?)"
        problems.append(f"{act!r} missing{hint}")
    for act in extra:
        rule = next(req for req in result.requirements if req["legal_act"] == act)
        matched = "; ".join(f"{m.get('condition')} ({m.get('fact')})"
                            for m in rule.get("matched") or [])
        problems.append(f"{act!r} flagged but does not apply: rule {rule['rule_id']} matched "
                        f"on {matched or 'nothing stated'}")
    title = case["product"].get("title") or case["id"]
    report.expect(not problems, f"case {case['id']} ({title})",
                  "; ".join(problems) + f". The case: {case.get('why', '')}",
                  ACT_STEPS.get(missing[0], "step 6") if missing else "step 6",
                  f"{len(found)} acts flagged")


def _loose(act: str) -> str:
    return re.sub(r"[\s.º°o]", "", act.casefold().replace("n.º", "nº"))


def grade(path: Path, services: Any = None, rules_dir: Path | None = None) -> Report:
    from agents.compliance.rules import RuleBook

    report = Report(3, TITLE, path, readme=README)
    rules_file = path / RULES_FILE
    if not rules_file.is_file():
        report.fail(f"{RULES_FILE} exists", f"{rules_file} not found", "step 1")
        return report
    try:
        data = yaml.safe_load(rules_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        report.fail(f"{RULES_FILE} is valid YAML", str(exc).replace("\n", " "), "step 2")
        return report
    if not report.expect(isinstance(data, dict), f"{RULES_FILE} is valid YAML",
                         "the file must hold a mapping (market, name, rules...)", "step 2"):
        return report
    problems = _citation_problems(data)
    report.expect(not problems, "every rule cites its law",
                  "; ".join(text for text, _ in problems[:3])
                  + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""),
                  problems[0][1] if problems else None,
                  f"{len(data.get('rules') or [])} rules")
    if rules_dir is None:
        rules_dir = (services.rulebook.folder if services is not None
                     else _project_rules_dir())
    with tempfile.TemporaryDirectory(prefix="lab3-") as tmp:
        try:
            rulebook = RuleBook.load(_adapted_copy(Path(rules_dir), data, Path(tmp)))
        except ValueError as exc:
            message = str(exc).replace(tmp, "")
            report.fail("the project's RuleBook loads it", message, "step 2")
            return report
    report.ok("the project's RuleBook loads it")
    for case in load_cases():
        _case_check(report, rulebook, case)
    return report


def _project_rules_dir() -> Path:
    from api.settings import Settings

    return Settings().rules_dir
