"""Geometric re-ranking of image-search candidates on real demo catalog photos."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from threadpoolctl import threadpool_limits

from retrieval.index import ListingHit
from retrieval.rerank import LocalFeatureReranker, Reranker, bonus, inliers, local_features

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "catalogs" / "demo"

pytestmark = pytest.mark.skipif(not (DEMO / "listings.csv").is_file(),
                                reason="the demo catalog is not present")


@pytest.fixture(scope="module")
def photos() -> dict[str, str]:
    """One photo path (relative to the catalog) of each of a few distinct products."""
    chosen: dict[str, str] = {}
    with open(DEMO / "listings.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            wanted = ("automatic-espresso-machine", "tower-fan", "MH01", "WS03")
            if row["product_id"] in wanted and row["product_id"] not in chosen:
                chosen[row["product_id"]] = row["images"].split("|")[0]
    assert len(chosen) == 4
    return chosen


def _load(path: str) -> Image.Image:
    return Image.open(DEMO / path)


def _rotated(image: Image.Image) -> Image.Image:
    return image.convert("RGB").rotate(25, expand=True, fillcolor=(180, 170, 150))


def _cropped(image: Image.Image) -> Image.Image:
    w, h = image.size
    return image.crop((int(w * 0.2), int(h * 0.15), int(w * 0.85), int(h * 0.8)))


def _captioned(image: Image.Image) -> Image.Image:
    out = image.convert("RGB").copy()
    w, h = out.size
    draw = ImageDraw.Draw(out)
    draw.rectangle((0, int(h * 0.8), w, h), fill=(230, 20, 20))
    draw.text((20, int(h * 0.85)), "HOT SALE factory direct", fill="white")
    buffer = io.BytesIO()
    out.save(buffer, "JPEG", quality=30)
    return Image.open(io.BytesIO(buffer.getvalue()))


def test_protocol():
    assert isinstance(LocalFeatureReranker(), Reranker)


@pytest.mark.parametrize("alter", [_rotated, _cropped, _captioned],
                         ids=["rotated", "cropped", "captioned"])
def test_altered_copy_is_verified_and_promoted(photos, alter):
    target = photos["automatic-espresso-machine"]
    query = alter(_load(target))
    original, other = local_features(_load(target)), local_features(_load(photos["tower-fan"]))
    query_features = local_features(query)
    assert inliers(query_features, original) >= 30
    assert inliers(query_features, other) < 10
    # the first stage put the right listing last, by a clear margin
    hits = [ListingHit("L-other-1", 0.90, photos["tower-fan"]),
            ListingHit("L-other-2", 0.85, photos["MH01"]),
            ListingHit("L-right", 0.70, target)]
    reranked = LocalFeatureReranker().rerank(query, hits, _load, top_n=30)
    assert [hit.listing_id for hit in reranked][0] == "L-right"
    assert reranked[0].score == pytest.approx(0.70 + bonus(10_000))
    assert {hit.listing_id for hit in reranked} == {hit.listing_id for hit in hits}
    assert all(a.score >= b.score for a, b in zip(reranked, reranked[1:]))


def test_hits_beyond_top_n_are_kept_after(photos):
    target = photos["automatic-espresso-machine"]
    hits = [ListingHit("L1", 0.9, photos["MH01"]), ListingHit("L2", 0.8, target),
            ListingHit("L3", 0.7, photos["WS03"]), ListingHit("L4", 0.6, target)]
    reranked = LocalFeatureReranker().rerank(_cropped(_load(target)), hits, _load, top_n=2)
    assert [hit.listing_id for hit in reranked] == ["L2", "L1", "L3", "L4"]
    assert reranked[2:] == hits[2:]  # untouched, scores included


def test_unrelated_hits_keep_their_order(photos):
    hits = [ListingHit("L1", 0.9, photos["MH01"]), ListingHit("L2", 0.8, photos["WS03"])]
    query = Image.new("RGB", (400, 400), (40, 90, 200))
    assert LocalFeatureReranker().rerank(query, hits, _load) == hits


@pytest.mark.parametrize("query", [Image.new("RGB", (640, 480), "white"),
                                   Image.new("RGB", (3, 3), "red"), Image.new("L", (1, 1)),
                                   Image.new("RGBA", (50, 900), (0, 0, 0, 0))],
                         ids=["blank", "tiny", "one-pixel", "transparent"])
def test_degenerate_images_do_not_crash(photos, query):
    hits = [ListingHit("L1", 0.5, photos["MH01"]), ListingHit("L2", 0.4, "missing/photo.jpg")]
    reranked = LocalFeatureReranker().rerank(query, hits, _load)
    assert [hit.listing_id for hit in reranked] == ["L1", "L2"]
    blank = [ListingHit("L1", 0.5, "blank")]
    assert LocalFeatureReranker().rerank(
        _load(photos["MH01"]), blank, lambda _: Image.new("RGB", (2, 2))) == blank
    assert LocalFeatureReranker().rerank(query, [], _load) == []


def test_deterministic_and_cached(photos):
    target = photos["WS03"]
    query = _rotated(_load(target))
    hits = [ListingHit("L1", 0.9, photos["MH01"]), ListingHit("L2", 0.8, target),
            ListingHit("L3", 0.7, photos["tower-fan"])]
    reranker = LocalFeatureReranker(cache_size=2)
    first = reranker.rerank(query, hits, _load)
    assert len(reranker._cache) == 2  # least recently used photo evicted
    assert reranker.rerank(query, hits, _load) == first
    assert LocalFeatureReranker().rerank(query, hits, _load) == first


def test_warm_fills_cache_once(photos):
    paths = list(photos.values())
    calls: list[str] = []

    def counting_load(path: str) -> Image.Image:
        calls.append(path)
        return _load(path)

    reranker = LocalFeatureReranker()
    assert reranker.warm(paths + paths[:1], counting_load, workers=2) == len(paths)
    assert sorted(calls) == sorted(paths)
    assert reranker.warm(paths, counting_load) == 0
    query = _cropped(_load(paths[0]))
    hits = [ListingHit(f"L{i}", 0.5, path) for i, path in enumerate(paths)]
    reranker.rerank(query, hits, counting_load)
    # no features were computed again: the one photo loaded is the matched picture, whose
    # pixels the check for something pasted in front of it compares with the query's
    assert calls[len(paths):] == [paths[0]]
    assert reranker.warm(["missing.jpg"], _load, workers=1) == 1  # unreadable: cached empty


def test_every_photo_of_a_listing_can_be_verified(photos):
    """The query is a copy of the listing's second photo while the first stage liked its first:
    with ``photos_of`` the second photo is checked too, and becomes the hit's photo."""
    shown, copied = photos["MH01"], photos["automatic-espresso-machine"]
    query = _cropped(_load(copied))
    hits = [ListingHit("L-other", 0.90, photos["tower-fan"]), ListingHit("L-right", 0.80, shown)]
    plain = LocalFeatureReranker().rerank(query, hits, _load)
    assert [hit.listing_id for hit in plain] == ["L-other", "L-right"]
    verified = LocalFeatureReranker().rerank(
        query, hits, _load, photos_of=lambda lid: (shown, copied) if lid == "L-right" else ())
    assert verified[0].listing_id == "L-right" and verified[0].image == copied
    assert verified[0].score == pytest.approx(0.80 + bonus(10_000))


