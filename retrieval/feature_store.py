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

**Catalogs larger than the re-ranker's cache.** The re-ranker keeps ``CACHE_SIZE`` photos' features
in memory (RootSIFT as ``float32``, about four times the stored size). A catalog with more photos
is still described once into the file; the file is then opened with its arrays memory-mapped
(:class:`StoredFeatures`, pages read on demand) and attached to the re-ranker, which reads a
photo's features from it when its cache lacks them instead of computing them (about 25 ms a
photo; a re-ranking looks at hundreds). The features in the file are the ones computed, so the
answers do not change.
"""

from __future__ import annotations

import logging
import os
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from retrieval.index import shared_mode
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
_MAPPED = ("points", "descriptors", "thumbnails")  # the arrays that grow with the catalog
log = logging.getLogger(__name__)


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


def _memory_mapped(path: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Arrays of an uncompressed ``.npz`` (what ``np.savez`` writes: each member stored as is)
    mapped from the file rather than read: each member's data starts after its zip local header
    and its ``.npy`` header."""
    arrays = {}
    with zipfile.ZipFile(path) as archive, open(path, "rb") as handle:
        for name in names:
            info = archive.getinfo(f"{name}.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"{path}: member {name} is compressed")
            handle.seek(info.header_offset)
            local = handle.read(30)
            if local[:4] != b"PK\x03\x04":
                raise ValueError(f"{path}: member {name} has no local header")
            name_length, extra_length = struct.unpack("<HH", local[26:30])
            handle.seek(info.header_offset + 30 + name_length + extra_length)
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(handle)
            if 0 in shape:  # nothing to map
                arrays[name] = np.zeros(shape, dtype)
                continue
            arrays[name] = np.memmap(path, dtype=dtype, mode="r", offset=handle.tell(),
                                     shape=shape, order="F" if fortran else "C")
    return arrays


class StoredFeatures:
    """A features file opened read-only, its descriptors, keypoints and thumbnails memory-mapped:
    a photo's features are read from the file when asked for, so the catalog's features need fit
    neither the re-ranker's cache nor memory. ``ValueError`` when the file was made with another
    recipe or cannot be mapped (``OSError`` when it cannot be read)."""

    def __init__(self, path: str | Path, expected_recipe: str) -> None:
        self.path = Path(path)
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if str(data["recipe"]) != expected_recipe:
                    raise ValueError(f"{self.path} holds features of another recipe")
                paths, stamps = data["paths"].tolist(), data["stamps"].tolist()
                counts = data["counts"].astype(np.int64)
        except KeyError as exc:
            raise ValueError(f"{self.path} is not a features file: {exc}") from None
        mapped = _memory_mapped(self.path, _MAPPED)
        self._points, self._descriptors = mapped["points"], mapped["descriptors"]
        self._thumbnails = mapped["thumbnails"]
        ends = np.cumsum(counts)
        self._where = {name: (i, start, end, stamp) for i, (name, stamp, start, end) in
                       enumerate(zip(paths, stamps, (ends - counts).tolist(), ends.tolist()))}

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, photo: str) -> bool:
        return photo in self._where

    def entries(self) -> dict[str, tuple[str, Raw]]:
        """Photo -> (stamp, raw features), the arrays views of the mapped file."""
        return {photo: (stamp, self._raw(i, start, end))
                for photo, (i, start, end, stamp) in self._where.items()}

    def _raw(self, i: int, start: int, end: int) -> Raw:
        return self._points[start:end], self._descriptors[start:end], self._thumbnails[i]

    def features(self, photo: str) -> LocalFeatures | None:
        """The re-ranker's features of a catalog photo, or ``None`` when the file lacks it."""
        where = self._where.get(photo)
        if where is None:
            return None
        i, start, end, _ = where
        return as_local_features(self._raw(i, start, end))


def read_features(path: Path, expected_recipe: str) -> dict[str, tuple[str, Raw]]:
    """Photo path -> (stamp, raw features) from a features file (the arrays memory-mapped);
    empty when the file is missing, unreadable or made with another recipe."""
    try:
        return StoredFeatures(path, expected_recipe).entries()
    except (OSError, ValueError, zipfile.BadZipFile):
        return {}


def _member_info(name: str) -> zipfile.ZipInfo:
    """A stored member with a fixed timestamp: the same features give the same file."""
    info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    return info


