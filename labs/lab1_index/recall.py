"""Lab 1, recall@k. Read labs/lab1_index/README.md (step 3).

recall@k of a batch of queries = the share of queries that have at least one relevant id among
the first k ids of their ranking.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence


def recall_at_k(rankings: Sequence[Sequence[str]], relevant: Sequence[Collection[str]],
                k: int) -> float:
    """``rankings[i]``: ids returned for query i, best first; ``relevant[i]``: the ids that are
    right answers for query i. Raise ``ValueError`` for k < 1, for lists of different lengths
    and for an empty batch."""
    # TODO (README step 3)
    raise NotImplementedError("TODO (README step 3): recall_at_k is not written yet")
