"""Qdrant backend: photo vectors in a Qdrant collection, in process or on a server or cluster.

Collection layout (one collection per index, one point per photo):

- point id: ``uuid5`` of (listing id, image path), so adding a photo again overwrites its point;
- vector: the photo embedding (``dim`` floats), cosine distance;
- payload (:func:`retrieval.filters.payload_of`): ``listing_id``, ``image``, ``supplier_id``,
  ``product_id``, ``category``, ``supplier_kind``, ``country`` (keyword), ``certifications``,
  ``capabilities`` (keyword arrays), ``moq`` (integer, pieces), ``price_min`` (float, lowest
  unit price). Payload indexes on the filter fields are created with the collection (keyword,
  integer and float indexes respectively). Unknown values are stored as ``null``, which no
  filter condition matches.

Server or cluster (``url=``, plus ``api_key``): ``shard_number`` (shards the points are split
into, spread over the nodes) and ``replication_factor`` (copies of each shard) are passed to
``create_collection``. A build fills a fresh collection ``<collection>-<UTC time>``; ``save``
points the alias ``<collection>`` at it in one atomic alias switch, writes ``meta.json`` to the
index folder, and only then drops the collection the alias pointed at before. Readers (every API
worker) query the alias, so they move to the new data at once and a failed build never touches
what they read. Updates of a loaded server index (``add``, ``delete``) apply to the live
collection immediately.

Local mode (no ``url``) ignores shards, replicas and payload indexes. Its points live in memory;
``save`` writes them with a local-path client under ``<folder>/qdrant`` (a staging folder swapped
in, as for FAISS) and ``load`` reads them back into memory, so a saved index is never modified
in place and several processes may open it at once. Local mode suits tests and small catalogs.

Search groups photo hits per listing on the Qdrant side (``query_points_groups`` with
``group_by="listing_id"``, one photo per group): Qdrant over-fetches photos until it has ``k``
distinct listings that pass the filter.
"""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.filters import SearchFilter, canonical_payload
from retrieval.index import (
    IndexEntry,
    IndexMismatchError,
    IndexNotFoundError,
    IndexRecord,
    IndexUnavailableError,
    ListingHit,
    VectorIndex,
    as_record,
    best_per_listing,
    group_means,
    ranked,
    write_folder,
    write_meta,
)

COLLECTION = "listing_photos"
LOCAL_DIR = "qdrant"  # local-mode points, inside the index folder
POINT_NAMESPACE = uuid.UUID("5b0e4c1a-8f3d-5e2b-9a61-3c7d2f4e8a10")
KEYWORD_FIELDS = ("listing_id", "supplier_id", "product_id", "category", "supplier_kind",
                  "country", "certifications", "capabilities")
INTEGER_FIELDS = ("moq",)
FLOAT_FIELDS = ("price_min",)
BATCH = 512  # points per upsert or scroll page


