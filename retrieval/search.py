"""Image search as the agents use it: first-stage vector search (filtered inside the index),
then optional re-ranking of the first ``rerank_top_n`` hits against the query photo.

**Several views of the query.** A seller's photo is often an altered copy of a catalog photo:
rotated on a coloured canvas, cropped, cut out and pasted on clutter, photographed off a screen.
A global descriptor of the whole frame then drifts away from the original, which falls out of the
candidates the re-ranker looks at. When the embedder is passed, ``search_images`` also embeds a
few crops of the query (``VIEWS``: the central half, which drops the corners a rotation fills and
most of the clutter around a centred product, and four corner windows of 65 % of each side, one
of which holds most of a product pasted off-centre), searches the index with each (same filter)
and merges the hits per listing by their best score, a crop's score lowered by ``VIEW_PENALTY``
so that the whole photo's ranking is only overridden by a clearly better crop. The merged list
is re-ranked as before; geometric verification decides among the candidates the views brought.
Each view costs one descriptor (about 10 ms) and one query row of an index search: the whole photo
and its views are searched in one batched call where the index has one (``search_batch``, which
answers exactly what one search per vector would). The views' vectors may come precomputed
(``view_vectors``, from ``retrieval.query.QueryEncoder``), so that encoding and searching are two
separate stages.

**Whole-product score.** A seller's photo shows one side of the product; the catalog holds
several (front, back, other colours, trader copies). Each hit's score is mixed with the mean
similarity of the query to *all* photos of its product (``VectorIndex.group_scores``; the
listing's own photos when it has no ``product_id``): ``(1 - GROUP_WEIGHT) * best photo +
GROUP_WEIGHT * product mean``. A product that resembles the query from every side then beats one
with a single lucky look-alike photo. On the 177 reserved photos of the dev set (``descriptor-v4``,
the whole photo only, no re-ranking) recall@1 / @5 rose from 0.791 / 0.944 to 0.808 / 0.955 at
weight 0.5. Through the whole graph, weights 0.35 / 0.5 / 0.65 / 0.8 gave held-out recall@1
0.808 / 0.819 / 0.825 / 0.836, but at 0.8 cut-outs on clutter and screen photos lost a case
each (the first stage's own photo score matters for altered copies); with a view penalty of 0.05
instead of 0.03, 0.65 gave 0.836 with no loss elsewhere, so those are the defaults.

**Deeper re-ranking.** The re-ranker looks at the first ``RERANK_TOP_N`` merged hits, and when
none of them is a copy of the query's picture it checks hits up to ``DEEP_N`` for one (see
``retrieval.rerank``); the index is asked for that many per view even when fewer (``k``) are
returned. The deep pass costs about 60 ms at the median on the demo catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from PIL import Image

from retrieval.images import on_white
from retrieval.index import ListingHit, ranked

SEARCH_K = 60  # listings an agent fetches per image search
RERANK_TOP_N = 100  # first-stage hits the re-ranker looks at
DEEP_N = 400  # hits checked for a copy of the query's picture when the first ones hold none
# crops of the query searched beside the whole photo: (share of each side kept, centre x, centre y)
VIEWS: tuple[tuple[float, float, float], ...] = (
    (0.50, 0.5, 0.5),
    (0.65, 0.0, 0.0), (0.65, 1.0, 0.0), (0.65, 0.0, 1.0), (0.65, 1.0, 1.0),
)
VIEW_PENALTY = 0.05  # subtracted from a crop's cosine before merging with the whole photo's
VIEW_MIN_SIDE = 32  # px; smaller photos are searched whole only
GROUP_WEIGHT = 0.65  # share of the whole-product mean in a hit's score (0: best photo only)


def query_views(image: Image.Image,
                views: Sequence[tuple[float, float, float]] = VIEWS) -> list[Image.Image]:
    """Crops of the query photo (see the module docstring); none for tiny photos."""
    width, height = image.size
    if min(width, height) < VIEW_MIN_SIDE:
        return []
    if image.mode not in ("RGB", "L"):
        # lay transparency on white once, so every crop sees the same backdrop
        image = on_white(image).convert("RGB")
    crops = []
    for share, cx, cy in views:
        cw, ch = max(1, round(width * share)), max(1, round(height * share))
        x0, y0 = round((width - cw) * cx), round((height - ch) * cy)
        crops.append(image.crop((x0, y0, x0 + cw, y0 + ch)))
    return crops


def _search(index: Any, vectors: np.ndarray, k: int, search_filter: Any) -> list[list[ListingHit]]:
    """One hit list per row of ``vectors``: one batched call when the index has one."""
    search_filter = None if search_filter is None or search_filter.is_empty else search_filter
    batch = getattr(index, "search_batch", None)
    if batch is not None and len(vectors) > 1:
        return batch(vectors, k=k, filter=search_filter)
    extra = {} if search_filter is None else {"filter": search_filter}
    return [index.search(vector, k=k, **extra) for vector in vectors]


def _search_merged(index: Any, vectors: np.ndarray, k: int, search_filter: Any,
                   penalties: Sequence[float]) -> list[ListingHit]:
    """``merge_hits`` of the rows' hit lists; computed inside the index where it can
    (``search_merged``, which answers exactly what the merge of its lists would)."""
    merged = getattr(index, "search_merged", None)
    if merged is None:
        return merge_hits(_search(index, vectors, k, search_filter), penalties, k)
    search_filter = None if search_filter is None or search_filter.is_empty else search_filter
    return merged(vectors, k=k, filter=search_filter, penalties=penalties)


def merge_hits(lists: Sequence[list[ListingHit]], penalties: Sequence[float],
               k: int) -> list[ListingHit]:
    """Per listing the best (score - penalty) over the hit lists, the ``k`` best, best first."""
    best: dict[str, ListingHit] = {}
    for hits, penalty in zip(lists, penalties):
        for hit in hits:
            score = hit.score - penalty
            seen = best.get(hit.listing_id)
            if seen is None or score > seen.score:
                best[hit.listing_id] = ListingHit(hit.listing_id, score, hit.image)
    return ranked(best.values(), k)


def with_group_scores(index: Any, vector: np.ndarray, hits: list[ListingHit],
                      weight: float = GROUP_WEIGHT) -> list[ListingHit]:
    """Hits re-scored with their product's mean similarity (see the module docstring), best
    first; unchanged when the weight is 0 or the index cannot score groups."""
    scorer = getattr(index, "group_scores", None)
    if weight <= 0 or not hits or scorer is None:
        return hits
    try:
        groups = scorer(vector, [hit.listing_id for hit in hits])
    except NotImplementedError:
        return hits
    return ranked((ListingHit(hit.listing_id,
                              (1 - weight) * hit.score + weight * groups.get(hit.listing_id,
                                                                             hit.score),
                              hit.image) for hit in hits), len(hits))


def search_images(index: Any, vector: np.ndarray, k: int, search_filter: Any = None,
                  reranker: Any = None, query_image: Image.Image | None = None,
                  image_loader: Callable[[str], Image.Image] | None = None,
                  rerank_top_n: int = RERANK_TOP_N, embedder: Any = None,
                  views: Sequence[tuple[float, float, float]] = VIEWS,
                  view_penalty: float = VIEW_PENALTY,
                  photos_of: Callable[[str], Sequence[str]] | None = None,
                  deep_n: int = DEEP_N,
                  view_vectors: np.ndarray | None = None,
                  group_weight: float = GROUP_WEIGHT) -> list[ListingHit]:
    """The ``k`` best listings for the query, best first.

    ``vector`` is the embedding of the whole query photo. The views' embeddings are either
    given (``view_vectors``, one row per view; ``retrieval.query.QueryEncoder`` computes them)
    or, with ``embedder`` (the one that built the index) and ``query_image``, computed here from
    the crops ``views`` of the photo; either way they are searched too and merged (see the
    module docstring); ``views=()`` without ``view_vectors`` turns that off.
    ``photos_of(listing_id)`` lets the re-ranker verify every photo of a candidate, not only its
    best first-stage photo. ``group_weight`` mixes in the whole-product score (0 turns it off).
    """
    rerank = reranker is not None and query_image is not None and image_loader is not None
    depth = max(k, rerank_top_n, deep_n) if rerank else k
    rows = np.asarray(vector, dtype=np.float32).reshape(1, -1)
    if view_vectors is None and embedder is not None and query_image is not None and views:
        crops = query_views(query_image, views)
        if crops:
            view_vectors = embedder.embed_images(crops)
    if view_vectors is not None and len(view_vectors):
        rows = np.concatenate([rows, np.asarray(view_vectors, dtype=np.float32)
                               .reshape(len(view_vectors), -1)])
    if len(rows) > 1:
        hits = _search_merged(index, rows, depth, search_filter,
                              [0.0] + [view_penalty] * (len(rows) - 1))
    else:
        hits = _search(index, rows, depth, search_filter)[0]
    hits = with_group_scores(index, vector, hits, group_weight)
    if rerank and hits:
        extra: dict[str, Any] = {"photos_of": photos_of} if photos_of is not None else {}
        if deep_n > rerank_top_n:
            extra["deep_n"] = deep_n
        hits = reranker.rerank(query_image, hits, image_loader, top_n=rerank_top_n, **extra)
    return hits[:k]