def _write_member(archive: zipfile.ZipFile, name: str, dtype: np.dtype, shape: tuple[int, ...],
                  parts: Iterable[np.ndarray]) -> None:
    """One ``.npy`` member of the archive, its rows written part by part (stored, as
    ``np.savez`` stores them), so that no more than one part is in memory at a time."""
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": shape}
    with archive.open(_member_info(name), "w", force_zip64=True) as member:
        np.lib.format.write_array_header_1_0(member, header)
        for part in parts:
            member.write(np.ascontiguousarray(part, dtype=dtype).tobytes())


def write_features(path: Path, expected_recipe: str,
                   entries: dict[str, tuple[str, Raw]]) -> None:
    """Write a features file atomically (a temporary file renamed over the old one). The big
    arrays are streamed photo by photo, so memory stays flat however large the catalog (the
    entries may be views of the memory-mapped former file); the arrays are those ``np.savez``
    would write, and the same features give the same bytes."""
    names = sorted(entries)
    counts = np.array([len(entries[name][1][0]) for name in names], np.int32)
    total = int(counts.sum())
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED,
                             allowZip64=True) as archive:
            for name, array in (("recipe", np.array(expected_recipe)),
                                ("paths", np.array(names, dtype=str)),
                                ("stamps", np.array([entries[n][0] for n in names], dtype=str)),
                                ("counts", counts)):
                with archive.open(_member_info(name), "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
            _write_member(archive, "points", np.dtype(np.float32), (total, 2),
                          (entries[name][1][0] for name in names))
            _write_member(archive, "descriptors", np.dtype(np.uint8), (total, 128),
                          (entries[name][1][1] for name in names))
            _write_member(archive, "thumbnails", np.dtype(np.uint8),
                          (len(names), THUMB_SIDE, THUMB_SIDE),
                          (entries[name][1][2] for name in names))
        # mkstemp makes it 0600: a server running as another user than the one who built the
        # index must be able to read it
        os.chmod(temporary, shared_mode(0o644))
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
                  workers: int | None = None, progress: bool = False) -> WarmReport:
    """Fill ``reranker``'s feature cache with ``photos`` (catalog-relative paths).

    Photos found in the ``store`` file with the same ``stamp_of(photo)`` are loaded; the others
    are computed by ``workers`` threads (OpenCV releases the GIL; default: CPU count, at most 8)
    and the file rewritten with every photo's features. Without ``store`` everything is computed
    and nothing is written. With more photos than the re-ranker's ``cache_size``, the cache is
    not filled (it would keep only the last ones); the file, memory-mapped, is attached to the
    re-ranker instead (``attach``), which reads what its cache lacks from it.
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
        if len(todo) > 1000:
            log.info("computing the local features of %d catalog photos (about 25 ms each, once: "
                     "kept in %s)", len(todo), path)
        workers = workers or min(8, os.cpu_count() or 1)
        bar = tqdm(total=len(todo), desc="describing photos for the re-ranker", unit="img",
                   disable=not progress)

        def one(photo: str) -> Raw:
            raw = compute_raw(photo, image_loader)
            bar.update()
            return raw

        with bar:
            if workers <= 1:
                computed = [one(photo) for photo in todo]
            else:
                with ThreadPoolExecutor(workers) as pool:
                    computed = list(pool.map(one, todo))
        entries.update({photo: (stamps[photo], raw) for photo, raw in zip(todo, computed)})
    fits = len(photos) <= getattr(reranker, "cache_size", len(photos))
    if fits or path is None:
        reranker.preload((photo, as_local_features(entries[photo][1])) for photo in photos)
    written = False
    if path is not None and (todo or set(known) != set(entries)):
        write_features(path, wanted, entries)
        written = True
    del entries, known  # views of the former file; the re-ranker reads the new one
    if not fits and path is not None:
        reranker.attach(StoredFeatures(path, wanted).features)
    return WarmReport(loaded=loaded, computed=len(todo), written=written)


def warm_catalog(reranker, catalog, store: str | Path | None, progress: bool = False
                 ) -> WarmReport | None:
    """:func:`warm_reranker` with every photo of a catalog (``data.catalog`` ``Catalog``), each
    stamped by its file; ``None`` for a catalog without photos, and for one with more photos than
    the re-ranker's cache when there is no ``store`` (a cache filled past its size would keep
    only the last photos)."""
    from retrieval.images import load_image

    photos = sorted({image for listing in catalog.listings.values() for image in listing.images})
    larger = len(photos) > getattr(reranker, "cache_size", len(photos))
    if not photos or (larger and (store is None or not hasattr(reranker, "attach"))):
        return None
    return warm_reranker(reranker, photos, lambda photo: load_image(catalog.image_path(photo)),
                         lambda photo: file_stamp(catalog.image_path(photo)), store=store,
                         progress=progress)