def test_deep_pass_finds_a_copy_far_down_the_list(photos):
    """A copy of the query's picture ranked beyond ``top_n`` is promoted by the deep pass; the
    other deep hits keep their order and scores."""
    target = photos["automatic-espresso-machine"]
    query = _cropped(_load(target))
    hits = [ListingHit("L1", 0.9, photos["MH01"]), ListingHit("L2", 0.8, photos["WS03"]),
            ListingHit("L3", 0.7, photos["tower-fan"]), ListingHit("L-right", 0.6, target),
            ListingHit("L5", 0.5, photos["MH01"])]
    shallow = LocalFeatureReranker().rerank(query, hits, _load, top_n=2)
    assert [hit.listing_id for hit in shallow] == ["L1", "L2", "L3", "L-right", "L5"]
    deep = LocalFeatureReranker().rerank(query, hits, _load, top_n=2, deep_n=4)
    assert [hit.listing_id for hit in deep] == ["L-right", "L1", "L2", "L3", "L5"]
    assert deep[0].score == pytest.approx(0.6 + bonus(10_000))
    assert deep[3:] == [hits[2], hits[4]]
    # beyond deep_n nothing is checked
    assert LocalFeatureReranker().rerank(query, hits, _load, top_n=2, deep_n=3) == shallow


