"""The re-ranker's catalog features kept on disk: loaded features equal computed ones, only
changed photos are recomputed, start-up warming fills the re-ranker's cache, and a catalog larger
than the cache reads its features from the memory-mapped file instead of computing them."""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from agents.context import Services
from agents.run import SourcingRunner
from data.catalog.importer import load_catalog
from retrieval.feature_store import (
    StoredFeatures,
    file_stamp,
    read_features,
    recipe,
    warm_reranker,
    write_features,
)
from retrieval.images import load_image
from retrieval.rerank import LocalFeatureReranker, local_features


def _photo(path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (240, 200), "white")
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        x, y = rng.integers(0, 220), rng.integers(0, 180)
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.rectangle((x, y, x + rng.integers(8, 40), y + rng.integers(8, 40)), fill=colour)
    image.save(path)


def _photos(folder, count: int = 4) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        _photo(folder / f"p{i}.png", seed=i)
        names.append(f"p{i}.png")
    return names


def _warm(folder, names, store, reranker=None):
    reranker = reranker or LocalFeatureReranker()
    report = warm_reranker(reranker, names, lambda name: load_image(folder / name),
                           lambda name: file_stamp(folder / name), store=store, workers=2)
    return reranker, report


def test_loaded_features_equal_computed_ones(tmp_path):
    names = _photos(tmp_path / "img")
    store = tmp_path / "features.npz"
    _, first = _warm(tmp_path / "img", names, store)
    assert (first.loaded, first.computed, first.written) == (0, len(names), True)

    reranker, second = _warm(tmp_path / "img", names, store)
    assert (second.loaded, second.computed, second.written) == (len(names), 0, False)
    for name in names:
        fresh = local_features(load_image(tmp_path / "img" / name))
        cached = reranker.cached(name)
        assert fresh.descriptors.shape[0] > 0
        assert np.array_equal(cached.points, fresh.points)
        assert np.array_equal(cached.descriptors, fresh.descriptors)  # bit-identical RootSIFT
        assert cached.thumbnail.dtype == np.uint8 and cached.thumbnail.std() > 0
        assert np.array_equal(cached.thumbnail, fresh.thumbnail)


def test_only_changed_photos_are_recomputed(tmp_path):
    folder = tmp_path / "img"
    names = _photos(folder)
    store = tmp_path / "features.npz"
    _warm(folder, names, store)
    _photo(folder / names[1], seed=99)
    stamp = os.stat(folder / names[1])
    os.utime(folder / names[1], ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10**9))
    reranker, report = _warm(folder, names, store)
    assert (report.loaded, report.computed, report.written) == (len(names) - 1, 1, True)
    fresh = local_features(load_image(folder / names[1]))
    assert np.array_equal(reranker.cached(names[1]).descriptors, fresh.descriptors)


def test_another_recipe_or_no_store_computes_everything(tmp_path):
    folder = tmp_path / "img"
    names = _photos(folder, 2)
    store = tmp_path / "features.npz"
    write_features(store, recipe("another-reranker"), {})
    _, report = _warm(folder, names, store)
    assert report.computed == len(names) and report.loaded == 0
    _, unstored = _warm(folder, names, None)
    assert unstored.computed == len(names) and not unstored.written


