"""Lab 1 reference: recall@k over a batch of queries."""

from __future__ import annotations

from collections.abc import Collection, Sequence


def recall_at_k(rankings: Sequence[Sequence[str]], relevant: Sequence[Collection[str]],
                k: int) -> float:
    """Share of queries with at least one relevant id among the first ``k`` of their ranking."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if len(rankings) != len(relevant):
        raise ValueError(f"{len(rankings)} rankings but {len(relevant)} relevant sets")
    if not rankings:
        raise ValueError("no queries")
    hits = sum(any(item in wanted for item in ranking[:k])
               for ranking, wanted in zip(rankings, relevant))
    return hits / len(rankings)