def test_deep_pass_skipped_when_a_first_hit_is_the_picture(photos):
    target = photos["automatic-espresso-machine"]
    query = _cropped(_load(target))
    hits = [ListingHit("L-right", 0.8, target), ListingHit("L2", 0.7, photos["WS03"]),
            ListingHit("L-copy", 0.6, target)]
    reranked = LocalFeatureReranker().rerank(query, hits, _load, top_n=1, deep_n=3)
    assert [hit.listing_id for hit in reranked] == ["L-right", "L2", "L-copy"]
    assert reranked[1:] == hits[1:]


def _pasted_on(backdrop: Image.Image, product: Image.Image, share: float = 0.45) -> Image.Image:
    """``product`` shrunk to ``share`` of the backdrop's side and pasted near its middle."""
    out = backdrop.convert("RGB").resize((640, 640))
    side = int(640 * share)
    small = product.convert("RGB").resize((side, side))
    out.paste(small, (int(640 * 0.3), int(640 * 0.28)))
    return out


def test_the_product_in_front_beats_the_catalog_photo_behind_it(photos):
    # a seller photographs a watch in front of a poster of a garment listed in the catalog:
    # both are copies of catalog pictures, the garment fills the frame and wins the first stage
    backdrop, product = photos["MH01"], photos["WS03"]
    query = _pasted_on(_load(backdrop), _load(product))
    hits = [ListingHit("L-backdrop", 0.9, backdrop), ListingHit("L-product", 0.4, product),
            ListingHit("L-other", 0.5, photos["tower-fan"])]
    reranked = LocalFeatureReranker().rerank(query, hits, _load, top_n=3)
    assert [h.listing_id for h in reranked][0] == "L-product"
    scores = {h.listing_id: h.score for h in reranked}
    assert scores["L-product"] == pytest.approx(0.4 + 0.5)  # the whole bonus
    # the backdrop is seen, but it is not what the photo is of: it keeps no bonus
    assert scores["L-backdrop"] <= 0.9 + 1e-9


def test_pixels_confirm_a_copy_with_few_inliers(photos):
    # a small copy keeps few keypoints; the photometric check still calls it the same picture
    from retrieval.rerank import SAME_NCC, _grey, agreement, fit_homography, photo_view

    original = _load(photos["WS03"])
    small = original.convert("RGB").resize((150, 150))
    query = Image.new("RGB", (640, 640), (40, 90, 60))
    query.paste(small, (250, 260))
    count, homography = fit_homography(local_features(query), local_features(original))
    assert homography is not None
    view = photo_view(original)
    assert agreement(_grey(query), view, homography) >= SAME_NCC
    # another product is not confirmed through a forced fit
    other = photo_view(_load(photos["MH01"]))
    assert agreement(_grey(query), other, homography) < SAME_NCC
    hits = [ListingHit("L-other", 0.6, photos["MH01"]), ListingHit("L-copy", 0.3, photos["WS03"])]
    reranked = LocalFeatureReranker().rerank(query, hits, _load, top_n=2)
    assert reranked[0].listing_id == "L-copy" and reranked[0].score == pytest.approx(0.8)
    assert count > 0


