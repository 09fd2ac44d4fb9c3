"""The compliance rule book: market rules from YAML, product kinds, and which rules a product meets.

Rules live in ``data/rules/compliance/<market>.yaml`` and the product-kind table in
``product_kinds.yaml`` beside them; ``rule.schema.json`` describes both. A rule applies when:

* its ``product_kinds`` or ``hs_prefixes`` (if it names either) match the product, and none of
  its ``exclude_kinds`` does,
* the product's material contains one of its ``materials`` (if it names any),
* every fact under ``attributes`` holds, and none under ``unless`` holds.

Facts (``mains_powered``, ``radio``, ``battery``...) come from the listing's attributes, the title
and the seller's words, the material, the category and the HS code, each with the reason it was
derived. A fact a rule needs but nobody knows becomes a question for the seller: the rule is neither
skipped silently nor flagged on every product.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator

SCHEMA_FILE = "rule.schema.json"
PRODUCT_KINDS_FILE = "product_kinds.yaml"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
MAINS_MIN_VOLTS = 50.0  # the Low Voltage Directive's lower bound for AC equipment
VOLTAGE_TOLERANCE = 0.10  # a rating within 10 % of the market's nominal voltage counts as a fit
# libyaml's parser when PyYAML was built with it (the wheels are): the same documents, read about
# eight times faster than by the pure-Python parser (the rule book loads at every start-up)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_VOLTAGE = re.compile(r"(\d+(?:\.\d+)?)(?:\s*[-/\u2013]\s*(\d+(?:\.\d+)?))?\s*v(?:ac|dc)?\b")
_BATTERY_WORDS = re.compile(r"lithium|li-?ion|batter|nimh|rechargeable")
_RADIO_WORDS = re.compile(
    r"bluetooth|wi-?fi|wlan|zigbee|z-wave|\bnfc\b|\bthread\b|\bmatter\b|\blte\b|cellular|\bgps\b"
    r"|\b[45]g\b|\bapp\b|\brf\b|radio")
_NO_RADIO = re.compile(r"^(none|no|n/?a|wired|usb|ethernet)$")
_FALSE_WORDS = {"", "no", "none", "false", "0", "n/a", "na"}
# A fact only worth asking about once another is known: "coin cell?" waits for "battery?".
ASK_FIRST = {"coin_battery": "battery", "lithium_battery": "battery",
             "rechargeable_battery": "battery", "for_under_3": "for_children"}


class UnknownMarketError(ValueError):
    """A market the rule book has no rules for; the message lists the markets it knows."""


@dataclass(frozen=True)
class Fact:
    """One fact about the product and the reason it is believed."""

    value: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "reason": self.reason}


@dataclass(frozen=True)
class MarketRules:
    """One rules file: the market it serves, its rules and the mains supply there."""

    market: str
    name: str
    path: Path
    rules: tuple[dict[str, Any], ...]
    members: tuple[str, ...] = ()
    mains: dict[str, Any] | None = None
    official_domains: tuple[str, ...] = ()

    @property
    def source(self) -> str:
        """The evidence source name, e.g. ``rules/us.yaml``."""
        return f"rules/{self.path.name}"

    @property
    def rules_source(self) -> str:
        """The file's path relative to the project root where it lies inside it."""
        resolved = self.path.resolve()
        try:
            return resolved.relative_to(PROJECT_ROOT).as_posix()
        except ValueError:
            return str(resolved)


@dataclass
class MatchResult:
    """What ``RuleBook.match`` found for one product in one market."""

    market: str
    rules: MarketRules
    product_kinds: dict[str, str]  # kind -> why the product is of that kind
    facts: dict[str, Fact]
    requirements: list[dict[str, Any]]
    questions: list[dict[str, Any]]
    checks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Entry:
    pattern: re.Pattern[str]
    kinds: tuple[str, ...]
    facts: dict[str, bool]


