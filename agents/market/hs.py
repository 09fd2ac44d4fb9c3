"""HS classification: the three most likely 6-digit HS 2022 codes for a product, with scores.

Two signals, each cited:

- **nomenclature similarity**: cosine similarity of the text embedder's vectors (MiniLM in
  production) between the product text (category path, title, material, seller text) and each
  6-digit subheading's description in ``data/trade/hs/harmonized-system.csv``, prefixed by its
  heading's description. A heading scores its best subheading.
- **category priors** (``data/trade/hs_priors.csv``): hand-written rows ``terms -> heading`` with a
  weight and a reason ("tank -> 6109: tank tops are knitted singlets"). A row applies when all
  its terms occur as words in the product text; it counts fully when they occur in the title,
  material or seller text and at ``CATEGORY_ONLY`` when the category path is needed.

    heading score = best subheading similarity + PRIOR_WEIGHT x best matching prior weight

The three best headings are reported, each with its best subheading, and scores are a softmax
over the ten best headings (temperature ``TEMPERATURE``), so they read as shares. A "parts"
subheading (its description reads "...; parts ...") is not chosen for a product whose words do
not say it is a part, spare, accessory or replacement, unless its heading has no other: on the
demo catalog a complete garment steamer or hair clipper was classified as parts of its heading
(the duty rate follows the subheading); subheading agreement with the catalog's codes went
0.412 -> 0.437, the heading unchanged. These are candidates for a customs broker to confirm,
not rulings.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.evidence import cite
from agents.market.text import category_words

if TYPE_CHECKING:
    from retrieval.embedders.base import TextEmbedder

NOMENCLATURE_FILE = "hs/harmonized-system.csv"
PRIORS_FILE = "hs_priors.csv"
# subheading vectors shipped beside the nomenclature (float16), so no run embeds 5,613 texts;
# used only when the embedder name and the nomenclature file's SHA-256 match, else recomputed
VECTORS_FILE = "hs/subheadings.{embedder}.npz"
PRIOR_WEIGHT = 0.4  # a full prior is worth 0.4 of cosine similarity
CATEGORY_ONLY = 0.6  # a prior matched only with the help of the category path
TEMPERATURE = 0.05
TOP_N = 3
POOL = 10  # headings in the softmax
PARTS_SUBHEADING = re.compile(r";\s*parts\b", re.IGNORECASE)  # "Electro-thermic appliances; parts"
PART_WORDS = ("part", "spare", "accessory", "accessories", "replacement")  # plurals count too


def _words(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "


def _has(words: str, term: str) -> bool:
    """``term`` (one or more words) occurs in ``words``, allowing a plural ``s``/``es``."""
    return re.search(r" " + re.escape(term) + r"(s|es)? ", words) is not None


@dataclass(frozen=True)
class Prior:
    terms: tuple[str, ...]
    heading: str
    weight: float
    reason: str
    line: int

    @property
    def record_id(self) -> str:
        return f"line{self.line}"

    def weight_for(self, primary: str, category: str) -> float:
        """The prior's effective weight for a product's words: full when its terms occur in the
        primary text (title, material, seller text), ``CATEGORY_ONLY`` of it when the category
        path is needed, 0 when they do not occur."""
        if all(_has(_words(primary), term) for term in self.terms):
            return self.weight
        if all(_has(_words(f"{category} {primary}"), term) for term in self.terms):
            return self.weight * CATEGORY_ONLY
        return 0.0


def product_text(product: dict[str, Any]) -> tuple[str, str]:
    """(primary text: title, material, seller text; category text) of a product dict."""
    category = category_words(product.get("category"))
    primary = " ".join(str(product.get(key) or "").strip()
                       for key in ("title", "material", "text")).strip()
    return primary, category


class HSClassifier:
    """HS 2022 subheadings, their descriptions and the category priors, loaded once; vectors are
    computed on first use per text embedder and kept."""

    def __init__(self, subheadings: dict[str, str], headings: dict[str, str],
                 priors: list[Prior], folder: Path | None = None) -> None:
        self.folder = folder
        self.subheadings = subheadings
        self.headings = headings
        self.priors = priors
        self._codes = sorted(subheadings)
        self._heading_of = np.array([code[:4] for code in self._codes])
        self._vectors: dict[str, np.ndarray] = {}
        # parts subheadings of headings that have another: never the pick for a whole product
        parts = np.array([bool(PARTS_SUBHEADING.search(subheadings[code])) for code in self._codes],
                         dtype=bool)
        whole = set(self._heading_of[~parts]) if len(parts) else set()
        self._parts_only_for_parts = parts & np.isin(self._heading_of, list(whole))

    @classmethod
    def load(cls, trade_dir: str | Path) -> HSClassifier:
        trade_dir = Path(trade_dir)
        subheadings, headings = {}, {}
        path = trade_dir / NOMENCLATURE_FILE
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                code, text = row["hscode"].strip(), row["description"].strip()
                if len(code) == 4:
                    headings[code] = text
                elif len(code) == 6:
                    subheadings[code] = text
        priors = []
        path = trade_dir / PRIORS_FILE
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    terms = tuple(t.strip().lower() for t in row["terms"].split("+") if t.strip())
                    heading = row["heading"].strip()
                    if not terms or len(heading) != 4 or not heading.isdigit():
                        raise ValueError("terms and a 4-digit heading are required")
                    priors.append(Prior(terms, heading, float(row["weight"] or 1),
                                        row["reason"].strip(), line))
                except (KeyError, ValueError, AttributeError) as error:
                    raise ValueError(f"{path}: line {line}: bad prior: {error}") from None
        return cls(subheadings, headings, priors, folder=trade_dir)

    def _fingerprint(self) -> str:
        if self.folder is None:
            return ""
        return hashlib.sha256((self.folder / NOMENCLATURE_FILE).read_bytes()).hexdigest()

    def vectors_path(self, embedder_name: str) -> Path | None:
        return None if self.folder is None else \
            self.folder / VECTORS_FILE.format(embedder=embedder_name)

    def write_vectors(self, embedder: TextEmbedder) -> Path:
        """Embed every subheading and save the vectors beside the nomenclature."""
        name = getattr(embedder, "name", type(embedder).__name__)
        path = self.vectors_path(name)
        if path is None:
            raise ValueError("the classifier was not loaded from a folder")
        vectors = np.asarray(embedder.embed_texts([self.subheadings[c] for c in self._codes]),
                             dtype=np.float32)
        np.savez_compressed(path, vectors=vectors.astype(np.float16),
                            codes=np.array(self._codes), embedder=np.array(name),
                            source_sha256=np.array(self._fingerprint()))
        self._vectors[name] = vectors
        return path

    def description(self, code: str) -> str:
        heading = self.headings.get(code[:4], "")
        return f"{heading} -- {self.subheadings.get(code, '')}" if heading else \
            self.subheadings.get(code, "")

    def _matrix(self, embedder: TextEmbedder) -> np.ndarray:
        name = getattr(embedder, "name", type(embedder).__name__)
        path = self.vectors_path(name)
        if name not in self._vectors and path is not None and path.exists():
            stored = np.load(path)
            if (str(stored["embedder"]) == name and list(stored["codes"]) == self._codes
                    and str(stored["source_sha256"]) == self._fingerprint()):
                self._vectors[name] = stored["vectors"].astype(np.float32)
        if name not in self._vectors:
            texts = [self.subheadings[code] for code in self._codes]
            self._vectors[name] = np.asarray(embedder.embed_texts(texts), dtype=np.float32)
        return self._vectors[name]

    def matching_priors(self, primary: str, category: str) -> dict[str, tuple[float, Prior]]:
        """Best prior per heading: ``heading -> (effective weight, prior row)``."""
        best: dict[str, tuple[float, Prior]] = {}
        for prior in self.priors:
            weight = prior.weight_for(primary, category)
            if weight > best.get(prior.heading, (0.0, prior))[0]:
                best[prior.heading] = (weight, prior)
        return best

    def classify(self, embedder: TextEmbedder, product: dict[str, Any], top_n: int = TOP_N,
                 use_priors: bool = True) -> list[dict[str, Any]]:
        """Up to ``top_n`` candidates ``{code, heading, score, similarity, prior, description,
        prior_reason}``, best first; empty when the product has no text."""
        primary, category = product_text(product)
        query = " ".join(part for part in (category, primary) if part)
        if not query:
            return []
        sims = self._matrix(embedder) @ np.asarray(embedder.embed_texts([query]),
                                                   dtype=np.float32)[0]
        choosable = sims
        if not any(_has(_words(query), word) for word in PART_WORDS):
            choosable = np.where(self._parts_only_for_parts, -np.inf, sims)
        best_sub: dict[str, int] = {}
        for index in np.argsort(-choosable, kind="stable"):
            best_sub.setdefault(self._heading_of[index], int(index))
        priors = self.matching_priors(primary, category) if use_priors else {}
        scored = []
        for heading, index in best_sub.items():
            prior = priors.get(heading, (0.0, None))
            scored.append((float(sims[index]) + PRIOR_WEIGHT * prior[0], heading, index, prior))
        scored.sort(key=lambda item: (-item[0], item[1]))
        pool = scored[:POOL]
        weights = np.exp((np.array([s[0] for s in pool]) - pool[0][0]) / TEMPERATURE)
        shares = weights / weights.sum()
        out = []
        for (total, heading, index, (prior_weight, prior)), share in zip(pool[:top_n], shares):
            code = self._codes[index]
            out.append({"code": code, "heading": heading, "score": round(float(share), 3),
                        "combined": round(total, 4), "similarity": round(float(sims[index]), 4),
                        "prior": round(prior_weight, 3), "description": self.description(code),
                        "prior_reason": prior.reason if prior else None,
                        "prior_line": prior.line if prior else None, "query": query})
        return out


def similarity_only_warning(candidates: list[dict[str, Any]]) -> str | None:
    """A warning when the classifier's top candidate has no category prior behind it: it then
    rests on nomenclature similarity alone, which is weak (``evals/hs_holdout.py``: heading
    top-1 0.187 on the gold set with each case's own priors withheld, against 1.00 with them)."""
    if not candidates or candidates[0].get("prior"):
        return None
    return (f"HS code: no category prior names this product's kind, so the top candidate "
            f"{candidates[0]['code']} rests on nomenclature similarity alone, which ranked the "
            "right heading first for fewer than one product in five when the priors of the "
            "gold set's products were withheld (`sourcing eval hs-holdout`): have a customs "
            "broker confirm the code")


def cite_candidates(candidates: list[dict[str, Any]], evidence: dict[str, dict[str, Any]],
                    embedder_name: str) -> list[dict[str, Any]]:
    """The result's ``hs_candidates`` (code, score, description, evidence), evidence added."""
    out = []
    for candidate in candidates:
        code = candidate["code"]
        ids = [cite(evidence, "harmonized-system.csv", code, "description",
                    candidate["description"])]
        if candidate["prior_line"] is not None:
            ids.append(cite(evidence, "hs_priors.csv", f"line{candidate['prior_line']}",
                            "heading", candidate["heading"], reason=candidate["prior_reason"]))
        ids.append(cite(evidence, "derived", f"hs_classification:{code}", "score",
                        candidate["score"], inputs=list(ids), query=candidate["query"],
                        similarity=candidate["similarity"], prior=candidate["prior"],
                        method=f"softmax (T={TEMPERATURE}) over the {POOL} best headings of "
                               f"cosine similarity ({embedder_name}) to the subheading "
                               f"description + {PRIOR_WEIGHT} x prior weight"))
        out.append({"code": code, "score": candidate["score"],
                    "description": candidate["description"],
                    "similarity": candidate["similarity"], "prior": candidate["prior"],
                    "evidence": ids})
    return out


def text_only_result(classifier: HSClassifier, embedder: TextEmbedder, title: str | None,
                     description: str | None) -> dict[str, Any]:
    """A minimal result (``product.hs_candidates``, ``evidence``, empty grounding) for an eval
    case that gives words and no photo."""
    evidence: dict[str, dict[str, Any]] = {}
    # a leading "Category: <path>." sentence is the category path, as a catalog would hold it
    text, category = description or "", None
    match = re.match(r"\s*Category:\s*([^.]+)\.\s*", text)
    if match:
        category, text = match.group(1).strip(), text[match.end():]
    product = {"title": title, "category": category, "text": text or None}
    candidates = cite_candidates(classifier.classify(embedder, product), evidence,
                                 getattr(embedder, "name", "text"))
    return {"product": {**product, "hs_candidates": candidates}, "shortlist": [],
            "products": [], "evidence": evidence,
            "grounding": {"total": 0, "supported": 0, "unsupported": []}}


if __name__ == "__main__":  # pragma: no cover
    import os
    import sys

    from retrieval.embedders.text import MiniLMTextEmbedder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / \
        "data" / "trade"
    print(HSClassifier.load(folder).write_vectors(MiniLMTextEmbedder()))