def _zoomed_with(backdrop: Image.Image, product: Image.Image) -> Image.Image:
    """The middle 60 % of ``backdrop`` filling a 640 px frame (the picture runs past the frame's
    edges), ``product`` shrunk to 30 % of the side and pasted beside the backdrop's product."""
    picture = backdrop.convert("RGB")
    w, h = picture.size
    left, top = int(w * 0.2), int(h * 0.2)
    out = picture.crop((left, top, left + int(w * 0.6), top + int(h * 0.6))).resize((640, 640))
    small = product.convert("RGB")
    small.thumbnail((192, 192))
    out.paste(small, (397, 352))
    return out


def test_a_product_pasted_beside_the_picture_behind_it_wins(photos, monkeypatch):
    # a fan pasted on a zoomed-in garment picture, beside the garment: the garment's copy holds
    # most of the query's keypoints, so the fan's own copy gets too few to count on the whole
    # photo; matched on the region the garment's picture does not explain, it is confirmed
    import retrieval.rerank as rerank

    backdrop, product = photos["MH01"], photos["tower-fan"]
    query = _zoomed_with(_load(backdrop), _load(product))
    hits = [ListingHit("L-backdrop", 0.9, backdrop), ListingHit("L-product", 0.4, product),
            ListingHit("L-other", 0.5, photos["WS03"])]
    reranked = LocalFeatureReranker().rerank(query, hits, _load, top_n=3)
    scores = {h.listing_id: h.score for h in reranked}
    assert reranked[0].listing_id == "L-product"
    assert scores["L-product"] == pytest.approx(0.4 + 0.5)  # the whole bonus
    assert scores["L-backdrop"] == pytest.approx(0.9)  # seen, but not what the photo is of
    assert scores["L-other"] == pytest.approx(0.5)
    # without the search of the unexplained region the picture behind wins
    monkeypatch.setattr(rerank, "FRONT_N", 0)
    assert LocalFeatureReranker().rerank(query, hits, _load, top_n=3)[0].listing_id == "L-backdrop"


def test_unexplained_region_is_the_pasted_product(photos):
    from retrieval.rerank import _grey, fit_homography, photo_view, unexplained

    backdrop = _load(photos["MH01"])
    query = _zoomed_with(backdrop, _load(photos["tower-fan"]))
    query_grey = _grey(query)
    count, homography = fit_homography(local_features(query), local_features(backdrop))
    assert homography is not None and count > 30
    box = unexplained(query_grey, photo_view(backdrop), homography)
    assert box is not None
    x0, y0, x1, y1 = box  # px at 320 (half the 640 px query); the fan is at (397, 352) + <=192
    pasted = (397 / 2, 352 / 2, (397 + 192) / 2, (352 + 192) / 2)
    inter = max(0, min(x1, pasted[2]) - max(x0, pasted[0])) * max(0, min(y1, pasted[3]) -
                                                                   max(y0, pasted[1]))
    assert inter / ((x1 - x0) * (y1 - y0)) > 0.6  # the box lies mostly on the fan
    assert inter / ((pasted[2] - pasted[0]) * (pasted[3] - pasted[1])) > 0.3
    # an unaltered copy leaves nothing unexplained
    plain = backdrop.convert("RGB")
    count, homography = fit_homography(local_features(plain), local_features(backdrop))
    assert unexplained(_grey(plain), photo_view(backdrop), homography) is None


def test_a_caption_banner_promotes_nothing(photos):
    # the banner is a region the picture does not explain, but no catalog photo matches it
    source = photos["WS03"]
    query = _captioned(_load(source))
    hits = [ListingHit("L-other", 0.6, photos["MH01"]), ListingHit("L-source", 0.5, source),
            ListingHit("L-fan", 0.45, photos["tower-fan"])]
    reranked = LocalFeatureReranker().rerank(query, hits, _load, top_n=3)
    scores = {h.listing_id: h.score for h in reranked}
    assert reranked[0].listing_id == "L-source"
    assert scores["L-other"] == pytest.approx(0.6) and scores["L-fan"] == pytest.approx(0.45)


def _on_a_display(image: Image.Image, seed: str = "display") -> Image.Image:
    """The dev set's photo of a display showing ``image`` (moire, glare, perspective, bezel)."""
    import random

    from evals.make_dev_set import degrade_screen_photo

    shown, _ = degrade_screen_photo(image.convert("RGB"), random.Random(seed))
    return shown