class RuleBook:
    """All markets' rules plus the product-kind table. Build it with ``RuleBook.load(folder)``."""

    def __init__(self, folder: Path, markets: dict[str, MarketRules], kinds_table: dict[str, Any]
                 ) -> None:
        self.folder = folder
        self._markets = markets
        self._aliases = {member: code for code, rules in markets.items()
                         for member in rules.members}
        self.kind_names: dict[str, str] = dict(kinds_table["kinds"])
        self.question_texts: dict[str, str] = dict(kinds_table["questions"])
        self._categories = _entries(kinds_table.get("categories"))
        self._materials = _entries(kinds_table.get("materials"))
        self._text = _entries(kinds_table.get("text"))
        self._hs = [(str(row["prefix"]), tuple(row["kinds"]), dict(row.get("facts") or {}))
                    for row in kinds_table.get("hs") or []]
        words = sorted(kinds_table.get("material_words") or [], key=len, reverse=True)
        self._material_words = (re.compile(r"\b(" + "|".join(re.escape(w) for w in words)
                                           + r")\b", re.IGNORECASE) if words else None)

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: str | Path) -> RuleBook:
        """Read and validate every YAML file in ``folder``; a bad file raises ``ValueError`` that
        names the file, the rule and the field."""
        folder = Path(folder)
        schema_path = folder / SCHEMA_FILE
        if not schema_path.is_file():
            raise ValueError(f"{schema_path}: schema file not found")
        schema = json.loads(schema_path.read_text(encoding="utf-8"))
        rules_validator = Draft202012Validator(schema)
        kinds_validator = Draft202012Validator(
            {"$ref": "#/$defs/productKindsFile", "$defs": schema["$defs"]})

        kinds_path = folder / PRODUCT_KINDS_FILE
        if not kinds_path.is_file():
            raise ValueError(f"{kinds_path}: product-kind table not found")
        kinds_table = _read_yaml(kinds_path)
        _validate(kinds_validator, kinds_table, kinds_path)
        for section in ("categories", "materials", "text"):
            for number, entry in enumerate(kinds_table.get(section) or []):
                try:
                    re.compile(entry["match"])
                except re.error as error:
                    raise ValueError(f"{kinds_path}: {section}[{number}] field match: bad "
                                     f"pattern {entry['match']!r}: {error}") from None
        known_kinds = set(kinds_table["kinds"])
        _check_kinds_named(kinds_table, known_kinds, kinds_path)

        markets: dict[str, MarketRules] = {}
        seen_ids: dict[str, Path] = {}
        for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
            if path.name == PRODUCT_KINDS_FILE:
                continue
            data = _read_yaml(path)
            _validate(rules_validator, data, path)
            code = data["market"]
            if code in markets:
                raise ValueError(f"{path}: market {code} is already defined in "
                                 f"{markets[code].path.name}")
            for rule in data["rules"]:
                rule_id = rule["rule_id"]
                where = f"{path}: rule {rule_id}"
                if rule["market"] != code:
                    raise ValueError(f"{where}: field market: {rule['market']!r} differs from the "
                                     f"file's market {code!r}")
                if rule_id in seen_ids:
                    raise ValueError(f"{where}: field rule_id: duplicate of a rule in "
                                     f"{seen_ids[rule_id].name}")
                seen_ids[rule_id] = path
                when = rule["applies_when"]
                for kind in (when.get("product_kinds") or []) + (when.get("exclude_kinds") or []):
                    if kind not in known_kinds:
                        raise ValueError(f"{where}: field applies_when.product_kinds: unknown "
                                         f"kind {kind!r}; {PRODUCT_KINDS_FILE} defines "
                                         f"{', '.join(sorted(known_kinds))}")
                host = urlsplit(rule["source_url"]).hostname or ""
                if not any(host == domain or host.endswith("." + domain)
                           for domain in data["official_domains"]):
                    raise ValueError(f"{where}: field source_url: host {host!r} is not one of "
                                     f"the file's official_domains "
                                     f"({', '.join(data['official_domains'])})")
                needed = set(when.get("attributes") or {}) | ({"material"} if when.get("materials")
                                                              else set())
                for name in sorted(needed - set(kinds_table["questions"])):
                    raise ValueError(f"{where}: field applies_when: {PRODUCT_KINDS_FILE} has no "
                                     f"question for {name!r}")
            markets[code] = MarketRules(
                market=code, name=data["name"], path=path, rules=tuple(data["rules"]),
                members=tuple(data.get("members") or ()), mains=data.get("mains"),
                official_domains=tuple(data["official_domains"]))
        if not markets:
            raise ValueError(f"{folder}: no market rules files (*.yaml) found")
        return cls(folder, markets, kinds_table)

    # -- markets ------------------------------------------------------------------------------

    @property
    def markets(self) -> list[str]:
        """The market codes with a rules file, sorted (member states are not listed)."""
        return sorted(self._markets)

    def market_rules(self, market: str) -> MarketRules:
        """The rules that answer ``market`` (a member-state code answers with its union's rules)."""
        code = (market or "").strip().upper()
        code = self._aliases.get(code, code)
        if code not in self._markets:
            members = [f"{alias}->{target}" for alias, target in sorted(self._aliases.items())]
            hint = f" (member states map to their union: {', '.join(members)})" if members else ""
            raise UnknownMarketError(f"unknown market {market!r}; known markets: "
                                     f"{', '.join(self.markets)}{hint}")
        return self._markets[code]

    # -- product kinds and facts ----------------------------------------------------------------

    def product_kinds(self, product: dict[str, Any]) -> tuple[dict[str, str], dict[str, Fact]]:
        """``(kinds, facts)``: kind -> why the product is of that kind, and fact name -> Fact.

        Facts come first from the listing attributes, then the title and seller text, the
        material, the category and the best HS candidate; the first source to state a fact wins.
        """
        category = str(product.get("category") or "").strip()
        material = _text_of(product.get("material"))
        texts = [(label, str(product.get(key) or "").strip())
                 for label, key in (("title", "title"), ("seller text", "text"))]
        texts = [(label, value) for label, value in texts if value]
        hs = _top_hs(product.get("hs_candidates"))

        facts: dict[str, Fact] = {}

        def put(name: str, value: bool, reason: str) -> None:
            if name not in facts:
                facts[name] = Fact(bool(value), reason)

        _facts_from_attributes(product.get("attributes") or {}, put)
        for label, value in texts:
            volts = _voltage_range(value)
            if volts is not None:
                rating = re.search(_VOLTAGE.pattern, value, re.IGNORECASE)
                stated = rating.group(0) if rating else f"{volts[1]:g}V"
                if volts[1] >= MAINS_MIN_VOLTS:
                    put("mains_powered", True, f"{label} {_quote(value)} states {stated!r} -> "
                        f"rated for mains")
                else:
                    put("mains_powered", False, f"{label} {_quote(value)} states {stated!r}, "
                        f"below {MAINS_MIN_VOLTS:g} V")
                break

        kinds: dict[str, str] = {}
        text_kinds: dict[str, str] = {}
        pending_text_facts: list[tuple[dict[str, bool], str]] = []
        for entry in self._text:
            for label, value in texts:
                found = entry.pattern.search(value)
                if not found:
                    continue
                reason = f"{label} {_quote(value)} mentions {found.group(0)!r}"
                if entry.kinds:
                    for kind in entry.kinds:
                        text_kinds.setdefault(kind, f"{reason} -> {kind}")
                    pending_text_facts.append((entry.facts, reason))
                else:
                    for name, fact in entry.facts.items():
                        put(name, fact, reason)
                break

        for entry in self._materials:
            if material and entry.pattern.search(material):
                reason = f"material {_quote(material)}"
                for kind in entry.kinds:
                    kinds.setdefault(kind, f"{reason} -> {kind}")
                for name, fact in entry.facts.items():
                    put(name, fact, reason)
        material_kinds = set(kinds)
        for entry in self._categories:
            if category and entry.pattern.search(category):
                reason = f"category {_quote(category)}"
                for kind in entry.kinds:
                    kinds.setdefault(kind, f"{reason} -> {kind}")
                for name, fact in entry.facts.items():
                    put(name, fact, reason)
        if hs is not None:
            code, score = hs
            for prefix, row_kinds, row_facts in self._hs:
                if code.startswith(prefix):
                    reason = f"HS candidate {code} (score {score:.2f})"
                    for kind in row_kinds:
                        kinds.setdefault(kind, f"{reason} -> {kind}")
                    for name, fact in row_facts.items():
                        put(name, fact, reason)
        if set(kinds) <= material_kinds and text_kinds:  # no category or HS code named a kind
            kinds.update(text_kinds)
            for entry_facts, reason in pending_text_facts:
                for name, fact in entry_facts.items():
                    put(name, fact, reason)

        battery, coin = facts.get("battery"), facts.get("coin_battery")
        if coin is not None and coin.value and battery is None:
            facts["battery"] = Fact(True, coin.reason)
        if battery is not None and not battery.value:
            for name in ("coin_battery", "lithium_battery", "rechargeable_battery"):
                if name not in facts:
                    facts[name] = Fact(False, f"no battery: {battery.reason}")
        children = facts.get("for_children")
        if children is not None and not children.value and "for_under_3" not in facts:
            facts["for_under_3"] = Fact(False, f"not for children: {children.reason}")
        for name in ("lithium_battery", "rechargeable_battery"):
            fact = facts.get(name)
            if fact is not None and fact.value and "battery" not in facts:
                facts["battery"] = Fact(True, fact.reason)
        return kinds, facts

    def materials_in_text(self, *texts: str | None) -> str | None:
        """Material names a title or description mentions (``"stainless steel|plastic"``), for a
        product that has no material field; ``None`` when none is named."""
        if self._material_words is None:
            return None
        found: list[str] = []
        for text in texts:
            for hit in self._material_words.findall(text or ""):
                if hit.lower() not in found:
                    found.append(hit.lower())
        return "|".join(found) or None

    # -- matching ---------------------------------------------------------------------------------

    def match(self, market: str, product: dict[str, Any]) -> MatchResult:
        """The rules of ``market`` that apply to ``product``, each with the facts that made it
        apply, plus questions for facts that would decide further rules."""
        rules = self.market_rules(market)
        kinds, facts = self.product_kinds(product)
        hs = _top_hs(product.get("hs_candidates"))
        material = _text_of(product.get("material"))
        requirements: list[dict[str, Any]] = []
        questions: dict[str, dict[str, Any]] = {}
        kind_gated: list[str] = []

        def ask(attribute: str, rule_id: str) -> None:
            question = questions.setdefault(attribute, {
                "attribute": attribute, "question": self.question_texts[attribute],
                "rule_id": rule_id, "rule_ids": []})
            if rule_id not in question["rule_ids"]:
                question["rule_ids"].append(rule_id)

        for rule in rules.rules:
            when = rule["applies_when"]
            matched: list[dict[str, str]] = []
            if when.get("all_products"):
                matched.append({"condition": "applies to every product",
                                "fact": f"market {rules.market}"})
            if when.get("product_kinds") or when.get("hs_prefixes"):
                scope = [{"condition": f"product_kinds contains {kind}", "fact": kinds[kind]}
                         for kind in when.get("product_kinds") or [] if kind in kinds]
                if hs is not None:
                    code, score = hs
                    scope += [{"condition": f"hs_prefixes contains {prefix}",
                               "fact": f"HS candidate {code} (score {score:.2f})"}
                              for prefix in when.get("hs_prefixes") or []
                              if code.startswith(prefix)]
                if not scope:
                    kind_gated.append(rule["rule_id"])
                    continue
                matched += scope
            if any(kind in kinds for kind in when.get("exclude_kinds") or []):
                continue
            unknown: list[str] = []
            applies = True
            if when.get("materials"):
                if not material:
                    unknown.append("material")
                else:
                    hits = [name for name in when["materials"] if name.lower() in material.lower()]
                    if hits:
                        matched.append({"condition": f"material contains {hits[0]}",
                                        "fact": f"material {_quote(material)}"})
                    else:
                        applies = False
            for name, wanted in (when.get("attributes") or {}).items():
                fact = facts.get(name)
                if fact is None:
                    unknown.append(name)
                elif fact.value == wanted:
                    matched.append({"condition": f"{name} is {str(wanted).lower()}",
                                    "fact": fact.reason})
                else:
                    applies = False
            for name, excluded in (when.get("unless") or {}).items():
                fact = facts.get(name)
                if fact is not None and fact.value == excluded:
                    applies = False
            if not applies:
                continue
            if unknown:
                for name in unknown:
                    first = ASK_FIRST.get(name)
                    ask(first if first and first not in facts else name, rule["rule_id"])
                continue
            requirements.append({
                "rule_id": rule["rule_id"], "title": rule["title"], "legal_act": rule["legal_act"],
                "kind": rule["kind"], "why": rule["why"], "source_url": rule["source_url"],
                "supplier_evidence": list(rule["supplier_evidence"]), "matched": matched,
                "last_reviewed": rule["last_reviewed"],
            })
        if not kinds and kind_gated:
            for rule_id in kind_gated:
                ask("product_kind", rule_id)
        return MatchResult(market=(market or "").strip().upper(), rules=rules,
                           product_kinds=kinds, facts=facts, requirements=requirements,
                           questions=list(questions.values()),
                           checks=_mains_checks(rules, product, facts))


