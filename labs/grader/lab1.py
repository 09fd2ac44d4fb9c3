"""Grader of lab 1: an image embedder of the student's, an index over part of the demo catalog,
recall on degraded copies of catalog photos, and a recall@k function checked on hand-made cases.

The query set is built here, the same way every time: every ``SUBSET_EVERY``-th product of the
demo catalog (sorted by product id), all listings of those products in the index, and for each
product one photo of its first factory listing, degraded (cropped off-centre, shrunk, turned
a few degrees, re-compressed as a low-quality JPEG). A query is answered by the distinct
products of the listings the index returns, best first. Recall is computed here, never with the
student's function, so a wrong recall function cannot flatter an embedder.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from data.catalog.schema import Catalog
from labs.grader.feedback import Report, StudentFileError, describe, load_student_module

TITLE = "Build an index, measure recall, swap embedders"
FOLDER = "lab1_index"
README = Path(__file__).resolve().parents[1] / FOLDER / "README.md"
EMBEDDER_CLASS = "ColourHistogramEmbedder"
SUBSET_EVERY = 5  # every 5th product of the demo catalog: 44 products, 159 listings
SEARCH_K = 60  # listings fetched per query before they are folded into products
RECALL_AT = (1, 5, 10)
# the threshold the grader holds the student's embedder to (recall@5 on the degraded queries);
# measured: the reference colour histogram 0.93, the project's descriptor (descriptor-v4) 1.00,
# a constant embedder about 0.1, a plain 8 x 8 x 8 RGB histogram 0.14 (the colour cast and the
# white backdrop defeat it)
MIN_RECALL_AT_5 = 0.80

# (rankings, relevant, k, expected recall) the student's recall_at_k must reproduce
RECALL_CASES: list[tuple[list[list[str]], list[set[str]], int, float, str]] = [
    ([["a", "b", "c"]], [{"c"}], 1, 0.0, "relevant item at rank 3, k=1"),
    ([["a", "b", "c"]], [{"c"}], 3, 1.0, "relevant item at rank 3, k=3"),
    ([["a", "b"], ["x", "y"]], [{"b"}, {"z"}], 2, 0.5, "two queries, one hit"),
    ([["a", "b"], ["x", "y"], ["p"], ["q"]], [{"a"}, {"y"}, {"p"}, {"r"}], 1, 0.5,
     "four queries: mean of per-query hits"),
    ([["a"]], [{"a"}], 10, 1.0, "k larger than the ranking"),
    ([[]], [{"a"}], 5, 0.0, "empty ranking"),
    ([["a", "b", "c"]], [{"b", "c"}], 2, 1.0, "several relevant items count once"),
]
# (rankings, relevant, k, why) calls that must raise ValueError
RECALL_ERRORS: list[tuple[list[list[str]], list[set[str]], int, str]] = [
    ([["a"]], [{"a"}], 0, "k = 0"),
    ([["a"], ["b"]], [{"a"}], 1, "two rankings but one relevant set"),
    ([], [], 1, "no queries at all"),
]


def subset_catalog(catalog: Catalog, every: int = SUBSET_EVERY) -> Catalog:
    """The demo catalog cut down to every ``every``-th product (all of its listings)."""
    products = sorted({row.product_id for row in catalog.listings.values() if row.product_id})
    chosen = set(products[::every])
    listings = {lid: row for lid, row in catalog.listings.items() if row.product_id in chosen}
    return Catalog(root=catalog.root, suppliers=dict(catalog.suppliers), listings=listings)


def degrade(image: Image.Image) -> Image.Image:
    """A seller's re-shot of a catalog photo: off-centre crop, shrink, a 5-degree turn on a
    beige backdrop, a little darker and warmer, re-compressed as JPEG quality 35."""
    image = image.convert("RGB")
    width, height = image.size
    image = image.crop((int(width * 0.12), int(height * 0.06), int(width * 0.96),
                        int(height * 0.94)))
    image = image.resize((max(32, int(image.width * 0.6)), max(32, int(image.height * 0.6))),
                         Image.Resampling.BILINEAR)
    image = image.rotate(5, resample=Image.Resampling.BILINEAR, expand=False,
                         fillcolor=(235, 230, 220))
    pixels = np.asarray(image, dtype=np.float32) * 0.9
    pixels[..., 0] *= 1.04
    pixels[..., 2] *= 0.96
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=35)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def degraded_queries(catalog: Catalog) -> list[tuple[Image.Image, str]]:
    """One degraded photo per product: the first photo of its first factory listing (else of
    its first listing), with the product id it shows."""
    from retrieval.images import load_image

    by_product: dict[str, list] = {}
    for listing_id in sorted(catalog.listings):
        row = catalog.listings[listing_id]
        by_product.setdefault(row.product_id, []).append(row)
    queries = []
    for product_id in sorted(by_product):
        rows = by_product[product_id]
        factories = [row for row in rows
                     if catalog.suppliers[row.supplier_id].kind == "factory"]
        photo = (factories or rows)[0].images[0]
        queries.append((degrade(load_image(catalog.image_path(photo))), product_id))
    return queries


def product_ranking(hits: Sequence[Any], catalog: Catalog) -> list[str]:
    """Distinct product ids of listing hits, in hit order."""
    ranking: list[str] = []
    for hit in hits:
        product_id = catalog.listings[hit.listing_id].product_id
        if product_id and product_id not in ranking:
            ranking.append(product_id)
    return ranking


def recall(rankings: Sequence[Sequence[str]], relevant: Sequence[set[str]], k: int) -> float:
    """The grader's own recall@k (mean over queries of "a relevant id is in the first k")."""
    return float(np.mean([any(item in wanted for item in ranking[:k])
                          for ranking, wanted in zip(rankings, relevant)]))