def test_a_display_is_found_and_flattened(photos):
    import numpy as np

    from retrieval.embedders.descriptor import flatten_screen, working_rgb

    original = _load(photos["tower-fan"])
    flat = flatten_screen(working_rgb(_on_a_display(original)))
    assert flat is not None
    # the flattened content agrees with the picture shown, far better than with another one
    from retrieval.rerank import thumbnail, thumbnail_agreement

    shown = thumbnail(flat)
    assert thumbnail_agreement(shown, thumbnail(original)) > 0.85
    assert thumbnail_agreement(shown, thumbnail(_load(photos["MH01"]))) < 0.8
    # photos without a display are left alone
    for path in photos.values():
        assert flatten_screen(working_rgb(_load(path))) is None
    assert flatten_screen(np.full((200, 200, 3), 255, np.uint8)) is None


def test_a_smooth_product_shot_off_a_display_is_confirmed_as_a_whole(photos, monkeypatch):
    import retrieval.rerank as rerank

    source = photos["tower-fan"]
    query = _on_a_display(_load(source))
    hits = [ListingHit("L-espresso", 0.6, photos["automatic-espresso-machine"]),
            ListingHit("L-garment", 0.55, photos["MH01"]),
            ListingHit("L-source", 0.4, source), ListingHit("L-watch", 0.3, photos["WS03"])]
    reranked = LocalFeatureReranker().rerank(query, hits, _load, top_n=4)
    scores = {h.listing_id: h.score for h in reranked}
    assert reranked[0].listing_id == "L-source"
    assert scores["L-source"] == pytest.approx(0.4 + 0.5)  # the whole bonus
    for other, before in (("L-espresso", 0.6), ("L-garment", 0.55), ("L-watch", 0.3)):
        assert scores[other] == pytest.approx(before)
    # the comparison needs the bar: a photo agreeing less than SCREEN_NCC is not confirmed
    monkeypatch.setattr(rerank, "SCREEN_NCC", 1.01)
    reranked = LocalFeatureReranker().rerank(query, hits, _load, top_n=4)
    assert {h.listing_id: h.score for h in reranked}["L-source"] < 0.4 + 0.5


def _counting_fits(monkeypatch) -> list[int]:
    """Records every ``fit_homography`` computed, as the id of the catalog photo's features."""
    import retrieval.rerank as rerank

    computed: list[int] = []
    real = rerank.fit_homography
    monkeypatch.setattr(rerank, "fit_homography",
                        lambda query, candidate: computed.append(id(candidate)) or
                        real(query, candidate))
    return computed


def test_a_second_re_ranking_of_a_photo_reuses_its_fits(photos, monkeypatch):
    """A run with constraints re-ranks its photo twice over overlapping candidates: the
    second pass computes only the new photos' fits and answers what a fresh re-ranker
    would."""
    target = photos["automatic-espresso-machine"]
    query = _cropped(_load(target))
    first_hits = [ListingHit("L1", 0.9, photos["MH01"]), ListingHit("L2", 0.8, target),
                  ListingHit("L3", 0.7, photos["tower-fan"])]
    filtered = [first_hits[0], first_hits[1], ListingHit("L4", 0.6, photos["WS03"])]
    reranker = LocalFeatureReranker()
    reranker.warm(list(photos.values()), _load)
    computed = _counting_fits(monkeypatch)
    reranker.rerank(query, first_hits, _load)
    assert len(computed) == 3
    computed.clear()
    again = reranker.rerank(query.copy(), filtered, _load)  # same pixels, another object
    assert computed == [id(reranker.cached(photos["WS03"]))]  # only the new photo
    assert again == LocalFeatureReranker().rerank(query, filtered, _load)
    assert again[0].listing_id == "L2"


