"""Text embeddings cached on disk: read back only for the same texts and the same model."""

from __future__ import annotations

import logging

import numpy as np

from agents.market.tools import AmazonMarketData, AmazonListing
from retrieval.embedders.text import HashingTextEmbedder
from retrieval.vector_cache import cache_path, cached_text_vectors


class CountingEmbedder(HashingTextEmbedder):
    def __init__(self, name: str = "hashing-bow") -> None:
        super().__init__(dim=64)
        self.name = name
        self.texts = 0

    def embed_texts(self, texts):
        self.texts += len(texts)
        return super().embed_texts(texts)


def test_written_once_then_read_back(tmp_path):
    embedder = CountingEmbedder()
    texts = ["Men's Clothing", "Luggage", "Sports & Fitness"]
    first = cached_text_vectors(embedder, texts, tmp_path, "categories")
    assert embedder.texts == 3 and cache_path(tmp_path, "categories", embedder.name).exists()
    again = cached_text_vectors(embedder, texts, tmp_path, "categories")
    assert embedder.texts == 3  # nothing embedded the second time
    assert again.dtype == np.float32 and np.array_equal(again, first)


def test_other_texts_or_model_are_embedded_afresh(tmp_path):
    embedder = CountingEmbedder()
    cached_text_vectors(embedder, ["a b", "c"], tmp_path, "categories")
    changed = cached_text_vectors(embedder, ["a b", "c d"], tmp_path, "categories")
    assert embedder.texts == 4
    assert np.array_equal(changed, HashingTextEmbedder(dim=64).embed_texts(["a b", "c d"]))
    other = CountingEmbedder("another-model")
    cached_text_vectors(other, ["a b", "c d"], tmp_path, "categories")
    assert other.texts == 2  # the file of the first model is not taken for the second


def test_no_folder_or_an_unwritable_one_still_embeds(tmp_path):
    embedder = CountingEmbedder()
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    for folder in (None, blocked / "cache"):
        vectors = cached_text_vectors(embedder, ["x"], folder, "categories")
        assert vectors.shape == (1, 64)
    assert embedder.texts == 2


def test_market_categories_and_titles_are_embedded_once_across_start_ups(tmp_path, caplog):
    categories = {1: "Men's Clothing", 2: "Luggage & Travel Gear", 3: "Sports & Fitness"}
    listing = AmazonListing("A1", "travel bag", 2, 20.0, None, 4.5, 10, False, 0, 2)

    def start_up(embedder):
        market = AmazonMarketData(categories, [listing], cache_dir=tmp_path)
        return market.match_category(embedder, "travel luggage", top_n=1)

    first, second = CountingEmbedder(), CountingEmbedder()
    with caplog.at_level(logging.INFO, logger="agents.market.tools"):
        assert start_up(first) == start_up(second)
    # the one-off embedding of the titles is announced once, with where it is kept
    [said] = [r.getMessage() for r in caplog.records if "listing titles" in r.getMessage()]
    assert said.startswith("embedding the 1 listing titles of Amazon US 2023 once")
    assert str(tmp_path) in said
    assert first.texts == 1 + 3 + 1  # the query, the categories, the listing titles
    assert second.texts == 1  # only the query


def test_a_shipped_copy_is_read_first_and_never_written(tmp_path):
    from retrieval.vector_cache import cached_vectors, write_vectors

    shipped = tmp_path / "data" / "title-centroids.model.npz"
    cache = tmp_path / "cache"
    calls = []

    def compute():
        calls.append(1)
        return np.ones((2, 3))

    write_vectors(shipped, np.full((2, 3), 7.0), "key-1")
    before = shipped.read_bytes()
    got = cached_vectors("key-1", compute, cache, "title-centroids", "model", shipped=shipped)
    assert calls == [] and got.dtype == np.float32 and (got == 7).all()
    assert not cache.exists()  # nothing computed, nothing cached
    # the shipped copy is of other data: computed, cached, and the copy left as it was
    again = cached_vectors("key-2", compute, cache, "title-centroids", "model", shipped=shipped)
    assert calls == [1] and (again == 1).all() and shipped.read_bytes() == before
    assert cache_path(cache, "title-centroids", "model").is_file()
    cached_vectors("key-2", compute, cache, "title-centroids", "model", shipped=shipped)
    assert calls == [1]  # read back from the cache
