"""Local features of catalog photos kept on disk, so that a service starts with a warm re-ranker.

The re-ranker (:mod:`retrieval.rerank`) verifies candidates with SIFT features of their catalog
photos. Computing them costs about 25 ms a photo; left to the first queries, those queries take
seconds. :func:`warm_reranker` fills the re-ranker's cache at start-up from a features file and
computes (in threads) only the photos the file does not hold or holds for another version of the
photo, then rewrites the file.

The file (``.npz``, no pickles) holds the raw SIFT descriptors as ``uint8`` (OpenCV's SIFT values
are whole numbers 0-255), the keypoint coordinates as ``float32`` and each photo's grey thumbnail
(``THUMB_SIDE`` px, ``uint8``: what a photo of a display is compared with); RootSIFT is recomputed on
load with the same operations as :func:`retrieval.rerank.local_features`, so the loaded features
are bit-identical to freshly computed ones. Each photo is keyed by its path and a stamp of its
file (size and modification time); the file as a whole by the features' recipe (re-ranker name,
image side, keypoints per photo, thumbnail side), so a changed recipe recomputes everything.
About 9 kB a photo on the demo catalog (1,625 photos: 15 MB).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from retrieval.rerank import (
    FEW_KEYPOINTS,
    LOW_CONTRAST,
    LOW_EDGE,
    MAX_FEATURES,
    SIDE,
    THUMB_SIDE,
    LocalFeatures,
    root_sift,
    sift_keypoints,
    thumbnail,
)

# keypoint coordinates (n, 2) float32, SIFT (n, 128) uint8, thumbnail (THUMB_SIDE,) * 2 uint8
Raw = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class WarmReport:
    """What :func:`warm_reranker` did: photos read from the file, computed, and whether the
    file was (re)written."""

    loaded: int
    computed: int
    written: bool


def recipe(reranker_name: str) -> str:
    """What the stored features depend on besides the photo itself."""
    return (f"{reranker_name};side={SIDE};max_features={MAX_FEATURES};"
            f"few={FEW_KEYPOINTS}:{LOW_CONTRAST}:{LOW_EDGE};thumb={THUMB_SIDE};sift-uint8-v2")


def file_stamp(path: Path) -> str:
    """A cheap version stamp of a photo file: size and modification time (ns)."""
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def read_features(path: Path, expected_recipe: str) -> dict[str, tuple[str, Raw]]:
    """Photo path -> (stamp, raw features) from a features file; empty when the file is missing,
    unreadable or made with another recipe."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["recipe"]) != expected_recipe:
                return {}
            paths, stamps = data["paths"].tolist(), data["stamps"].tolist()
            counts = data["counts"].astype(np.int64)
            points, descriptors = data["points"], data["descriptors"]
            thumbnails = data["thumbnails"]
    except (OSError, KeyError, ValueError):
        return {}
    ends = np.cumsum(counts)
    starts = ends - counts
    return {name: (stamp, (points[a:b], descriptors[a:b], thumbnails[i]))
            for i, (name, stamp, a, b) in enumerate(zip(paths, stamps, starts.tolist(),
                                                        ends.tolist()))}


def write_features(path: Path, expected_recipe: str,
                   entries: dict[str, tuple[str, Raw]]) -> None:
    """Write a features file atomically (a temporary file renamed over the old one)."""
    names = sorted(entries)
    counts = np.array([len(entries[name][1][0]) for name in names], np.int32)
    points = [entries[name][1][0] for name in names]
    descriptors = [entries[name][1][1] for name in names]
    thumbnails = np.array([entries[name][1][2] for name in names], np.uint8).reshape(
        len(names), THUMB_SIDE, THUMB_SIDE)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, recipe=np.array(expected_recipe), paths=np.array(names, dtype=str),
                     stamps=np.array([entries[name][0] for name in names], dtype=str),
                     counts=counts,
                     points=np.concatenate(points) if points else np.zeros((0, 2), np.float32),
                     descriptors=(np.concatenate(descriptors) if descriptors
                                  else np.zeros((0, 128), np.uint8)),
                     thumbnails=thumbnails)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def compute_raw(photo: str, image_loader: Callable[[str], Image.Image]) -> Raw:
    """Raw features of one catalog photo; an unreadable photo has none (as in the re-ranker)."""
    try:
        image = image_loader(photo)
        points, descriptors = sift_keypoints(image)
        small = thumbnail(image)
    except (OSError, ValueError):
        return (np.zeros((0, 2), np.float32), np.zeros((0, 128), np.uint8),
                np.zeros((THUMB_SIDE, THUMB_SIDE), np.uint8))
    return points, descriptors.astype(np.uint8), small


def as_local_features(raw: Raw) -> LocalFeatures:
    """The re-ranker's features (RootSIFT) from stored raw features."""
    points, descriptors, small = raw
    return LocalFeatures(np.ascontiguousarray(points, dtype=np.float32),
                         root_sift(descriptors.astype(np.float32)),
                         np.ascontiguousarray(small, dtype=np.uint8))


def warm_reranker(reranker, photos: Sequence[str], image_loader: Callable[[str], Image.Image],
                  stamp_of: Callable[[str], str], store: str | Path | None = None,
                  workers: int | None = None) -> WarmReport:
    """Fill ``reranker``'s feature cache with ``photos`` (catalog-relative paths).

    Photos found in the ``store`` file with the same ``stamp_of(photo)`` are loaded; the others
    are computed by ``workers`` threads (OpenCV releases the GIL; default: CPU count, at most 8)
    and the file rewritten with every photo's features. Without ``store`` everything is computed
    and nothing is written.
    """
    photos = list(dict.fromkeys(photos))
    wanted = recipe(reranker.name)
    path = Path(store) if store is not None else None
    known = read_features(path, wanted) if path is not None else {}
    stamps = {photo: stamp_of(photo) for photo in photos}
    entries: dict[str, tuple[str, Raw]] = {}
    todo = []
    for photo in photos:
        hit = known.get(photo)
        if hit is not None and hit[0] == stamps[photo]:
            entries[photo] = hit
        else:
            todo.append(photo)
    loaded = len(entries)
    if todo:
        workers = workers or min(8, os.cpu_count() or 1)
        if workers <= 1:
            computed = [compute_raw(photo, image_loader) for photo in todo]
        else:
            with ThreadPoolExecutor(workers) as pool:
                computed = list(pool.map(lambda photo: compute_raw(photo, image_loader), todo))
        entries.update({photo: (stamps[photo], raw) for photo, raw in zip(todo, computed)})
    reranker.preload((photo, as_local_features(entries[photo][1])) for photo in photos)
    written = False
    if path is not None and (todo or set(known) != set(entries)):
        write_features(path, wanted, entries)
        written = True
    return WarmReport(loaded=loaded, computed=len(todo), written=written)