def test_fits_are_redone_when_a_photo_features_change(photos, monkeypatch):
    target = photos["WS03"]
    query = _rotated(_load(target))
    hits = [ListingHit("L1", 0.9, photos["MH01"]), ListingHit("L2", 0.8, target)]
    reranker = LocalFeatureReranker()
    first = reranker.rerank(query, hits, _load)
    # the catalog photo changed: its features recomputed (here: the same photo, a new object)
    reranker.preload([(target, local_features(_load(target)))])
    computed = _counting_fits(monkeypatch)
    assert reranker.rerank(query, hits, _load) == first
    assert computed == [id(reranker.cached(target))]


def test_recent_queries_are_bounded(photos):
    from retrieval.rerank import RECENT_QUERIES

    reranker = LocalFeatureReranker()
    hits = [ListingHit("L1", 0.9, photos["MH01"])]
    base = _load(photos["tower-fan"]).convert("RGB")
    for shade in range(RECENT_QUERIES + 3):
        query = base.copy()
        query.paste((shade * 20, 0, 0), (0, 0, 40, 40))
        reranker.rerank(query, hits, _load)
    assert len(reranker._recent) == RECENT_QUERIES


def test_fits_in_threads_answer_what_serial_fits_answer(photos, monkeypatch):
    """Candidates fitted ahead in a pool of threads give the answer of one fit after another
    (the deep pass included), whatever the machine's core count."""
    import retrieval.rerank as rerank

    target = photos["automatic-espresso-machine"]
    query = _captioned(_load(target))
    others = [photos["MH01"], photos["tower-fan"], photos["WS03"]]
    hits = [ListingHit(f"L{i}", 0.9 - 0.01 * i, others[i % 3]) for i in range(9)]
    hits.append(ListingHit("L-right", 0.5, target))  # past top_n: found by the deep pass
    answers = []
    with threadpool_limits(limits=1, user_api="blas"):  # as a service runs (see _fit_pool)
        for workers in (1, 3):
            monkeypatch.setattr(rerank, "FIT_WORKERS", workers)
            monkeypatch.setattr(rerank, "_pool", None)
            assert (rerank._fit_pool() is None) == (workers == 1)
            answers.append(LocalFeatureReranker().rerank(query, hits, _load, top_n=6,
                                                         deep_n=10))
    assert answers[0] == answers[1]
    assert answers[1][0].listing_id == "L-right"


def test_fits_run_in_threads_only_while_blas_has_one_thread(monkeypatch):
    """With several BLAS threads per product, fitting in threads on top of them is slower:
    candidates are then fitted one after another."""
    import retrieval.rerank as rerank

    monkeypatch.setattr(rerank, "FIT_WORKERS", 2)
    monkeypatch.setattr(rerank, "_pool", None)
    with threadpool_limits(limits=2, user_api="blas"):
        assert rerank._fit_pool() is None
    with threadpool_limits(limits=1, user_api="blas"):
        assert rerank._fit_pool() is not None


def test_concurrent_re_rankings_share_the_pool_and_caches(photos):
    """API workers re-rank at once on one re-ranker: its fitting threads, feature cache and
    memo are shared, and each answer is the one a lone re-ranker gives."""
    from concurrent.futures import ThreadPoolExecutor

    target = photos["automatic-espresso-machine"]
    queries = [_cropped(_load(target)), _rotated(_load(photos["WS03"])),
               _captioned(_load(photos["tower-fan"])), _cropped(_load(target))]
    hits = [ListingHit(f"L-{name}", 0.8 - 0.1 * i, path)
            for i, (name, path) in enumerate(sorted(photos.items()))]
    expected = [LocalFeatureReranker().rerank(query, hits, _load) for query in queries]
    shared = LocalFeatureReranker(cache_size=3)  # small: evictions while others read
    with threadpool_limits(limits=1, user_api="blas"), \
            ThreadPoolExecutor(len(queries)) as callers:
        for _ in range(2):
            answers = list(callers.map(lambda query: shared.rerank(query, hits, _load), queries))
            assert answers == expected
    assert [answer[0].image for answer in expected[:3]] == [target, photos["WS03"],
                                                            photos["tower-fan"]]
