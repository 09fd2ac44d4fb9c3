"""The committed dev eval set: loads, its tags and sizes, and its script is deterministic."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from evals.make_dev_set import KINDS, build_dev_set
from evals.sets import load_eval_set

REPO = Path(__file__).resolve().parents[1]
DEV_SET = REPO / "evals" / "sets" / "dev" / "dev.jsonl"
DEV_IMAGES = REPO / "evals" / "sets" / "dev" / "images"
QUERIES = REPO / "data" / "catalogs" / "demo" / "queries"
TRUTH = REPO / "data" / "catalogs" / "demo" / "ground_truth.json"


@pytest.fixture(scope="module")
def dev_cases():
    return load_eval_set(DEV_SET)


def test_dev_set_loads_with_enough_cases(dev_cases):
    assert len(dev_cases) >= 300


def test_every_tag_has_its_cases(dev_cases):
    tags = Counter(tag for c in dev_cases for tag in c.tags)
    assert tags["held_out_view"] == 177
    assert tags["unseen_colour"] > 0
    for kind in KINDS:
        assert tags[kind] >= 25, kind
    assert tags["constraint"] == 20 and tags["text_only"] == 20
    # a degraded case carries exactly its kind
    for c in dev_cases:
        if not {"held_out_view", "constraint", "text_only"} & set(c.tags):
            assert len(c.tags) == 1 and c.tags[0] in KINDS


def test_constraint_cases_exclude_the_source_and_leave_another_supplier(dev_cases):
    import csv

    with (REPO / "data" / "catalogs" / "demo" / "listings.csv").open(newline="") as handle:
        listings = list(csv.DictReader(handle))
    for c in (c for c in dev_cases if "constraint" in c.tags):
        (product,) = c.expect["relevant_product_ids"]
        (source,) = c.expect["excluded_supplier_ids"]
        limit = c.constraints["max_moq"]
        offers = [row for row in listings if row["product_id"] == product]
        assert all(int(r["moq"]) > limit for r in offers if r["supplier_id"] == source)
        assert any(int(r["moq"]) <= limit for r in offers if r["supplier_id"] != source)


def test_held_out_views_are_the_reserved_photos_in_place(dev_cases):
    reserved_set = REPO / "evals" / "sets" / "demo_reserved" / "demo_reserved.jsonl"
    reserved = [json.loads(line) for line in reserved_set.read_text().splitlines() if line]
    by_id = {c.id: c for c in dev_cases}
    for raw in reserved:
        c = by_id[raw["id"]]
        assert c.image.resolve().parent == QUERIES.resolve()
        assert list(c.tags) == raw["tags"]
        assert c.expect == raw["expect"]


def test_expectations_follow_the_ground_truth(dev_cases):
    truth = json.loads(TRUTH.read_text(encoding="utf-8"))["products"]
    for c in dev_cases:
        if "text_only" in c.tags:
            product = next(p for p in truth.values() if p["name"] == c.title)
            assert c.image is None and c.expect == {"hs_heading": product["hs_code"][:4]}
            continue
        (product_id,) = c.expect["relevant_product_ids"]
        assert c.expect["source_supplier_id"] == truth[product_id]["source_supplier_id"]
        assert c.expect["hs_heading"] == truth[product_id]["hs_code"][:4]


def test_degraded_images_exist_and_are_small(dev_cases):
    degraded = [c for c in dev_cases if c.tags[0] in KINDS]
    for c in dev_cases:
        assert "text_only" in c.tags or (c.image is not None and c.image.is_file()), c.id
    for c in degraded:
        assert c.image.resolve().is_relative_to(DEV_IMAGES.resolve())
        with Image.open(c.image) as img:
            assert img.format == "JPEG" and max(img.size) <= 640, c.id
    # nothing stale: every file under dev/images belongs to a case
    on_disk = {p.resolve() for p in DEV_IMAGES.rglob("*") if p.is_file()}
    assert on_disk == {c.image.resolve() for c in degraded}
    assert sum(p.stat().st_size for p in on_disk) < 15 * 1024 * 1024


def test_regenerating_is_deterministic_and_prefix_stable(tmp_path):
    first = build_dev_set(tmp_path / "a", per_kind=2)
    second = build_dev_set(tmp_path / "b", per_kind=2)
    assert first.read_bytes() == second.read_bytes()
    images_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jpg"))
    images_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.jpg"))
    assert images_a == images_b and len(images_a) == 2 * len(KINDS)
    for relative in images_a:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()
    # the small set's degraded cases are the first cases of each kind in the committed set
    small = load_eval_set(first)
    assert len(small) == 177 + 2 * len(KINDS) + 20 + 20
    committed = {json.loads(line)["id"]: line for line in DEV_SET.read_text().splitlines() if line}
    for line in first.read_text().splitlines():
        raw = json.loads(line)
        if raw["tags"][0] in KINDS:  # photos made here; the others point at the reserved photos
            assert committed[raw["id"]] == line