def measure(catalog: Catalog, embedder: Any,
            queries: list[tuple[Image.Image, str]] | None = None) -> dict[str, float]:
    """Index ``catalog`` with ``embedder`` (the project's index code) and return recall@1/5/10
    of the degraded queries."""
    from retrieval.build import build_index

    queries = queries if queries is not None else degraded_queries(catalog)
    index = build_index(catalog, embedder, progress=False, backend="faiss", index_type="flat")
    vectors = np.asarray(embedder.embed_images([image for image, _ in queries]),
                         dtype=np.float32)
    rankings = [product_ranking(index.search(vector, k=SEARCH_K), catalog)
                for vector in vectors]
    relevant = [{product_id} for _, product_id in queries]
    return {f"recall@{k}": round(recall(rankings, relevant, k), 4) for k in RECALL_AT}


def _check_vectors(report: Report, embedder: Any) -> bool:
    """Shape, type, unit length and determinism on hand-made images."""
    from retrieval.embedders.base import ImageEmbedder

    step = "step 1"
    if not report.expect(isinstance(embedder, ImageEmbedder), "embedder interface",
                         f"{type(embedder).__name__} needs a `name` (str), a `dim` (int) and an "
                         "`embed_images(images)` method (retrieval/embedders/base.py)", step):
        return False
    name, dim = getattr(embedder, "name", None), getattr(embedder, "dim", None)
    if not report.expect(isinstance(name, str) and bool(name.strip())
                         and isinstance(dim, int) and dim > 0, "name and dim",
                         f"name must be a non-empty str and dim a positive int, got "
                         f"name={name!r}, dim={dim!r}", step):
        return False
    red = Image.new("RGB", (64, 48), (200, 30, 30))
    blue = Image.new("RGB", (80, 80), (20, 40, 190))
    ramp = Image.fromarray(np.tile(np.linspace(0, 255, 96, dtype=np.uint8), (64, 1)), "L")
    images = [red, blue, ramp.convert("RGB"), red.copy()]
    try:
        rows = embedder.embed_images(images)
    except Exception as exc:  # the student's code
        report.fail("embed_images", f"raised {describe(exc)}", "step 2")
        return False
    rows = np.asarray(rows)
    if not report.expect(rows.shape == (4, dim), "embed_images shape",
                         f"4 images gave shape {rows.shape}, expected (4, {dim}): one row of "
                         "`dim` numbers per image", "step 2"):
        return False
    if not report.expect(rows.dtype == np.float32, "float32 rows",
                         f"rows are {rows.dtype}; return `.astype(np.float32)`", "step 2"):
        return False
    if not report.expect(bool(np.isfinite(rows).all()), "finite values",
                         "some values are NaN or infinite (a division by zero?)", "step 2"):
        return False
    norms = np.linalg.norm(rows, axis=1)
    if not report.expect(bool(np.allclose(norms, 1.0, atol=1e-3)), "unit-length rows",
                         f"row lengths are {np.round(norms, 3).tolist()}; the index scores by "
                         "inner product, so divide each row by its L2 norm", "step 2"):
        return False
    report.expect(bool(np.allclose(rows[0], rows[3], atol=1e-5)), "deterministic",
                  "the same image gave two different vectors", "step 2")
    return report.expect(float(rows[0] @ rows[1]) < 0.99, "tells colours apart",
                         f"a red and a blue image have cosine {float(rows[0] @ rows[1]):.3f}; "
                         "a colour histogram should tell them apart", "step 2")