def test_runner_warms_the_reranker_with_every_catalog_photo(tmp_path):
    catalog_dir = tmp_path / "catalog"
    names = _photos(catalog_dir / "images", 3)
    with open(catalog_dir / "suppliers.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["supplier_id", "name"], ["S1", "Test Factory"]])
    with open(catalog_dir / "listings.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(
            [["listing_id", "supplier_id", "title", "images"],
             ["L1", "S1", "One", f"images/{names[0]}|images/{names[1]}"],
             ["L2", "S1", "Two", f"images/{names[2]}"]])
    catalog = load_catalog(catalog_dir)
    reranker = LocalFeatureReranker()
    services = Services(catalog=catalog, image_embedder=None, index=None, text_embedder=None,
                        rulebook=None, reranker=reranker,
                        feature_store=tmp_path / "index.rerank-features.npz")
    report = SourcingRunner(services, graph=object()).warm_reranker()
    assert report.computed == 3
    assert all(reranker.cached(f"images/{name}") is not None for name in names)
    assert services.feature_store.exists()
    # a cache smaller than the catalog, without a features file, is not warmed (it would only
    # keep the last photos)
    small = Services(catalog=catalog, image_embedder=None, index=None, text_embedder=None,
                     rulebook=None, reranker=LocalFeatureReranker(cache_size=2))
    assert SourcingRunner(small, graph=object()).warm_reranker() is None
    # with a features file it is: the re-ranker reads what its cache lacks from the file
    stored = dataclasses.replace(small, reranker=LocalFeatureReranker(cache_size=2),
                                 feature_store=tmp_path / "small.rerank-features.npz")
    report = SourcingRunner(stored, graph=object()).warm_reranker()
    assert report.computed == 3 and stored.feature_store.exists()
    assert stored.reranker._features_of(f"images/{names[0]}", None).points.size


def test_a_catalog_larger_than_the_cache_reads_its_features_from_the_file(tmp_path):
    folder = tmp_path / "img"
    names = _photos(folder, 5)
    store = tmp_path / "features.npz"
    reranker, report = _warm(folder, names, store, LocalFeatureReranker(cache_size=2))
    assert (report.computed, report.written) == (5, True)
    assert all(reranker.cached(name) is None for name in names)  # not filled, attached

    def unreadable(name):
        raise AssertionError(f"{name} was computed instead of read from the file")

    for name in names:  # each read from the file (the cache holds 2 of the 5 at a time)
        stored = reranker._features_of(name, unreadable)
        fresh = local_features(load_image(folder / name))
        assert np.array_equal(stored.points, fresh.points)
        assert np.array_equal(stored.descriptors, fresh.descriptors)
        assert np.array_equal(stored.thumbnail, fresh.thumbnail)
    # a photo the file does not hold is still computed
    _photo(folder / "new.png", seed=7)
    assert reranker._features_of("new.png", lambda n: load_image(folder / n)).points.size
    # the next start loads the file and computes nothing
    _, again = _warm(folder, names, store, LocalFeatureReranker(cache_size=2))
    assert (again.loaded, again.computed, again.written) == (5, 0, False)


def test_stored_features_are_memory_mapped_and_checked(tmp_path):
    folder = tmp_path / "img"
    names = _photos(folder, 3)
    store = tmp_path / "features.npz"
    _warm(folder, names, store)
    stored = StoredFeatures(store, recipe(LocalFeatureReranker.name))
    assert len(stored) == 3 and names[0] in stored and stored.features("other.png") is None
    assert all(isinstance(array, np.memmap) for array in
               (stored._points, stored._descriptors, stored._thumbnails))
    with pytest.raises(ValueError, match="another recipe"):
        StoredFeatures(store, recipe("another-reranker"))
    (tmp_path / "other.npz").write_bytes(b"not a zip")
    assert read_features(tmp_path / "other.npz", recipe(LocalFeatureReranker.name)) == {}
    empty = tmp_path / "empty.npz"
    write_features(empty, recipe(LocalFeatureReranker.name), {})
    assert len(StoredFeatures(empty, recipe(LocalFeatureReranker.name))) == 0


def test_features_computed_in_threads_equal_serial_ones(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    names = _photos(tmp_path / "img", 12)
    images = [load_image(tmp_path / "img" / name) for name in names] * 3
    serial = [local_features(image) for image in images]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(local_features, images))
    for one, other in zip(serial, threaded):
        assert np.array_equal(one.points, other.points)
        assert np.array_equal(one.descriptors, other.descriptors)


def test_the_streamed_file_is_what_savez_writes_and_rewrites_itself_from_its_own_views(
        tmp_path):
    rng = np.random.default_rng(3)
    entries = {f"images/p{i}.jpg": (f"{i}:1", (rng.random((count, 2), dtype=np.float32),
                                               rng.integers(0, 255, (count, 128), dtype=np.uint8),
                                               rng.integers(0, 255, (48, 48), dtype=np.uint8)))
               for i, count in enumerate((5, 0, 17))}  # a photo without keypoints in between
    wanted = recipe(LocalFeatureReranker.name)
    store = tmp_path / "features.npz"
    write_features(store, wanted, entries)
    names = sorted(entries)
    expected = {"paths": np.array(names), "counts": np.array([5, 0, 17], np.int32),
                "points": np.concatenate([entries[n][1][0] for n in names]),
                "descriptors": np.concatenate([entries[n][1][1] for n in names]),
                "thumbnails": np.array([entries[n][1][2] for n in names])}
    with np.load(store) as data:
        assert str(data["recipe"]) == wanted
        for key, value in expected.items():
            assert data[key].dtype == value.dtype and np.array_equal(data[key], value), key
    # rewritten over itself from the views of its own memory-mapped arrays: the same bytes
    before = store.read_bytes()
    write_features(store, wanted, read_features(store, wanted))
    assert store.read_bytes() == before
