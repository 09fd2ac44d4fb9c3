"""Re-ranking of image-search candidates by geometric verification of local features.

The first stage (a global descriptor, one vector per photo) finds the right neighbourhood but is
easily fooled: two products of the same colour look alike to it, and a heavily altered copy of a
catalog photo (cropped, rotated, captioned, re-encoded, photographed off a screen, cut out and
pasted on clutter) drifts away from its original. Local features answer a narrower question
that the descriptor cannot: *is this the same physical picture, or the same object, up to a
change of viewpoint?*

``LocalFeatureReranker`` does, for the first ``top_n`` candidates only:

1. **Local features.** Each photo is turned grey, shrunk so its longer side is ``SIDE`` px and
   contrast-normalised with CLAHE (so exposure, JPEG damage, glare and the product's colour matter
   less). SIFT keypoints (scale- and rotation-invariant) are detected, at most ``MAX_FEATURES``,
   and described with RootSIFT (Hellinger-normalised SIFT, which matches more reliably). A photo
   with fewer than ``FEW_KEYPOINTS`` is detected again with a lower contrast bar
   (``LOW_CONTRAST``), so smooth appliance renders still get features to match.
   Features of catalog photos are kept in an LRU cache, since the same photos come back query
   after query.
2. **Matching.** Each query feature's nearest catalog feature, kept when it passes Lowe's ratio
   test (``RATIO``) and the query feature is in turn its nearest neighbour (mutual).
3. **Geometric verification.** A homography is fitted with RANSAC (``RANSAC_PX`` reprojection
   error, in px of the ``SIDE`` px image); its inliers are the evidence. A homography covers
   crops, rotations, rescaling, perspective (screen photos) and copies pasted on a background;
   a back view of a garment, or another product, gives few inliers or a degenerate fit.
4. **Score.** ``score + WEIGHT * bonus`` where ``bonus = min(1, max(0, inliers - FLOOR) / SPAN)``.
   Below ``FLOOR`` inliers (what unrelated photos reach by chance) nothing is added, so candidates
   the features cannot judge keep the first stage's order among themselves; from ``FLOOR + SPAN``
   inliers on a candidate is promoted by the whole ``WEIGHT``, more than any gap in descriptor
   cosine between plausible candidates.

5. **Photometric confirmation.** A copy of a catalog photo shrunk on clutter or shot off a
   screen keeps few keypoints, so a true copy may fit with only 10-25 inliers, no more than a
   lookalike. Between ``FLOOR`` and ``SAME_PICTURE_INLIERS`` inliers the homography is therefore
   checked on the pixels themselves: the query is warped onto the candidate photo and the
   normalised cross-correlation (NCC) of the two contrast-normalised grey images is taken over
   the candidate's product pixels. A copy agrees almost everywhere (NCC 0.9 at the median on the
   dev set's altered copies); a chance fit or another view of the product does not (on 376 such
   candidates of the reserved photos, 1 reached ``SAME_NCC``). A confirmed candidate counts as
   the same picture (the whole ``WEIGHT``).
6. **What is in front.** A product pasted on a backdrop that is itself a catalog photo (a
   poster, another listing's picture) gives two same-picture matches of different products.
   Where their product regions overlap in the query, the query's pixels show only one of them:
   the candidate that agrees less with the query there (NCC lower by ``OCCLUSION_MARGIN``) is
   the hidden backdrop and loses its bonus.

7. **Something pasted beside, not over, the product behind.** A product pasted on a catalog
   picture that fills the frame (a poster, another listing's picture zoomed in) need not cover
   that picture's product: it may stand on its white backdrop. Its own copy then fits with few
   inliers, because the picture behind it holds most of the query's keypoints. So when a
   candidate is the same picture as the query, the largest region where that picture, carried
   into the query's frame, shows other pixels (``unexplained``: ``RESIDUAL_SHARE`` of the query)
   is cut out and matched on its own against the first ``FRONT_N`` candidates. A candidate
   confirmed there (as above: inliers, or fewer confirmed by the pixels) is a picture in front of
   the one the query was matched to: it gets the whole ``WEIGHT``, and the pictures behind lose
   theirs. A caption banner or a glare blob is such a region too, but it matches no catalog
   photo, so nothing changes.

8. **Photos of a display.** A catalog photo shot off a phone or monitor (moire bands, glare,
   a perspective) of a smooth product (a white appliance) may keep no feature that matches its
   original, so nothing above fires. When no candidate is the same picture and the query shows
   a display (``retrieval.embedders.descriptor.flatten_screen``: a dark bezel ringing a bright
   quadrilateral), the display's content is warped flat and compared as a whole with each
   candidate's photos: NCC of ``THUMB_SIDE`` px grey thumbnails, slightly blurred (the moire
   bands and the picture's fine detail go, its layout stays). The best one, and copies within
   ``SCREEN_MARGIN`` of it, count as the same picture when they reach ``SCREEN_NCC``. On the dev
   set's 25 screen photos the display is found in 24 (and in none of its other 342 photos), and
   wherever the product was among the candidates its photo agreed best.

Hits after the first ``top_n`` are returned unchanged after the re-ranked ones, except in the
**deep pass** (``deep_n``): when none of the first ``top_n`` is a copy of the query's picture,
hits up to ``deep_n`` are checked for one, and only a copy (``SAME_PICTURE_INLIERS``, a bar that
chance matches do not reach, or a photometrically confirmed fit) is promoted. A copy whose
global descriptor drifted far (a tight crop, heavy re-compression) is found this way; on the
dev set it fixed one crop and one JPEG case and changed no held-out view.

With the catalog's features cached a candidate photo costs about 0.5 ms (matching, most of
it the product of the two descriptor matrices, and RANSAC), so a hundred candidates of up to
``PHOTOS_PER_LISTING`` photos each can be verified per query; computing a photo's features
costs about 25 ms, which is why a service should ``warm`` the cache with the catalog's photos
when it starts. A query's candidates are fitted ahead in ``FIT_WORKERS`` threads while BLAS
runs one thread per call, as a service sets it (the matrix products and RANSAC release the GIL;
each fit is what it would be alone; see ``_fit_pool``), then read in order.
The features of the last ``RECENT_QUERIES`` query photos and their fits are kept too
(``_QueryMemo``): a run with constraints re-ranks its photo a second time, filtered, and then
computes only the fits of candidates the first pass did not see.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
from PIL import Image

from retrieval.images import on_white
from retrieval.index import ListingHit

SIDE = 320  # longer side of the grey image features are computed on, px
MAX_FEATURES = 500  # SIFT keypoints kept per photo, strongest first
RATIO = 0.8  # Lowe's ratio test: best match distance below this fraction of the second best
RANSAC_PX = 6.0  # homography reprojection tolerance, px at SIDE
MIN_MATCHES = 8  # fewer tentative matches: no homography is fitted
FLOOR = 8  # inliers reached by chance between unrelated photos; below it no bonus
SPAN = 22  # inliers above FLOOR for the full bonus
WEIGHT = 0.5  # the full bonus, in units of descriptor cosine
CACHE_SIZE = 4096  # photos whose features are kept
RECENT_QUERIES = 8  # query photos whose features and fits are kept (see ``_QueryMemo``)
# threads fitting a query's candidates (1: one after another): the cores this process may use
FIT_WORKERS = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else os.cpu_count() or 1)
PHOTOS_PER_LISTING = 4  # photos of one candidate listing checked at most
SAME_PICTURE_INLIERS = FLOOR + SPAN  # inliers from which two photos are one picture (full bonus)
DEEP_N = 400  # candidates checked for a copy of the same picture when none of the first is one
FEW_KEYPOINTS = 150  # a photo with fewer keypoints is described again at a lower contrast bar
LOW_CONTRAST, LOW_EDGE = 0.005, 20  # SIFT's contrast threshold (default 0.04) and edge limit (10)
SAME_NCC = 0.7  # pixel agreement (NCC over the product) from which a fit is the same picture
OCCLUSION_MARGIN = 0.2  # NCC by which the hidden one of two overlapping copies agrees less
MIN_OVERLAP = 0.05  # share of the smaller product region two copies must share to be compared
SAME_CONTENT_NCC = 0.5  # two matches this alike where they overlap are one picture, not layers
VIEW_CACHE_SIZE = 256  # catalog photos whose grey pixels and product mask are kept
FRONT_N = 20  # first candidates matched against a region the query's same picture leaves unexplained
RESIDUAL_BLUR = 3.0  # Gaussian sigma (px at SIDE) of the difference to a same-picture match
RESIDUAL_GREY = 40  # blurred grey difference (CLAHE levels) from which a pixel is unexplained
RESIDUAL_SHARE = (0.03, 0.5)  # share of the query an unexplained region covers to be searched
FRONT_PAD = 0.1  # margin around that region's box, as a share of its longer side
THUMB_SIDE = 48  # side of the grey thumbnail a display's content is compared on, px
THUMB_BLUR = 1.0  # Gaussian sigma (px of the thumbnail) before that comparison
SCREEN_NCC = 0.85  # thumbnail NCC from which a display shows the candidate's picture
SCREEN_MARGIN = 0.01  # NCC below the best within which another photo counts as a copy of it


@dataclass(frozen=True)
class LocalFeatures:
    points: np.ndarray  # (n, 2) float32 keypoint coordinates, px at SIDE
    descriptors: np.ndarray  # (n, 128) float32 RootSIFT
    thumbnail: np.ndarray | None = None  # (THUMB_SIDE, THUMB_SIDE) uint8 grey, whole photo


@runtime_checkable
class Reranker(Protocol):
    """Re-orders the first ``top_n`` of a first-stage hit list for a query photo."""

    name: str

    def rerank(self, query: Image.Image, hits: list[ListingHit],
               image_loader: Callable[[str], Image.Image], top_n: int = 30) -> list[ListingHit]:
        """New hits with re-ranked scores, sorted best first, then the hits beyond ``top_n``."""
        ...


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_blas: list[Any] | None = None  # threadpoolctl's handles on numpy's BLAS, found at first use


def _numpy_blas_threads() -> int:
    """Threads numpy's BLAS may use per call. Its wheels bundle their own copy (under
    ``numpy.libs``), which is the one the matching's products run on; other copies (SciPy's,
    OpenCV's) are set apart. Where none is found there, every BLAS loaded counts."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        libraries = ThreadpoolController().select(user_api="blas").lib_controllers
        _blas = [lib for lib in libraries if f"{os.sep}numpy" in lib.filepath] or libraries
    return max((lib.get_num_threads() or 1 for lib in _blas), default=1)