# -- helpers ------------------------------------------------------------------------------------


def _read_yaml(path: Path) -> Any:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from None
    return _dates_to_text(data)  # a non-mapping file fails schema validation next


def _dates_to_text(value: Any) -> Any:
    """YAML reads an unquoted 2026-11-01 as a date; the schema wants the ISO text."""
    if isinstance(value, dict):
        return {key: _dates_to_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_dates_to_text(item) for item in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _validate(validator: Draft202012Validator, data: dict[str, Any], path: Path) -> None:
    errors = sorted(validator.iter_errors(data),
                    key=lambda error: [str(part) for part in error.absolute_path])
    if not errors:
        return
    lines = [_describe(error, data, path) for error in errors[:5]]
    more = f"\n(and {len(errors) - 5} more)" if len(errors) > 5 else ""
    raise ValueError("\n".join(lines) + more)


def _describe(error: Any, data: dict[str, Any], path: Path) -> str:
    parts = list(error.absolute_path)
    where = str(path)
    if len(parts) >= 2 and parts[0] == "rules" and isinstance(parts[1], int):
        rules = data.get("rules") or []
        rule = rules[parts[1]] if parts[1] < len(rules) else {}
        rule_id = rule.get("rule_id") if isinstance(rule, dict) else None
        where += f": rule {rule_id or f'#{parts[1] + 1} (no rule_id)'}"
        parts = parts[2:]
    field_name = ".".join(str(part) for part in parts)
    if error.validator == "required":
        found = re.match(r"'([^']+)' is a required property", error.message)
        if found:
            field_name = ".".join(filter(None, [field_name, found.group(1)]))
    return f"{where}: field {field_name or '(top level)'}: {error.message}"


def _check_kinds_named(table: dict[str, Any], known: set[str], path: Path) -> None:
    for section in ("categories", "materials", "text", "hs"):
        for number, entry in enumerate(table.get(section) or []):
            for kind in entry.get("kinds") or []:
                if kind not in known:
                    raise ValueError(f"{path}: {section}[{number}] field kinds: {kind!r} is not "
                                     f"listed under kinds")


def _entries(rows: Iterable[dict[str, Any]] | None) -> list[_Entry]:
    return [_Entry(re.compile(row["match"], re.IGNORECASE), tuple(row.get("kinds") or ()),
                   dict(row.get("facts") or {})) for row in rows or []]


def _text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(str(item) for item in value if item)
    return " ".join(str(value).split())


def _quote(value: str, limit: int = 60) -> str:
    value = " ".join(value.split())
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def _top_hs(candidates: Any) -> tuple[str, float] | None:
    best: tuple[str, float] | None = None
    for candidate in candidates or []:
        if not isinstance(candidate, dict):
            continue
        code = re.sub(r"\D", "", str(candidate.get("code") or ""))
        if not code:
            continue
        score = float(candidate.get("score") or 0.0)
        if best is None or score > best[1]:
            best = (code, score)
    return best


def _voltage_range(text: str) -> tuple[float, float] | None:
    values: list[float] = []
    for low, high in _VOLTAGE.findall(text.lower()):
        values.append(float(low))
        if high:
            values.append(float(high))
    return (min(values), max(values)) if values else None


def _facts_from_attributes(attributes: dict[str, Any],
                           put: Callable[[str, bool, str], None]) -> None:
    """Facts the listing states outright: explicit yes/no answers, voltage, connectivity,
    runtime and battery fields."""
    lowered = {str(key).strip().lower(): value for key, value in attributes.items()}
    for name in ("mains_powered", "radio", "battery", "coin_battery", "lithium_battery",
                 "rechargeable_battery", "for_children", "for_under_3", "food_contact",
                 "skin_contact"):
        value = lowered.get(name)
        if isinstance(value, bool):
            put(name, value, f"attribute {name} = {str(value).lower()}")
    voltage = str(lowered.get("voltage") or "").strip()
    if voltage:
        volts = _voltage_range(voltage)
        if volts is not None:
            if volts[1] >= MAINS_MIN_VOLTS:
                put("mains_powered", True, f"attribute voltage {voltage!r} -> rated for mains")
            else:
                put("mains_powered", False,
                    f"attribute voltage {voltage!r} is below {MAINS_MIN_VOLTS:g} V")
        if _BATTERY_WORDS.search(voltage.lower()):
            put("battery", True, f"attribute voltage {voltage!r} names a battery")
    connectivity = str(lowered.get("connectivity") or "").strip()
    if connectivity:
        if _RADIO_WORDS.search(connectivity.lower()):
            put("radio", True, f"attribute connectivity {connectivity!r} -> radio")
        elif _NO_RADIO.match(connectivity.lower()):
            put("radio", False, f"attribute connectivity {connectivity!r} -> no radio")
    runtime = str(lowered.get("runtime") or "").strip()
    if runtime:
        put("battery", True, f"attribute runtime {runtime!r} -> runs on a battery")
    if "battery" in lowered and not isinstance(lowered["battery"], bool):
        text = str(lowered["battery"] or "").strip()
        put("battery", text.lower() not in _FALSE_WORDS, f"attribute battery {text!r}")


def _mains_checks(rules: MarketRules, product: dict[str, Any], facts: dict[str, Fact]
                  ) -> list[dict[str, Any]]:
    """Compare a mains product's rated voltage with the market's household supply."""
    mains = rules.mains
    powered = facts.get("mains_powered")
    if not mains or powered is None or not powered.value:
        return []
    nominal = float(mains["nominal_voltage_v"])
    # a list where the market runs several grids (Japan: 50 Hz east, 60 Hz west)
    given = mains["frequency_hz"]
    frequencies = list(given) if isinstance(given, list) else [given]
    frequency = "/".join(f"{hz:g}" for hz in frequencies)
    attributes = {str(k).lower(): v for k, v in (product.get("attributes") or {}).items()}
    voltage = str(attributes.get("voltage") or "").strip()
    if not voltage:  # a rating the seller wrote in the title or description
        for key in ("title", "text"):
            found = re.search(_VOLTAGE.pattern, str(product.get(key) or ""), re.IGNORECASE)
            if found:
                voltage = found.group(0).strip()
                break
    volts = _voltage_range(voltage) if voltage else None
    check: dict[str, Any] = {"check": "mains_voltage",
                             "market_voltage_v": mains["nominal_voltage_v"],
                             "market_frequency_hz": frequencies,
                             "product_voltage": voltage or None}
    if volts is None:
        check.update(status="unknown", detail=f"the product's rated voltage is not stated; "
                     f"{rules.market} mains is {nominal:g} V / {frequency} Hz")
    elif volts[0] * (1 - VOLTAGE_TOLERANCE) <= nominal <= volts[1] * (1 + VOLTAGE_TOLERANCE):
        check.update(status="ok", detail=f"rated {voltage} covers {rules.market} mains "
                     f"{nominal:g} V")
    else:
        check.update(status="mismatch", detail=f"rated {voltage} does not cover {rules.market} "
                     f"mains {nominal:g} V / {frequency} Hz: the product needs a "
                     f"{nominal:g} V version (and the local plug)")
    return [check]
