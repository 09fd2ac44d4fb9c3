"""The grounding gate for model-written text: a claim stands only if what it states is held by the
evidence it cites.

A claim is ``{"text": ..., "evidence": [ids]}``. It is removed when

- it cites no evidence, or an id that the result does not hold;
- a **number** in its text (``12.5``, ``1,200``, ``30%`` -> 30) is not a value of the cited
  evidence (numbers inside cited text count: ``2014/35/EU`` holds 2014 and 35). Numbers next to
  CJK characters count too (``单价12.5美元``), so a Chinese draft is checked like an English one;
  ``97%`` may cite a rate held as 0.97. A number is read with its scale (``6.48k``, ``6.48e3``,
  ``12 thousand`` -> 6480, 12000), and numbers written as words count as well: English from two
  up (``twelve``, ``five thousand``; "one" is left out, it is mostly not a figure) and Chinese
  numerals (``五千件`` -> 5000, ``八百`` -> 800; a lone digit counts before a measure word, as
  ``九块`` -> 9);
- it names an **entity** the cited evidence does not hold: an identifier (``S017``, ``L0123``,
  ``MH01``), a legal act (``2014/35/EU``, ``16 CFR 1500``, ``Regulation (EU) 2023/1542`` ->
  2023/1542), a certification mark (``CE``, ``FCC``, ``UL``, ``RoHS``...: ``CERTIFICATES``), or
  the name of a supplier of the catalog, in full or by its first two words, in any case
  (``Yiwu Tongda`` for "Yiwu Tongda Trading Co., Ltd."). A supplier the catalog does not hold
  at all cannot be told from any other name: the prompts forbid naming one, and an invented
  name that comes with a number or an identifier fails on those.

The deterministic claims of the shortlist pass the same kind of check in
``agents.shortlist.grounding``; this gate adds the entity checks that free text needs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

NUMBER = re.compile(r"(?<![A-Za-z0-9_.])-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][+-]?\d+)?")
# a scale right after a number: "6.48k", "12 thousand", "1.2 million"
SCALE = re.compile(r"\s*(k|K)(?![A-Za-z])|\s+(thousand|million|billion)\b", re.IGNORECASE)
SCALES = {"k": 1e3, "thousand": 1e3, "million": 1e6, "billion": 1e9}
# a listing, supplier or product id (L0042, S017, P-1203); in lower case (l0042) from three
# digits on, so that "p10" or "p90" (percentiles) are read as words
IDENTIFIER = re.compile(r"(?<![A-Za-z0-9])(?:[A-Z]{1,4}-?\d{2,}[A-Z0-9-]*|[a-z]{1,4}-?\d{3,}"
                        r"[a-z0-9-]*)(?![A-Za-z0-9])")
LEGAL_ACT = re.compile(r"\d{4}/\d+(?:/(?:EU|EC|EEC))?|\d+ CFR \d+")
# certification marks a claim may not name unless the cited evidence does (case as written)
CERTIFICATES = ("CE", "UKCA", "FCC", "UL", "ETL", "CSA", "RoHS", "REACH", "CCC", "PSE", "KC",
                "BIS", "SASO", "SABER", "EAC", "FDA", "LFGB", "CPSIA", "CPC", "EN 71", "EN71",
                "BSCI", "SEDEX", "GOTS", "OEKO-TEX", "FSC", "ISO 9001", "ISO 14001", "SIRIM",
                "TISI", "SNI", "INMETRO", "ANATEL", "RCM", "TELEC", "NOM", "GS")
CERTIFICATE = re.compile(r"(?<![A-Za-z0-9-])(" + "|".join(
    re.escape(mark) for mark in sorted(CERTIFICATES, key=len, reverse=True)) + r")(?![A-Za-z0-9])")
_UNITS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
          "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
          "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_ONES = {"one": 1, **{word: value for word, value in _UNITS.items() if value < 10}}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_MULTIPLIERS = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
_WORD = (r"(?:(?:" + "|".join(_TENS) + r")(?:[- ](?:" + "|".join(_ONES) + r"))?|"
         + "|".join(sorted(_UNITS, key=len, reverse=True)) + ")")
WORD_NUMBER = re.compile(r"\b(?:a|one|" + _WORD + r")(?:\s+(?:hundred|thousand|million|billion)"
                         r"(?:\s+(?:and\s+)?" + _WORD + r")?)*\b", re.IGNORECASE)
_CJK_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
               "七": 7, "八": 8, "九": 9}
_CJK_UNITS = {"十": 10, "百": 100, "千": 1000, "万": 10**4, "亿": 10**8}
CJK_NUMBER = re.compile(r"[零〇一二两三四五六七八九十百千万亿]+")
CJK_MEASURE = "件个台套只箱包元块美米天周月年%％"
# a company named in English by its legal form ("... Co., Ltd.", "... Inc.", "... Factory"):
# the capitalised words before the form are its name (see ``company_names``)
COMPANY_FORM = re.compile(r"(?<![A-Za-z])(?:Co\.,?\s*Ltd\b\.?|Co\.|Company\b|Ltd\b\.?|"
                          r"Limited\b|Inc\b\.?|LLC\b|Corp\b\.?|Corporation\b|GmbH\b|"
                          r"Factory\b)")
# a company named in Chinese by its legal form (深圳鸿达电子有限公司): the run of Chinese characters
# before the form holds the name, with whatever words run into it (Chinese has no spaces)
CJK_COMPANY = re.compile(r"[\u4e00-\u9fff]*?[\u4e00-\u9fff]{2}(?:股份有限公司|有限责任公司|"
                         r"有限公司|股份公司)")
_NAME_LINKS = {"and", "of", "&"}
# capitalised words that start a sentence or a phrase rather than a name
_NOT_NAMES = {"the", "a", "an", "this", "that", "these", "those", "each", "every", "its",
              "their", "our", "your", "his", "her", "one", "another", "supplier", "vendor",
              "maker", "manufacturer", "seller", "also", "and", "but", "while", "as", "from",
              "by", "with", "at", "for", "to", "in", "on", "dear"}


def numbers(text: str) -> list[float]:
    return [float(match.replace(",", "")) for match in NUMBER.findall(text)]


def _english_value(phrase: str) -> float | None:
    """``"five thousand"`` -> 5000, ``"twenty-five"`` -> 25; ``None`` for "a" or "one" alone."""
    words = re.split(r"[\s-]+", phrase.lower().replace(" and ", " "))
    if len(words) == 1 and words[0] in ("a", "one"):
        return None
    total, current = 0, 0
    for word in words:
        if word in ("a", "one"):
            current += 1
        elif word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _MULTIPLIERS:
            total += max(current, 1) * _MULTIPLIERS[word]
            current = 0
    return float(total + current)


def _chinese_value(numeral: str) -> float:
    """``"五千"`` -> 5000, ``"八百五十"`` -> 850, ``"十二"`` -> 12, ``"三万"`` -> 30000."""
    total, section, digit = 0, 0, 0
    for char in numeral:
        if char in _CJK_DIGITS:
            digit = _CJK_DIGITS[char]
        elif char in ("万", "亿"):
            total += (section + digit) * _CJK_UNITS[char]
            section, digit = 0, 0
        else:
            section += max(digit, 1) * _CJK_UNITS[char]
            digit = 0
    return float(total + section + digit)


def stated_numbers(text: str) -> list[tuple[float, bool]]:
    """Each number of a text with whether it is a percentage (``97%`` may cite a rate 0.97):
    digits with their scale, English number words from two up, Chinese numerals."""
    stated = []
    for m in NUMBER.finditer(text):
        value = float(m.group().replace(",", ""))
        scale = SCALE.match(text, m.end())
        if scale:
            value *= SCALES[(scale.group(1) or scale.group(2)).lower()]
        stated.append((value, text[m.end():m.end() + 1] == "%"))
    for m in WORD_NUMBER.finditer(text):
        value = _english_value(m.group())
        if value is not None and value >= 2:
            stated.append((value, text[m.end():m.end() + 1] == "%"
                           or text[m.end():m.end() + 8].lower().startswith(" percent")))
    for m in CJK_NUMBER.finditer(text):
        numeral, after = m.group(), text[m.end():m.end() + 1]
        if len(numeral) == 1 and numeral in "一两" and after not in "%％":
            continue  # "一件", "两家": mostly a word, not a figure
        if len(numeral) == 1 and numeral in _CJK_DIGITS and (not after or after not in CJK_MEASURE):
            continue  # a lone digit counts only before a measure word ("九块")
        stated.append((_chinese_value(numeral), after in "%％"))
    return stated


def _flatten(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _flatten(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _flatten(item)
    else:
        yield value


def _held(records: list[dict[str, Any]]) -> tuple[list[float], str]:
    """Numbers and text held by the cited evidence records (record ids included)."""
    held_numbers: list[float] = []
    texts: list[str] = []
    for record in records:
        record_id = str(record.get("record_id", ""))
        texts.append(record_id)
        held_numbers.extend(numbers(record_id))  # "price_band:US:110" holds category 110
        for value in _flatten(record.get("value")):
            if isinstance(value, bool) or value is None:
                continue
            if isinstance(value, (int, float)):
                held_numbers.append(float(value))
                texts.append(str(value))
            else:
                texts.append(str(value))
                held_numbers.extend(numbers(str(value)))
                # as a claim's numbers are read: "two-year warranty" holds 2, "5k" 5000
                held_numbers.extend(number for number, _ in stated_numbers(str(value)))
    return held_numbers, " | ".join(texts)


def language_problem(text: str, language: str) -> str | None:
    """Why ``text`` is not in ``language`` (``"en"`` or ``"zh"``), or None. English: at most a
    fifth of its letters outside the Latin alphabet (names and a quoted term may be); Chinese:
    some Chinese characters. A claim in another language could not be read by the seller it is
    written for, and its words would escape the checks above."""
    if language == "zh":
        return None if re.search(r"[\u4e00-\u9fff]", text) else "holds no Chinese text"
    letters = [char for char in text if char.isalpha()]
    foreign = sum(1 for char in letters if not ("a" <= char.lower() <= "z"
                                                 or "\u00c0" <= char <= "\u024f"))
    if letters and foreign > len(letters) / 5:
        return "not in English"
    return None


def check(claim: dict[str, Any], evidence: dict[str, dict[str, Any]],
          supplier_names: Iterable[str] = (), language: str | None = None) -> str | None:
    """None when the claim is supported, else the reason it is not. ``language``: the
    language the text must be in (see ``language_problem``); None: any."""
    text = str(claim.get("text") or "")
    cited = [eid for eid in claim.get("evidence") or [] if isinstance(eid, str)]
    if not text.strip():
        return "empty text"
    wrong = language_problem(text, language) if language else None
    if wrong:
        return wrong
    if not cited:
        return "cites no evidence"
    missing = [eid for eid in cited if eid not in evidence]
    if missing:
        return f"cites evidence the result does not hold: {', '.join(missing[:3])}"
    held_numbers, held_text = _held([evidence[eid] for eid in cited])
    held_folded = held_text.casefold()
    for entity in LEGAL_ACT.findall(text):
        if entity not in held_text:
            return f"names {entity}, which the cited evidence does not hold"
    for entity in IDENTIFIER.findall(text):
        if entity.casefold() not in held_folded:
            return f"names {entity}, which the cited evidence does not hold"
    for mark in CERTIFICATE.findall(text):
        if mark.casefold() not in held_folded:
            return f"names certificate {mark}, which the cited evidence does not hold"
    folded = text.casefold()
    for name in supplier_names:
        for form in _name_forms(name):
            if form in folded and form not in held_folded:
                return f"names supplier {name!r}, which the cited evidence does not hold"
    for company in company_names(text):
        if not _company_held(company, held_text):
            return f"names company {company!r}, which the cited evidence does not hold"
    for run in CJK_COMPANY.findall(text):
        # held when some ending of the run, two characters of name or more and the legal form,
        # is in the evidence
        if not any(run[start:] in held_text for start in range(len(run) - 5)):
            return f"names company {run!r}, which the cited evidence does not hold"
    for number, percent in stated_numbers(text):
        options = (number, number / 100) if percent else (number,)
        if not any(math.isclose(option, value, rel_tol=1e-9, abs_tol=1e-9)
                   for option in options for value in held_numbers):
            return f"number {number:g} is not in the cited evidence"
    return None


def company_names(text: str) -> list[str]:
    """Companies an English text names by their legal form: the run of capitalised words (and
    the "and", "of", "&" between them) right before "Co., Ltd.", "Inc.", "Factory" and the
    like, without a leading word such as "The" or "Supplier"; a form with no such word before
    it ("the company") names none."""
    found = []
    for match in COMPANY_FORM.finditer(text):
        words = text[:match.start()].split()
        name: list[str] = []
        while words and (words[-1][:1].isupper() or words[-1] in _NAME_LINKS):
            name.insert(0, words.pop())
        while name and (name[0].casefold().strip(",.;:") in _NOT_NAMES or name[0] in _NAME_LINKS):
            name.pop(0)
        if name and name[-1].endswith((",", ";", ":", ".")):
            continue  # "..., Inc." after a list or a sentence is not this name's form
        if name:
            found.append(" ".join([*name, match.group(0)]))
    return found


def _company_held(company: str, held_text: str) -> bool:
    """The company is in the held text, or a held value is the company's name without some
    leading words ("Shortlisted Ningbo Bright Appliance Co." when a supplier's name field holds
    "Ningbo Bright Appliance Co."; a "Shenzhen Bright Appliance Co." is not held by it)."""
    mention = _word_form(company)
    if mention in _word_form(held_text):
        return True
    values = {_word_form(value) for value in held_text.split(" | ")}
    words = mention.split()
    return any(" " + " ".join(words[start:]) + " " in values for start in range(1, len(words)))


def _word_form(text: str) -> str:
    """Lower-case words and digits only, space-separated and padded: punctuation and spacing
    do not tell "Co.,Ltd." from "Co., Ltd."."""
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.casefold())) + " "


def _name_forms(name: str) -> tuple[str, ...]:
    """A supplier's name as a claim may write it, case-folded: in full, and by its first two
    words when they are distinctive enough (``yiwu tongda``) to stand for it."""
    full = " ".join(name.split()).casefold()
    if not full:
        return ()
    words = full.split()
    short = " ".join(words[:2])
    if len(words) > 2 and len(short) >= 8 and all(word.isalpha() for word in words[:2]):
        return full, short
    return (full,)


def gate(claims: list[dict[str, Any]], evidence: dict[str, dict[str, Any]],
         supplier_names: Iterable[str] = (), language: str | None = "en"
         ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(kept claims, removed claims each with its ``reason``); claims are in English unless
    ``language`` says otherwise."""
    names = list(supplier_names)
    kept, removed = [], []
    for claim in claims:
        reason = check(claim, evidence, names, language)
        if reason is None:
            kept.append(claim)
        else:
            removed.append({**claim, "reason": reason})
    return kept, removed