def _fit_pool() -> ThreadPoolExecutor | None:
    """The process's threads for fitting candidates (made at first use), or ``None`` (fit one
    after another): with one worker, and while numpy's BLAS may use several threads per call.
    A service's warm-up gives BLAS one thread per caller (``agents.run.limit_blas_threads``);
    without that, BLAS's own threads already share each product between the cores, and
    fitting in threads on top of them measured slower than one fit after another (547 against
    375 µs a fit on two cores, against 321 with one BLAS thread)."""
    global _pool
    if FIT_WORKERS <= 1:
        return None
    with _pool_lock:
        if _numpy_blas_threads() > 1:
            return None
        if _pool is None:
            _pool = ThreadPoolExecutor(FIT_WORKERS, thread_name_prefix="rerank-fit")
        return _pool


# a CLAHE object keeps per-call state: shared between threads (``warm``'s pool, API workers)
# it mixes their images up, so each thread has its own
_LOCAL = threading.local()


def _clahe() -> cv2.CLAHE:
    clahe = getattr(_LOCAL, "clahe", None)
    if clahe is None:
        clahe = _LOCAL.clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))
    return clahe


def _grey(image: Image.Image, side: int = SIDE) -> np.ndarray:
    """Grey, size-normalised, contrast-normalised pixels; transparency laid on white."""
    grey = np.asarray(on_white(image).convert("L"))
    scale = side / max(grey.shape)
    if scale != 1:
        size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        grey = cv2.resize(grey, size, interpolation=interpolation)
    return _clahe().apply(np.ascontiguousarray(grey))


