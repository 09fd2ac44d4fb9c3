"""``retrieval.rerank.matches`` against the partial-sort implementation it replaced, kept here
as the oracle: the same matches, in the same order, on random features and on features full of
exact ties (duplicated query or candidate descriptors, a candidate of two features)."""

from __future__ import annotations

import numpy as np
import pytest

from retrieval.rerank import RATIO, LocalFeatures, matches, root_sift


def reference_matches(query: LocalFeatures,
                      candidate: LocalFeatures) -> tuple[np.ndarray, np.ndarray]:
    similarity = query.descriptors @ candidate.descriptors.T
    best = similarity.argmax(axis=1)
    rows = np.arange(len(best))
    first = similarity[rows, best]
    second = np.partition(similarity, -2, axis=1)[:, -2]
    ratio_ok = np.sqrt(np.maximum(2 - 2 * first, 0)) < RATIO * np.sqrt(np.maximum(2 - 2 * second, 0))
    mutual = similarity.argmax(axis=0)[best] == rows
    keep = np.nonzero(ratio_ok & mutual)[0]
    return keep, best[keep]


def features(descriptors: np.ndarray) -> LocalFeatures:
    return LocalFeatures(np.zeros((len(descriptors), 2), np.float32), root_sift(descriptors))


def sift_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """Raw SIFT-like descriptors: whole numbers 0-255, mostly small."""
    return np.minimum(rng.exponential(20, (n, 128)).round(), 255).astype(np.float32)


def shared(rng: np.random.Generator, query_n: int, candidate_n: int, common: int):
    """A query and a candidate that share ``common`` features (slightly perturbed)."""
    base = sift_like(rng, common)
    query = np.concatenate([base + rng.integers(0, 3, base.shape), sift_like(rng, query_n)])
    candidate = np.concatenate([base, sift_like(rng, candidate_n)])
    return query[rng.permutation(len(query))], candidate[rng.permutation(len(candidate))]


def assert_same(query: LocalFeatures, candidate: LocalFeatures) -> None:
    got, want = matches(query, candidate), reference_matches(query, candidate)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("seed", range(6))
def test_same_matches_as_the_partial_sort(seed):
    rng = np.random.default_rng(seed)
    query, candidate = shared(rng, 150 + 40 * seed, 120, 60)
    found = matches(features(query), features(candidate))
    assert len(found[0]) >= 30  # the shared features are found, not an empty answer agreed on
    assert_same(features(query), features(candidate))


def test_ties_break_as_before():
    rng = np.random.default_rng(7)
    query, candidate = shared(rng, 80, 90, 40)
    # exact duplicates: a query feature twice (ties down a column), a candidate feature twice
    # (the best and the second best equal: the ratio test refuses), a constant feature
    query = np.concatenate([query, query[:10], np.full((3, 128), 5, np.float32)])
    candidate = np.concatenate([candidate, candidate[:15], np.full((2, 128), 5, np.float32)])
    assert_same(features(query), features(candidate))
    assert_same(features(candidate), features(query))


def test_smallest_candidate_and_the_inputs_left_untouched():
    rng = np.random.default_rng(3)
    query, candidate = features(sift_like(rng, 40)), features(sift_like(rng, 2))
    before = query.descriptors.copy(), candidate.descriptors.copy()
    assert_same(query, candidate)
    assert np.array_equal(query.descriptors, before[0])
    assert np.array_equal(candidate.descriptors, before[1])


def test_nothing_passing_the_ratio_test():
    # every candidate feature the same: each query feature's best and second best are equal
    rng = np.random.default_rng(5)
    query = features(sift_like(rng, 30))
    candidate = features(np.repeat(sift_like(rng, 1), 12, axis=0))
    got = matches(query, candidate)
    assert got[0].size == 0 and got[1].size == 0
    assert_same(query, candidate)