def point_id(listing_id: str, image: str) -> str:
    """The point id of one photo: deterministic, so re-adding a photo replaces it."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{listing_id}\x1f{image}"))


def payload_index_schemas() -> dict[str, Any]:
    """Payload field -> the Qdrant index type created on it (every field a filter reads)."""
    from qdrant_client import models

    return {**{f: models.PayloadSchemaType.KEYWORD for f in KEYWORD_FIELDS},
            **{f: models.PayloadSchemaType.INTEGER for f in INTEGER_FIELDS},
            **{f: models.PayloadSchemaType.FLOAT for f in FLOAT_FIELDS}}


def to_qdrant_filter(search_filter: SearchFilter | None) -> Any:
    """The :class:`SearchFilter` as a Qdrant ``Filter`` (``None`` when it lets all through)."""
    from qdrant_client import models

    f = search_filter
    if f is None or f.is_empty:
        return None

    def any_of(key: str, values: Sequence[str]) -> Any:
        return models.FieldCondition(key=key, match=models.MatchAny(any=list(values)))

    def one(key: str, value: str) -> Any:
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))

    must: list[Any] = []
    for key, values in (("category", f.categories), ("country", f.countries),
                        ("supplier_id", f.supplier_ids), ("product_id", f.product_ids)):
        if values:
            must.append(any_of(key, values))
    if f.supplier_kind is not None:
        must.append(one("supplier_kind", f.supplier_kind))
    if f.max_moq is not None:
        must.append(models.FieldCondition(key="moq", range=models.Range(lte=f.max_moq)))
    if f.max_unit_price is not None:
        must.append(models.FieldCondition(key="price_min",
                                          range=models.Range(lte=f.max_unit_price)))
    # "holds all of them": one condition per value on the array field
    must.extend(one("certifications", value) for value in f.certifications)
    must.extend(one("capabilities", value) for value in f.capabilities)
    return models.Filter(must=must)


def _listing_filter(listing_ids: Iterable[str]) -> Any:
    from qdrant_client import models

    return models.Filter(must=[models.FieldCondition(
        key="listing_id", match=models.MatchAny(any=sorted(set(listing_ids))))])


class QdrantIndex(VectorIndex):
    """A Qdrant collection of photo vectors; see the module docstring for the layout."""

    backend = "qdrant"

    def __init__(self, embedder_name: str, dim: int, info: dict[str, Any] | None = None, *,
                 url: str | None = None, api_key: Any = None,
                 collection: str = COLLECTION, shard_number: int | None = None,
                 replication_factor: int | None = None, hnsw_ef: int | None = None,
                 embedder_version: str | None = None, client: Any = None,
                 attach: str | None = None) -> None:
        """``url`` selects a server (else local, in memory); ``attach`` opens the existing
        collection (or alias) of that name instead of creating a new one."""
        super().__init__(embedder_name, dim, info, embedder_version)
        self.url = url
        self.api_key = api_key
        self.collection = collection
        self.shard_number = shard_number
        self.replication_factor = replication_factor
        self.hnsw_ef = hnsw_ef
        self.mode = "server" if url else "local"
        self._client = client if client is not None else _connect(url, api_key)
        self._fresh = attach is None  # created here (not opened): a failed build may drop it
        if attach is not None:
            self._target = attach
            return
        if self.mode == "server":
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            self._target = f"{collection}-{stamp}-{uuid.uuid4().hex[:6]}"
        else:
            self._target = collection
        self._create_collection(self._client, self._target)

    @property
    def index_type(self) -> str:
        return "hnsw" if self.mode == "server" else "exact"

    @property
    def client(self) -> Any:
        """The ``QdrantClient`` in use."""
        return self._client

    @property
    def target(self) -> str:
        """The collection (or alias) queried and written."""
        return self._target

    @property
    def physical(self) -> str | None:
        """The collection behind :attr:`target` (``None`` when it is gone)."""
        return self._resolve(self._target)

    def __len__(self) -> int:
        return int(self._client.count(self._target, exact=True).count)

    # -- writing -------------------------------------------------------------------------------

    def add(self, records: Sequence[IndexRecord | IndexEntry], vectors: np.ndarray) -> None:
        from qdrant_client import models

        records = [as_record(record) for record in records]
        rows = self._check_vectors(records, vectors)
        for start in range(0, len(records), BATCH):
            batch = records[start:start + BATCH]
            self._client.upsert(self._target, points=models.Batch(
                ids=[point_id(r.listing_id, r.image) for r in batch],
                vectors=rows[start:start + BATCH].tolist(),
                payloads=[_json_payload(r.full_payload()) for r in batch]), wait=True)

    def delete(self, listing_ids: Iterable[str]) -> int:
        from qdrant_client import models

        listing_ids = set(listing_ids)
        if not listing_ids:
            return 0
        selected = _listing_filter(listing_ids)
        removed = int(self._client.count(self._target, count_filter=selected, exact=True).count)
        if removed:
            self._client.delete(self._target, models.FilterSelector(filter=selected), wait=True)
        for listing_id in listing_ids:
            self.fingerprints.pop(listing_id, None)
        return removed

    def update_payloads(self, payloads: Mapping[str, Mapping[str, Any]]) -> int:
        touched = 0
        for listing_id, payload in payloads.items():
            selected = _listing_filter([listing_id])
            fields = _json_payload(canonical_payload(
                {k: v for k, v in payload.items() if k not in ("image", "listing_id")}))
            count = int(self._client.count(self._target, count_filter=selected,
                                           exact=True).count)
            if count:
                self._client.set_payload(self._target, payload=fields, points=selected,
                                         wait=True)
            touched += count
        return touched

    # -- reading -------------------------------------------------------------------------------

    def search(self, vector: np.ndarray, k: int = 10,
               filter: SearchFilter | None = None) -> list[ListingHit]:
        from qdrant_client import models

        query = self._query(vector)
        if k <= 0:
            return []
        params = models.SearchParams(hnsw_ef=self.hnsw_ef) if self.hnsw_ef else None
        result = self._client.query_points_groups(
            self._target, group_by="listing_id", query=query[0].tolist(),
            query_filter=to_qdrant_filter(filter), search_params=params, limit=k, group_size=1,
            with_payload=["listing_id", "image"])
        hits = (ListingHit(str(group.id), float(group.hits[0].score),
                           group.hits[0].payload["image"])
                for group in result.groups if group.hits)
        return ranked(hits, k)

    def listing_scores(self, vector: np.ndarray,
                       listing_ids: Iterable[str]) -> dict[str, ListingHit]:
        query = self._query(vector)[0]
        listing_ids = set(listing_ids)
        if not listing_ids:
            return {}
        points = list(self._scroll(_listing_filter(listing_ids), with_vectors=True,
                                   fields=["listing_id", "image"]))
        if not points:
            return {}
        vectors = np.asarray([p.vector for p in points], dtype=np.float32)
        return best_per_listing([p.payload["listing_id"] for p in points],
                                [p.payload["image"] for p in points], vectors @ query)

    def group_scores(self, vector: np.ndarray, listing_ids: Iterable[str]) -> dict[str, float]:
        from qdrant_client import models

        query = self._query(vector)[0]
        listing_ids = set(listing_ids)
        if not listing_ids:
            return {}
        fields = ["listing_id", "product_id"]
        points = {p.id: p for p in self._scroll(_listing_filter(listing_ids), with_vectors=True,
                                                fields=fields)}
        products = sorted({p.payload.get("product_id") for p in points.values()} - {None})
        if products:
            same_product = models.Filter(must=[models.FieldCondition(
                key="product_id", match=models.MatchAny(any=products))])
            points.update((p.id, p) for p in self._scroll(same_product, with_vectors=True,
                                                          fields=fields))
        if not points:
            return {}
        rows = list(points.values())
        vectors = np.asarray([p.vector for p in rows], dtype=np.float32)
        return group_means([p.payload["listing_id"] for p in rows],
                           [p.payload.get("product_id") for p in rows], vectors @ query,
                           listing_ids)

    def listings(self) -> set[str]:
        return {p.payload["listing_id"] for p in self._scroll(None, fields=["listing_id"])}

    def payload(self, listing_id: str) -> dict[str, Any] | None:
        points, _ = self._client.scroll(self._target, scroll_filter=_listing_filter([listing_id]),
                                        limit=1, with_payload=True)
        return dict(points[0].payload) if points else None

    # -- persistence ---------------------------------------------------------------------------

    def save(self, folder: str | Path) -> Path:
        if self.mode == "server":
            return self._save_server(Path(folder))

        def write(staging: Path) -> None:
            from qdrant_client import QdrantClient

            local = QdrantClient(path=str(staging / LOCAL_DIR))
            try:
                self._create_collection(local, self.collection)
                _copy_points(self._client, self._target, local, self.collection)
            finally:
                local.close()
            write_meta(staging, self._meta(qdrant=self._settings()))

        return write_folder(folder, write)

    @classmethod
    def _open(cls, folder: Path, meta: dict[str, Any], **options: Any) -> QdrantIndex:
        settings = dict(meta.get("qdrant") or {})
        common = {"collection": settings.get("collection", COLLECTION),
                  "shard_number": settings.get("shard_number"),
                  "replication_factor": settings.get("replication_factor"),
                  "hnsw_ef": options.get("hnsw_ef", settings.get("hnsw_ef"))}
        if settings.get("mode") == "server":
            url = options.get("url") or settings.get("url")
            if not url:
                raise IndexNotFoundError(f"index at {folder} lives on a Qdrant server, but no "
                                         "server URL is configured (set QDRANT_URL)")
            index = cls(meta["embedder"], int(meta["dim"]), url=url,
                        api_key=options.get("api_key"), attach=common["collection"], **common)
            if index._resolve(index.collection) is None:
                raise IndexNotFoundError(
                    f"index at {folder} names Qdrant collection {index.collection!r}, which "
                    f"{url} does not have; build one with `sourcing index build`")
            index._check_dim(folder)
            return index
        from qdrant_client import QdrantClient

        path = folder / LOCAL_DIR
        if not path.exists():
            raise IndexNotFoundError(f"no index at {folder}: {LOCAL_DIR}/ is missing; "
                                     "build one with `sourcing index build`")
        index = cls(meta["embedder"], int(meta["dim"]), **common)
        stored = QdrantClient(path=str(path))
        try:
            if not stored.collection_exists(index.collection):
                raise IndexNotFoundError(f"no index at {folder}: collection "
                                         f"{index.collection!r} is missing; rebuild it")
            _copy_points(stored, index.collection, index._client, index._target)
        finally:
            stored.close()
        if len(index) != meta.get("count"):
            raise IndexMismatchError(f"index at {folder} is inconsistent: {len(index)} points, "
                                     f"meta.json says {meta.get('count')}; rebuild it")
        return index

    def discard(self) -> None:
        """Delete the collection a failed server build was filling (nothing else is touched:
        a collection that readers may see, through the alias, is never dropped here)."""
        if (self.mode == "server" and self._fresh and self._resolve(self.collection) != self._target
                and self._client.collection_exists(self._target)):
            self._client.delete_collection(self._target)

    def close(self) -> None:
        self._client.close()

    # -- internals -----------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {"mode": self.mode, "collection": self.collection, "url": self.url,
                "physical_collection": self.physical,
                "distance": "cosine", "shard_number": self.shard_number,
                "replication_factor": self.replication_factor, "hnsw_ef": self.hnsw_ef}

    def _create_collection(self, client: Any, name: str) -> None:
        from qdrant_client import models

        client.create_collection(
            name, vectors_config=models.VectorParams(size=self.dim,
                                                     distance=models.Distance.COSINE),
            shard_number=self.shard_number, replication_factor=self.replication_factor)
        with warnings.catch_warnings():
            # local mode warns that payload indexes have no effect there
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for field, schema in payload_index_schemas().items():
                client.create_payload_index(name, field, field_schema=schema, wait=True)

    def _resolve(self, name: str) -> str | None:
        """The collection behind alias ``name``, ``name`` itself if it is a collection."""
        for alias in self._client.get_aliases().aliases:
            if alias.alias_name == name:
                return alias.collection_name
        return name if self._client.collection_exists(name) else None

    def _check_dim(self, folder: Path) -> None:
        info = self._client.get_collection(self._target)
        size = info.config.params.vectors.size
        if size != self.dim:
            raise IndexMismatchError(f"index at {folder}: Qdrant collection {self._target!r} "
                                     f"holds vectors of dimension {size}, not {self.dim}")

    def _save_server(self, folder: Path) -> Path:
        from qdrant_client import models

        alias = self.collection
        previous = self._resolve(alias)
        physical = self._resolve(self._target)
        switch = physical is not None and physical != previous
        if switch:
            if previous == alias:  # a plain collection squats the alias name
                raise ValueError(f"Qdrant collection {alias!r} exists and is not an alias; "
                                 "choose another collection name or delete it")
            operations: list[Any] = []
            if previous is not None:
                operations.append(models.DeleteAliasOperation(
                    delete_alias=models.DeleteAlias(alias_name=alias)))
            operations.append(models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=physical, alias_name=alias)))
            self._client.update_collection_aliases(operations)
        try:
            write_folder(folder, lambda staging: write_meta(
                staging, self._meta(qdrant=self._settings())))
        except BaseException:
            if switch:
                self._restore_alias(alias, previous)
            raise
        if switch and previous is not None:
            self._client.delete_collection(previous)
        self._target = alias
        return folder

    def _restore_alias(self, alias: str, previous: str | None) -> None:
        from qdrant_client import models

        operations: list[Any] = [models.DeleteAliasOperation(
            delete_alias=models.DeleteAlias(alias_name=alias))]
        if previous is not None:
            operations.append(models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=previous, alias_name=alias)))
        self._client.update_collection_aliases(operations)

    def _scroll(self, selected: Any, with_vectors: bool = False,
                fields: list[str] | None = None) -> Iterator[Any]:
        offset = None
        while True:
            points, offset = self._client.scroll(
                self._target, scroll_filter=selected, limit=BATCH, offset=offset,
                with_payload=fields if fields is not None else True, with_vectors=with_vectors)
            yield from points
            if offset is None:
                return


def _connect(url: str | None, api_key: Any) -> Any:
    try:
        from qdrant_client import QdrantClient
    except ImportError as exc:  # pragma: no cover - qdrant-client is a declared dependency
        raise ImportError("the Qdrant backend needs qdrant-client: "
                          "pip install qdrant-client") from exc
    if url:
        if hasattr(api_key, "get_secret_value"):  # a settings SecretStr
            api_key = api_key.get_secret_value()
        try:
            client = QdrantClient(url=url, api_key=api_key)
            # the client connects lazily: ask once now, so that a wrong URL, a server that is
            # down or a refused key is one clear error here, not a traceback from the first call
            client.get_collections()
        except Exception as exc:  # connection refused, DNS, TLS, 401/403, bad URL...
            cause = str(exc).strip() or type(exc).__name__
            raise IndexUnavailableError(
                f"Qdrant server at {url} cannot be used: {cause} (check QDRANT_URL and "
                "QDRANT_API_KEY, and that the server is running)") from exc
        return client
    return QdrantClient(":memory:")


def _copy_points(source: Any, source_collection: str, target: Any,
                 target_collection: str) -> None:
    """Copy every point (id, vector, payload) between collections, page by page."""
    from qdrant_client import models

    offset = None
    while True:
        points, offset = source.scroll(source_collection, limit=BATCH, offset=offset,
                                       with_payload=True, with_vectors=True)
        if points:
            target.upsert(target_collection, points=models.Batch(
                ids=[p.id for p in points], vectors=[p.vector for p in points],
                payloads=[p.payload for p in points]), wait=True)
        if offset is None:
            return


def _json_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Payload values as Qdrant stores them: tuples as lists, numpy scalars as Python ones."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, tuple | set | frozenset):
            value = sorted(value) if isinstance(value, set | frozenset) else list(value)
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
