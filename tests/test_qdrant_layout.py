"""The Qdrant collection layout a server or cluster gets: vectors, shards, replicas and a payload
index on every field a search filter reads. No Qdrant server runs in the tests, so the calls are
recorded by a local-mode client standing in for one (the real client class, in process)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from retrieval.filters import SearchFilter
from retrieval.index import IndexRecord
from retrieval.qdrant_index import QdrantIndex, payload_index_schemas, to_qdrant_filter


class RecordingClient(QdrantClient):
    """A local-mode client that also records the layout calls a server would receive."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.collections: list[dict] = []
        self.payload_indexes: dict[str, dict] = {}

    def create_collection(self, collection_name, **kwargs):
        self.collections.append({"name": collection_name, **kwargs})
        return super().create_collection(collection_name, **kwargs)

    def create_payload_index(self, collection_name, field_name, field_schema=None, **kwargs):
        self.payload_indexes.setdefault(collection_name, {})[field_name] = field_schema
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return super().create_payload_index(collection_name, field_name,
                                                field_schema=field_schema, **kwargs)


def _filter_keys(search_filter: SearchFilter) -> set[str]:
    condition = to_qdrant_filter(search_filter)
    return {c.key for c in condition.must} if condition is not None else set()


def test_server_collection_gets_shards_replicas_and_payload_indexes():
    client = RecordingClient()
    index = QdrantIndex("descriptor-v3", 16, url="http://qdrant.invalid:6333", client=client,
                        collection="listings", shard_number=6, replication_factor=2)
    [created] = client.collections
    assert created["name"] == index.target and created["name"].startswith("listings-")
    assert created["shard_number"] == 6 and created["replication_factor"] == 2
    assert created["vectors_config"].size == 16
    assert created["vectors_config"].distance == models.Distance.COSINE
    assert client.payload_indexes[index.target] == payload_index_schemas()
    schemas = payload_index_schemas()
    assert schemas["moq"] == models.PayloadSchemaType.INTEGER
    assert schemas["price_min"] == models.PayloadSchemaType.FLOAT
    assert schemas["certifications"] == models.PayloadSchemaType.KEYWORD


def test_every_filter_field_is_indexed():
    everything = SearchFilter(categories=("bags",), supplier_kind="factory", max_moq=10,
                              max_unit_price=2.5, certifications=("CE",),
                              capabilities=("oem",), countries=("CN",), supplier_ids=("S1",),
                              product_ids=("P1",))
    keys = _filter_keys(everything)
    assert keys == {"category", "supplier_kind", "moq", "price_min", "certifications",
                    "capabilities", "country", "supplier_id", "product_id"}
    assert keys <= set(payload_index_schemas())
    assert "listing_id" in payload_index_schemas()  # deletes, updates and grouping by listing


def test_local_mode_collection_holds_the_layout_and_answers_filtered_search():
    index = QdrantIndex("descriptor-v3", 4, collection="listings")
    info = index.client.get_collection(index.target)
    assert info.config.params.vectors.size == 4
    assert info.config.params.vectors.distance == models.Distance.COSINE
    rows = np.eye(4, dtype=np.float32)
    index.add([IndexRecord(f"L{i}", f"images/{i}.jpg",
                           {"moq": 10 * (i + 1), "certifications": ["CE"] if i % 2 else []})
               for i in range(4)], rows)
    hits = index.search(rows[0], k=4, filter=SearchFilter(max_moq=30, certifications=("ce",)))
    assert [hit.listing_id for hit in hits] == ["L1"]


def test_an_unreachable_server_is_one_error_naming_the_url_not_a_missing_index(
        tmp_path, quiet_client, refused_url):
    """Building on, or opening an index that lives on, a server that cannot be reached raises
    IndexUnavailableError (the command line prints it, /readyz shows it). It is not an
    IndexNotFoundError, so nothing is rebuilt because of it."""
    from retrieval.index import IndexNotFoundError, IndexUnavailableError, create_index, open_index

    url = refused_url
    with pytest.raises(IndexUnavailableError, match=f"Qdrant server at {url} cannot be used"):
        create_index("qdrant", "descriptor-v3", 16, url=url)

    saved = QdrantIndex("descriptor-v3", 4, url="http://qdrant.invalid:6333",
                        client=RecordingClient(), collection="listings")
    saved.add([IndexRecord("L1", "a.jpg")], np.eye(4, dtype=np.float32)[:1])
    saved.save(tmp_path / "idx")
    with pytest.raises(IndexUnavailableError, match="QDRANT_URL") as caught:
        open_index(tmp_path / "idx", qdrant_url=url)
    assert not isinstance(caught.value, IndexNotFoundError)