def sift_keypoints(image: Image.Image, side: int = SIDE,
                   max_features: int = MAX_FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """SIFT keypoint coordinates ``(n, 2)`` and raw SIFT descriptors ``(n, 128)`` of one photo
    (float32; OpenCV's SIFT values are whole numbers 0-255, so they keep exactly as ``uint8``)."""
    return _sift_of_grey(_grey(image, side), max_features)


def _sift_of_grey(grey: np.ndarray, max_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``sift_keypoints`` on the grey pixels ``_grey`` gave."""
    empty = (np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32))
    if min(grey.shape) < 16:
        return empty
    sift = cv2.SIFT_create(nfeatures=max_features)
    keypoints, descriptors = sift.detectAndCompute(grey, None)
    if len(keypoints) < FEW_KEYPOINTS:
        # a smooth render (a white appliance on white) has few corners at SIFT's usual contrast
        # bar; its faint shading and outline still hold enough to match another copy
        sift = cv2.SIFT_create(nfeatures=max_features, contrastThreshold=LOW_CONTRAST,
                               edgeThreshold=LOW_EDGE)
        keypoints, descriptors = sift.detectAndCompute(grey, None)
    if descriptors is None or not keypoints:
        return empty
    return np.array([kp.pt for kp in keypoints], dtype=np.float32), descriptors


def root_sift(descriptors: np.ndarray) -> np.ndarray:
    """RootSIFT (Hellinger-normalised) descriptors from raw SIFT descriptors."""
    descriptors = np.asarray(descriptors, dtype=np.float32)
    if descriptors.shape[0] == 0:
        return np.zeros((0, 128), np.float32)
    descriptors = descriptors / np.maximum(descriptors.sum(axis=1, keepdims=True), 1e-7)
    return np.sqrt(descriptors).astype(np.float32)


def local_features(image: Image.Image, side: int = SIDE,
                   max_features: int = MAX_FEATURES) -> LocalFeatures:
    """SIFT keypoints and RootSIFT descriptors of one photo (see the module docstring), computed
    with its longer side at ``side`` px (coordinates are in px of that size), and its
    thumbnail."""
    points, descriptors = _sift_of_grey(_grey(image, side), max_features)
    return LocalFeatures(points, root_sift(descriptors), thumbnail(image))


def thumbnail(image: Image.Image | np.ndarray) -> np.ndarray:
    """The whole photo (a PIL image, or RGB pixels) as ``THUMB_SIDE`` px square grey
    ``uint8`` (the aspect is not kept: a display's flattened content is squeezed alike)."""
    if isinstance(image, Image.Image):
        grey = np.asarray(on_white(image).convert("L"))
    else:
        grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)


def thumbnail_agreement(first: np.ndarray, second: np.ndarray) -> float:
    """NCC of two thumbnails, each blurred by ``THUMB_BLUR``."""
    a, b = (cv2.GaussianBlur(t.astype(np.float32), (0, 0), THUMB_BLUR) for t in (first, second))
    return ncc(a.ravel(), b.ravel())


def _features_of_grey(grey: np.ndarray, max_features: int = MAX_FEATURES) -> LocalFeatures:
    points, descriptors = _sift_of_grey(grey, max_features)
    return LocalFeatures(points, root_sift(descriptors))


def matches(query: LocalFeatures, candidate: LocalFeatures) -> tuple[np.ndarray, np.ndarray]:
    """Indices (into query, into candidate) of mutual nearest neighbours passing the ratio test.

    The candidate needs two features at least (``fit_homography`` asks for ``MIN_MATCHES``).
    Each query feature's second best is the row's maximum once its best is masked out (the
    value a partial sort of the row would give, a tie with the best included), and only the
    features that pass the ratio test are checked for being their best's best too (the
    argmax of just those columns): the same matches as sorting every row and taking every
    column's argmax, in about half the time (0.87 -> 0.47 ms a candidate photo at the median,
    on pairs recorded from reserved-photo runs, about 370 x 310 features, one BLAS thread)."""
    similarity = query.descriptors @ candidate.descriptors.T  # cosines of unit vectors
    best = similarity.argmax(axis=1)
    rows = np.arange(len(best))
    first = similarity[rows, best]
    similarity[rows, best] = -np.inf  # the product is ours to change; put back below
    second = similarity.max(axis=1)
    similarity[rows, best] = first
    # Euclidean distance of unit vectors is sqrt(2 - 2 cos)
    passing = np.flatnonzero(np.sqrt(np.maximum(2 - 2 * first, 0))
                             < RATIO * np.sqrt(np.maximum(2 - 2 * second, 0)))
    mutual = similarity[:, best[passing]].argmax(axis=0) == passing
    keep = passing[mutual]
    return keep, best[keep]


def fit_homography(query: LocalFeatures,
                   candidate: LocalFeatures) -> tuple[int, np.ndarray | None]:
    """Homography inliers among mutual ratio-test matches between two photos, and the
    homography (query px -> candidate px, both at ``SIDE``); ``(0, None)`` when none fits."""
    if len(query.points) < MIN_MATCHES or len(candidate.points) < MIN_MATCHES:
        return 0, None
    i, j = matches(query, candidate)
    if len(i) <= max(MIN_MATCHES, FLOOR):  # too few to reach the bonus
        return 0, None
    cv2.setRNGSeed(0)
    homography, mask = cv2.findHomography(query.points[i], candidate.points[j], cv2.RHO,
                                          RANSAC_PX, maxIters=500, confidence=0.995)
    if homography is None or mask is None:
        return 0, None
    return int(mask.sum()), homography


def inliers(query: LocalFeatures, candidate: LocalFeatures) -> int:
    """Homography inliers among mutual ratio-test matches between two photos."""
    return fit_homography(query, candidate)[0]


@dataclass(frozen=True)
class PhotoView:
    """A catalog photo as the photometric checks see it: the grey pixels features are computed
    on (``SIDE`` px, CLAHE) and the product mask (``foreground_mask`` of the descriptor)."""

    grey: np.ndarray
    mask: np.ndarray


def photo_view(image: Image.Image) -> PhotoView:
    from retrieval.embedders.descriptor import foreground_mask

    grey = _grey(image)
    rgb = np.asarray(image.convert("RGB").resize((grey.shape[1], grey.shape[0]),
                                                 Image.Resampling.BILINEAR))
    return PhotoView(grey, foreground_mask(np.ascontiguousarray(rgb)))


def ncc(first: np.ndarray, second: np.ndarray) -> float:
    """Normalised cross-correlation of two equally long pixel arrays (0 when one is flat)."""
    a = first.astype(np.float32) - first.mean()
    b = second.astype(np.float32) - second.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 0 else 0.0


def agreement(query_grey: np.ndarray, view: PhotoView, homography: np.ndarray) -> float:
    """NCC of the query warped onto the candidate photo, over the candidate's product pixels
    that the query covers; 0 when it covers too little of the product to judge."""
    height, width = view.grey.shape
    warped = cv2.warpPerspective(query_grey, homography, (width, height), flags=cv2.INTER_LINEAR)
    covered = cv2.warpPerspective(np.ones_like(query_grey), homography, (width, height),
                                  flags=cv2.INTER_NEAREST) > 0
    judged = covered & view.mask
    if judged.sum() < max(200, 0.1 * view.mask.sum()):
        return 0.0
    return ncc(view.grey[judged], warped[judged])


def _in_query(view: PhotoView, homography: np.ndarray,
              shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The candidate's grey pixels and product mask carried into the query's frame."""
    size = (shape[1], shape[0])
    flags = cv2.WARP_INVERSE_MAP  # the homography maps query px to candidate px
    grey = cv2.warpPerspective(view.grey, homography, size, flags=cv2.INTER_LINEAR | flags)
    mask = cv2.warpPerspective(view.mask.astype(np.uint8), homography, size,
                               flags=cv2.INTER_NEAREST | flags) > 0
    return grey, mask


def hidden(query_grey: np.ndarray, views: Sequence[tuple[PhotoView, np.ndarray]],
           confirmed: Sequence[bool]) -> set[int]:
    """Indices of geometric matches hidden behind a confirmed same-picture match (see the
    module docstring): where their product regions overlap in the query and show different
    things (matches that look alike there are copies of one picture), the one the query's
    pixels agree less with (by ``OCCLUSION_MARGIN``) is the backdrop. A backdrop is often not
    confirmed itself (the product in front spoils its agreement), so every match is judged
    against every confirmed one. Copies of a hidden picture (regions that mostly overlap it and
    agree with the query there as well as it does) are hidden too, though they may not reach
    the product in front (a trader's tighter crop of the backdrop)."""
    carried = [_in_query(view, homography, query_grey.shape) for view, homography in views]
    out: set[int] = set()

    def compare(a: int, b: int, share: float, layered: bool) -> tuple[float, float] | None:
        (grey_a, mask_a), (grey_b, mask_b) = carried[a], carried[b]
        overlap = mask_a & mask_b
        if overlap.sum() < max(100, share * min(mask_a.sum(), mask_b.sum())):
            return None
        alike = ncc(grey_a[overlap], grey_b[overlap]) >= SAME_CONTENT_NCC
        if alike == layered:
            # layers must show different things there; copies of one picture the same things
            return None
        return (ncc(query_grey[overlap], grey_a[overlap]),
                ncc(query_grey[overlap], grey_b[overlap]))

    for a in range(len(carried)):
        for b in range(len(carried)):
            if a != b and confirmed[b] and a not in out:
                scores = compare(a, b, MIN_OVERLAP, layered=True)
                if scores is not None and scores[1] - scores[0] > OCCLUSION_MARGIN:
                    out.add(a)
    for c in range(len(carried)):
        for x in sorted(out):
            if c in out:
                break
            scores = compare(c, x, 0.5, layered=False)
            if scores is not None and abs(scores[0] - scores[1]) <= OCCLUSION_MARGIN:
                out.add(c)
    return out


def unexplained(query_grey: np.ndarray, view: PhotoView,
                homography: np.ndarray) -> tuple[int, int, int, int] | None:
    """The box ``(x0, y0, x1, y1)`` (px of ``query_grey``) of the largest region where a
    same-picture match, carried into the query's frame, covers the query but shows other
    pixels; ``None`` when that region covers less or more than ``RESIDUAL_SHARE`` of the query.
    Thin seams (the picture's edge, JPEG ringing) are opened away."""
    size = (query_grey.shape[1], query_grey.shape[0])
    inverse = cv2.WARP_INVERSE_MAP  # the homography maps query px to candidate px
    picture = cv2.warpPerspective(view.grey, homography, size, flags=cv2.INTER_LINEAR | inverse)
    covered = cv2.warpPerspective(np.ones_like(view.grey), homography, size,
                                  flags=cv2.INTER_NEAREST | inverse) > 0
    difference = cv2.GaussianBlur(cv2.absdiff(query_grey, picture).astype(np.float32), (0, 0),
                                  RESIDUAL_BLUR)
    off = ((difference > RESIDUAL_GREY) & covered).astype(np.uint8)
    off = cv2.morphologyEx(off, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(off, connectivity=8)
    if count <= 1:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, width, height, area = (int(v) for v in stats[largest])
    if not RESIDUAL_SHARE[0] <= area / off.size <= RESIDUAL_SHARE[1]:
        return None
    return x, y, x + width, y + height


def _box_in(image: Image.Image, box: tuple[int, int, int, int],
            shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` (px of an image of ``shape``, rows x columns) in ``image``'s own px, widened by
    ``FRONT_PAD`` of its longer side and kept inside the image."""
    scale_x, scale_y = image.width / shape[1], image.height / shape[0]
    x0, y0, x1, y1 = box
    pad = FRONT_PAD * max(x1 - x0, y1 - y0)
    return (max(0, round((x0 - pad) * scale_x)), max(0, round((y0 - pad) * scale_y)),
            min(image.width, round((x1 + pad) * scale_x)),
            min(image.height, round((y1 + pad) * scale_y)))


def bonus(count: int) -> float:
    """The score added for ``count`` inliers, 0 to WEIGHT (see the module docstring)."""
    return WEIGHT * min(1.0, max(0, count - FLOOR) / SPAN)


_MISSING = object()


class _Lru:
    """A small least-recently-used map, safe to share between threads: the re-ranker's caches
    of catalog features, catalog photo views and recent query photos."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Any) -> bool:
        return key in self._items

    def peek(self, key: Any) -> Any:
        """The value, or ``None``; the order is not touched."""
        return self._items.get(key)

    def get(self, key: Any, default: Any = None) -> Any:
        """The value (now the most recently used), or ``default``."""
        with self._lock:
            value = self._items.get(key, _MISSING)
            if value is _MISSING:
                return default
            self._items.move_to_end(key)
            return value

    def put(self, key: Any, value: Any, replace: bool = True) -> Any:
        """Store ``value`` (``replace=False``: keep a value stored meanwhile) and return what
        is stored; the least recently used beyond ``size`` are dropped."""
        with self._lock:
            if replace or key not in self._items:
                self._items[key] = value
            self._items.move_to_end(key)
            value = self._items[key]
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return value


@dataclass
class _QueryMemo:
    """What re-ranking one query photo computed that a second re-ranking of it can reuse: its
    features, and each catalog photo's fit against them (``fit_homography`` is a pure function
    of the two photos' features). A run with constraints re-ranks its photo twice (unfiltered
    at intake, filtered at supplier match) over largely the same candidates: on ten of the dev
    set's constraint cases 42 % of the fits were repeats. A fit is reused only while the
    catalog photo's cached features are the very object it was computed from (a weak
    reference: the memo never keeps evicted features alive), so features recomputed for a
    changed photo are fitted afresh."""

    features: LocalFeatures
    fits: dict[str, tuple[weakref.ref, int, np.ndarray | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Fit:
    """A candidate the features fitted: where it sits in the re-scored list, the photo and
    homography that fitted, the bonus it got, and whether it counts as the same picture."""

    position: int
    photo: str
    homography: np.ndarray
    gained: float
    same: bool


def _photos(hit: ListingHit, photos_of: Callable[[str], Sequence[str]] | None) -> list[str]:
    """The photos of a candidate verified: its best first-stage photo first, then its listing's
    others, ``PHOTOS_PER_LISTING`` at most."""
    photos = [hit.image]
    if photos_of is not None:
        photos += [p for p in photos_of(hit.listing_id) if p != hit.image]
    return photos[:PHOTOS_PER_LISTING]


def _promote(rescored: list[ListingHit], fits: Sequence[_Fit],
             chosen: Iterable[tuple[int, str]]) -> None:
    """Give the candidates at these positions the whole ``WEIGHT`` in place of the bonus their
    fit on the whole photo earned, shown by the photo that proved them the same picture."""
    gained = {fit.position: fit.gained for fit in fits}
    for position, photo in chosen:
        hit = rescored[position]
        rescored[position] = ListingHit(hit.listing_id,
                                        hit.score - gained.get(position, 0.0) + WEIGHT, photo)


class LocalFeatureReranker:
    """Geometric verification of the first candidates; see the module docstring."""

    name = "sift-homography-ncc-v2"

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self.cache_size = cache_size
        # shared by the fitting threads (``_fit_ahead``) and by concurrent requests
        self._cache = _Lru(cache_size)  # path -> LocalFeatures
        self._views = _Lru(VIEW_CACHE_SIZE)  # path -> PhotoView, None when unreadable
        self._recent = _Lru(RECENT_QUERIES)  # query photo key -> _QueryMemo
        # catalog features beyond the cache, read before computing (``attach``)
        self._backing: Callable[[str], LocalFeatures | None] | None = None

    def _memo_of(self, query_grey: np.ndarray) -> _QueryMemo:
        """The memo of a query photo, keyed by its grey pixels (``_grey``, which its features
        are computed from), made with its features when it is not among the recent ones."""
        key = (query_grey.shape, hashlib.blake2b(query_grey.tobytes(), digest_size=16).digest())
        memo = self._recent.get(key)
        if memo is None:
            memo = self._recent.put(key, _QueryMemo(_features_of_grey(query_grey)), replace=False)
        return memo

    def _fit(self, features: LocalFeatures, photo: str,
             image_loader: Callable[[str], Image.Image],
             memo: _QueryMemo | None = None) -> tuple[int, np.ndarray | None]:
        """``fit_homography`` of the query's ``features`` against a catalog photo's. With the
        query's ``memo`` (``features`` are then ``memo.features``) a fit computed before, by
        this re-ranking or an earlier one of the same photo, is reused."""
        candidate = self._features_of(photo, image_loader)
        if memo is None:
            return fit_homography(features, candidate)
        known = memo.fits.get(photo)
        if known is not None and known[0]() is candidate:
            return known[1], known[2]
        count, homography = fit_homography(features, candidate)
        memo.fits[photo] = (weakref.ref(candidate), count, homography)
        return count, homography

    def _view_of(self, path: str, image_loader: Callable[[str], Image.Image]) -> PhotoView | None:
        """Grey pixels and product mask of a catalog photo (small LRU cache); ``None`` when the
        photo cannot be read."""
        view = self._views.get(path, _MISSING)
        if view is not _MISSING:
            return view
        try:
            view = photo_view(image_loader(path))
        except (OSError, ValueError):
            view = None
        return self._views.put(path, view)

    def _confirmed(self, query_grey: np.ndarray, count: int, homography: np.ndarray | None,
                   photo: str, image_loader: Callable[[str], Image.Image]) -> bool:
        """Whether a fit is the same picture: enough inliers, or fewer confirmed by the pixels."""
        if count >= SAME_PICTURE_INLIERS:
            return True
        if count <= FLOOR or homography is None:
            return False
        view = self._view_of(photo, image_loader)
        return view is not None and agreement(query_grey, view, homography) >= SAME_NCC

    @staticmethod
    def _compute(path: str, image_loader: Callable[[str], Image.Image]) -> LocalFeatures:
        try:
            return local_features(image_loader(path))
        except (OSError, ValueError):  # an unreadable photo cannot be verified
            return LocalFeatures(np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32))

    def _store(self, path: str, features: LocalFeatures) -> None:
        self._cache.put(path, features)

    def _features_of(self, path: str, image_loader: Callable[[str], Image.Image]) -> LocalFeatures:
        cached = self._cache.get(path)
        if cached is not None:
            return cached
        backing = self._backing
        features = backing(path) if backing is not None else None
        if features is None:  # outside the lock: 25 ms, threads share it
            features = self._compute(path, image_loader)
        self._store(path, features)
        return features

    def attach(self, backing: Callable[[str], LocalFeatures | None] | None) -> None:
        """Read a catalog photo's features from ``backing`` (``path -> features or None``;
        ``retrieval.feature_store.StoredFeatures.features``) when the cache lacks them, before
        computing them: a catalog larger than the cache keeps its features on disk."""
        self._backing = backing

    def same_picture(self, first: str, second: str,
                     image_loader: Callable[[str], Image.Image]) -> bool:
        """Whether two catalog photos show the same picture (one a crop, re-encoding, watermark
        or caption of the other): at least ``SAME_PICTURE_INLIERS`` homography inliers."""
        return inliers(self._features_of(first, image_loader),
                       self._features_of(second, image_loader)) >= SAME_PICTURE_INLIERS

    def cached(self, path: str) -> LocalFeatures | None:
        """The cached features of a catalog photo, or ``None`` (the LRU order is not touched)."""
        return self._cache.peek(path)

    def preload(self, features: Iterable[tuple[str, LocalFeatures]]) -> int:
        """Put features computed elsewhere (``retrieval.feature_store``) into the cache;
        returns how many were stored."""
        count = 0
        for path, item in features:
            self._store(path, item)
            count += 1
        return count

    def warm(self, image_paths: Iterable[str], image_loader: Callable[[str], Image.Image],
             workers: int | None = None) -> int:
        """Compute and cache the features of catalog photos ahead of queries (at start-up).

        Photos already cached are skipped; OpenCV releases the GIL, so ``workers`` threads (by
        default the CPU count, at most 8) share the work. Beyond ``cache_size`` photos only the
        last ones stay cached. Returns how many photos were computed.
        """
        todo = list(dict.fromkeys(path for path in image_paths if path not in self._cache))
        if not todo:
            return 0
        workers = workers or min(8, os.cpu_count() or 1)
        if workers <= 1:
            computed = [self._compute(path, image_loader) for path in todo]
        else:
            with ThreadPoolExecutor(workers) as pool:
                computed = list(pool.map(lambda path: self._compute(path, image_loader), todo))
        for path, features in zip(todo, computed):
            self._store(path, features)
        return len(todo)

    def _fit_ahead(self, memo: _QueryMemo, photos: Iterable[str],
                   image_loader: Callable[[str], Image.Image]) -> None:
        """Fit the query (``memo``) to these catalog photos in ``FIT_WORKERS`` threads, into
        the memo, where the pass over the candidates then finds them. The matrix products and
        RANSAC release the GIL, so two free cores take about a third off a run's re-ranking
        (``make bench``: intake 405-445 -> 280-317 ms at p50); each fit is what it would be
        alone (RANSAC is seeded in the thread that runs it), so the order they are computed
        in changes nothing."""
        pool = _fit_pool()
        todo = [photo for photo in dict.fromkeys(photos) if photo not in memo.fits]
        if pool is None or len(todo) < 2:
            return
        size = -(-len(todo) // (4 * FIT_WORKERS))  # a few chunks a thread: even, few hand-offs
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]

        def fit(chunk: list[str]) -> None:
            for photo in chunk:
                self._fit(memo.features, photo, image_loader, memo)

        for _ in pool.map(fit, chunks):  # re-raises what a thread raised
            pass

    def _best_fit(self, features: LocalFeatures, hit: ListingHit,
                  image_loader: Callable[[str], Image.Image],
                  photos_of: Callable[[str], Sequence[str]] | None,
                  memo: _QueryMemo | None = None) -> tuple[int, np.ndarray | None, str]:
        """The inliers, homography and photo of the candidate's best fitting photo (its
        best first-stage photo first, then up to ``PHOTOS_PER_LISTING`` in all)."""
        best_count, best_fit, best_photo = -1, None, hit.image
        for photo in _photos(hit, photos_of):
            count, fit = self._fit(features, photo, image_loader, memo)
            if count > best_count:
                best_count, best_fit, best_photo = count, fit, photo
        return best_count, best_fit, best_photo

    def _in_front(self, query: Image.Image, query_grey: np.ndarray, fits: Sequence[_Fit],
                  rescored: Sequence[ListingHit], image_loader: Callable[[str], Image.Image],
                  photos_of: Callable[[str], Sequence[str]] | None) -> list[tuple[int, str]]:
        """Candidates (position, the photo that fitted) confirmed in the region the best
        same-picture match leaves unexplained (see the module docstring, 7)."""
        same = [fit for fit in fits if fit.same]
        if not same:
            return []
        behind = max(same, key=lambda fit: (rescored[fit.position].score, -fit.position))
        view = self._view_of(behind.photo, image_loader)
        box = None if view is None else unexplained(query_grey, view, behind.homography)
        if box is None:
            return []
        region = _grey(query.crop(_box_in(query, box, query_grey.shape)))
        features = _features_of_grey(region)
        skipped = {fit.position for fit in same}
        front = []
        for position, hit in enumerate(rescored[:FRONT_N]):
            if position in skipped:
                continue
            count, fit, photo = self._best_fit(features, hit, image_loader, photos_of)
            if self._confirmed(region, count, fit, photo, image_loader):
                front.append((position, photo))
        return front

    def _on_display(self, query: Image.Image, head: Sequence[ListingHit],
                    image_loader: Callable[[str], Image.Image],
                    photos_of: Callable[[str], Sequence[str]] | None) -> list[tuple[int, str]]:
        """Candidates (position, photo) whose picture the display in the query shows (see the
        module docstring, 8); none when the query shows no display."""
        from retrieval.embedders.descriptor import flatten_screen, working_rgb

        flat = flatten_screen(working_rgb(query))
        if flat is None:
            return []
        shown = thumbnail(flat)
        scored = []  # (agreement, position, photo): each candidate's best photo
        for position, hit in enumerate(head):
            best = max(((thumbnail_agreement(shown, own), photo)
                        for photo in _photos(hit, photos_of)
                        if (own := self._features_of(photo, image_loader).thumbnail) is not None),
                       default=None)
            if best is not None:
                scored.append((best[0], position, best[1]))
        if not scored:
            return []
        bar = max(SCREEN_NCC, max(score for score, _, _ in scored) - SCREEN_MARGIN)
        return [(position, photo) for score, position, photo in scored if score >= bar]

    def rerank(self, query: Image.Image, hits: list[ListingHit],
               image_loader: Callable[[str], Image.Image], top_n: int = 30,
               photos_of: Callable[[str], Sequence[str]] | None = None,
               deep_n: int = 0) -> list[ListingHit]:
        """``photos_of(listing_id)``, when given, lets each candidate be verified on up to
        ``PHOTOS_PER_LISTING`` of its photos (its best first-stage photo first): the query may
        be a copy of another photo of the listing than the one the descriptor liked best.

        ``deep_n`` (above ``top_n``): when none of the first ``top_n`` candidates is a copy of
        the query's picture (``SAME_PICTURE_INLIERS``, or fewer inliers confirmed by the
        pixels), hits ``top_n`` to ``deep_n`` are checked for one too, and only such copies are
        promoted (by the whole ``WEIGHT``); the others keep their place. A heavily altered copy
        whose global descriptor drifted far down the list is found this way, while the bar of a
        whole picture keeps chance matches among the many extra candidates out.

        Last, a picture pasted in front of a same-picture match, beside its product
        (``_in_front``) or over it (``hidden``), takes the bonus from the picture behind."""
        head, tail = hits[:top_n], hits[top_n:]
        if not head:
            return list(hits)
        query_grey = _grey(query)  # once: the features and the pixel checks both read it
        memo = self._memo_of(query_grey)  # its features, and fits a re-ranking before computed
        query_features = memo.features
        self._fit_ahead(memo, (photo for hit in head for photo in _photos(hit, photos_of)),
                        image_loader)
        rescored: list[ListingHit] = []
        fits: list[_Fit] = []
        for hit in head:
            best_count, best_fit, best_photo = self._best_fit(query_features, hit, image_loader,
                                                              photos_of, memo)
            same = self._confirmed(query_grey, best_count, best_fit, best_photo, image_loader)
            gained = WEIGHT if same else bonus(best_count)
            if gained > 0 and best_fit is not None:
                fits.append(_Fit(len(rescored), best_photo, best_fit, gained, same))
            rescored.append(ListingHit(hit.listing_id, hit.score + gained,
                                       best_photo if gained > 0 else hit.image))
        if deep_n > top_n and not any(fit.same for fit in fits):
            self._fit_ahead(memo, (hit.image for hit in tail[:deep_n - top_n]), image_loader)
            rest = []
            for hit in tail[:deep_n - top_n]:
                count, fit = self._fit(query_features, hit.image, image_loader, memo)
                if self._confirmed(query_grey, count, fit, hit.image, image_loader):
                    fits.append(_Fit(len(rescored), hit.image, fit, WEIGHT, True))
                    rescored.append(ListingHit(hit.listing_id, hit.score + WEIGHT, hit.image))
                else:
                    rest.append(hit)
            tail = rest + tail[deep_n - top_n:]
        front: list[tuple[int, str]] = []
        if not any(fit.same for fit in fits):  # perhaps a display showing a candidate's picture
            _promote(rescored, fits, self._on_display(query, head, image_loader, photos_of))
        else:
            front = self._in_front(query, query_grey, fits, rescored, image_loader, photos_of)
        if front:  # pictures pasted in front of the query's same-picture matches
            for fit in fits:
                if fit.same:  # a backdrop keeps its first-stage score, not the bonus
                    hit = rescored[fit.position]
                    rescored[fit.position] = ListingHit(hit.listing_id, hit.score - fit.gained,
                                                        hit.image)
            _promote(rescored, fits, front)
        elif any(fit.same for fit in fits) and len(fits) > 1:
            judged = [(fit, self._view_of(fit.photo, image_loader)) for fit in fits]
            judged = [(fit, view) for fit, view in judged if view is not None]
            behind = hidden(query_grey, [(view, fit.homography) for fit, view in judged],
                            [fit.same for fit, _ in judged])
            for j in behind:  # a backdrop keeps its first-stage score, not the bonus
                fit = judged[j][0]
                hit = rescored[fit.position]
                rescored[fit.position] = ListingHit(hit.listing_id, hit.score - fit.gained,
                                                    hit.image)
        order = sorted(range(len(rescored)), key=lambda i: (-rescored[i].score, i))
        return [rescored[i] for i in order] + list(tail)