def _check_recall_function(report: Report, function: Callable[..., float]) -> None:
    step = "step 3"
    try:
        function([["a"]], [{"a"}], 1)
    except NotImplementedError as exc:
        report.fail("recall_at_k is written", describe(exc), step)
        return
    except Exception:  # judged case by case below
        pass
    wrong = []
    for rankings, relevant, k, expected, what in RECALL_CASES:
        try:
            got = function(rankings, relevant, k)
        except Exception as exc:  # the student's code
            wrong.append(f"{what}: raised {describe(exc)}")
            continue
        if not isinstance(got, (int, float)) or not math.isclose(float(got), expected,
                                                                  abs_tol=1e-9):
            wrong.append(f"{what}: recall_at_k({rankings}, {relevant}, k={k}) returned "
                         f"{got!r}, expected {expected}")
    report.expect(not wrong, "recall_at_k on hand-made cases",
                  f"{len(wrong)} of {len(RECALL_CASES)} wrong; first: {wrong[0]}" if wrong
                  else "", step, f"{len(RECALL_CASES)} cases")
    missing = []
    for rankings, relevant, k, what in RECALL_ERRORS:
        try:
            function(rankings, relevant, k)
        except ValueError:
            continue
        except Exception as exc:  # the student's code
            missing.append(f"{what}: raised {describe(exc)} instead of ValueError")
            continue
        missing.append(f"{what}: no ValueError")
    report.expect(not missing, "recall_at_k refuses bad input",
                  "; ".join(missing), step, f"{len(RECALL_ERRORS)} cases")


def grade(path: Path, services: Any = None) -> Report:
    report = Report(1, TITLE, path, readme=README)
    try:
        recall_module = load_student_module(path / "recall.py", "step 3")
        function = getattr(recall_module, "recall_at_k", None)
        if report.expect(callable(function), "recall.py defines recall_at_k",
                         "recall.py has no function recall_at_k", "step 3"):
            _check_recall_function(report, function)
    except StudentFileError as exc:
        report.fail("recall.py imports", str(exc), "step 3")
    try:
        module = load_student_module(path / "embedder.py", "step 1")
        cls = getattr(module, EMBEDDER_CLASS, None)
        if not report.expect(cls is not None, f"embedder.py defines {EMBEDDER_CLASS}",
                             f"embedder.py has no class {EMBEDDER_CLASS}", "step 1"):
            return report
        embedder = cls()
    except StudentFileError as exc:
        report.fail("embedder.py imports", str(exc), "step 1")
        return report
    except Exception as exc:  # the student's constructor
        report.fail(f"{EMBEDDER_CLASS}() builds", f"raised {describe(exc)}", "step 1")
        return report
    if not _check_vectors(report, embedder):
        return report

    catalog = subset_catalog(services.catalog if services is not None else _demo_catalog())
    queries = degraded_queries(catalog)
    try:
        figures = measure(catalog, embedder, queries)
    except Exception as exc:  # the student's embedder on real photos
        report.fail("index the catalog subset", f"raised {describe(exc)}", "step 2")
        return report
    report.figures[f"your embedder ({embedder.name}), {len(queries)} degraded queries over "
                   f"{len(catalog.listings)} listings"] = _fmt(figures)
    report.expect(figures["recall@5"] >= MIN_RECALL_AT_5, f"recall@5 >= {MIN_RECALL_AT_5}",
                  f"recall@5 is {figures['recall@5']:.3f}; improve the embedder (more bins, "
                  "HSV instead of RGB, square-root the histogram)", "step 4",
                  f"recall@5 = {figures['recall@5']:.3f}")
    from retrieval.embedders.descriptor import DescriptorEmbedder

    baseline = DescriptorEmbedder()
    report.figures[f"project's embedder ({baseline.name}), same queries"] = _fmt(
        measure(catalog, baseline, queries))
    return report


def _fmt(figures: dict[str, float]) -> str:
    return ", ".join(f"{key} {value:.3f}" for key, value in figures.items())


def _demo_catalog() -> Catalog:
    from api.settings import Settings
    from data.catalog.importer import load_catalog

    return load_catalog(Settings().catalog_dir)
