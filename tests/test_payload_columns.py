"""Payload columns: image paths and listing ids held as UTF-8 byte columns come back as the same
strings through every way they are read, after deletions, growth and a save and load."""

from __future__ import annotations

import numpy as np

from retrieval.faiss_index import FaissIndex
from retrieval.index import IndexRecord, ListingHit, open_index
from retrieval.payload_columns import PayloadColumns

# non-ASCII (a 1688 catalog names its files in Chinese), different lengths, a space
LISTINGS = ["L1", "工厂-空气净化器-0002", "L3 long listing id with spaces", "é"]
IMAGES = ["a.jpg", "图片/空气净化器 正面.jpg", "images/L3/very/deep/path/front-view-1.jpeg",
          "é/é.png", "a2.jpg"]
OWNERS = [0, 1, 2, 3, 0]  # IMAGES[i] belongs to LISTINGS[OWNERS[i]]


def _columns() -> PayloadColumns:
    columns = PayloadColumns()
    columns.append((image, {"listing_id": LISTINGS[owner]})
                   for image, owner in zip(IMAGES, OWNERS))
    return columns


def test_every_reader_returns_the_stored_strings():
    columns = _columns()
    assert len(columns) == len(IMAGES)
    assert [columns.image(row) for row in range(len(IMAGES))] == IMAGES
    assert columns.images_at([4, 1, 1]) == [IMAGES[4], IMAGES[1], IMAGES[1]]
    assert columns.images_at(np.array([2, 3])) == [IMAGES[2], IMAGES[3]]
    assert columns.images_at([]) == []
    codes = columns.codes("listing_id")
    assert columns.listing_ids_at(codes.tolist()) == [LISTINGS[o] for o in OWNERS]
    assert columns.listing_ids_at([]) == []
    payload = columns.payload(1)
    assert payload["image"] == IMAGES[1] and payload["listing_id"] == LISTINGS[1]
    assert all(type(value) is str for value in columns.images_at(range(len(IMAGES))))


def test_listing_ids_read_after_the_vocabulary_grows():
    columns = _columns()
    assert columns.listing_ids_at([0]) == [LISTINGS[0]]  # the id column made here
    columns.append([("new.jpg", {"listing_id": "新的-listing"}), ("n2.jpg", {"listing_id": "L1"})])
    codes = columns.codes("listing_id").tolist()
    assert columns.listing_ids_at(codes[-2:]) == ["新的-listing", "L1"]
    assert columns.images_at([len(IMAGES), len(IMAGES) + 1]) == ["new.jpg", "n2.jpg"]
    columns.append([("n3.jpg", {"listing_id": "L-後"})])  # grown again, as the C walk reads it
    codes, names, images = columns.hit_columns()
    assert [names[code] for code in codes] == [*(LISTINGS[o] for o in OWNERS), "新的-listing",
                                               "L1", "L-後"]
    assert [path.decode() for path in images.tolist()] == [*IMAGES, "new.jpg", "n2.jpg",
                                                           "n3.jpg"]


def test_kept_rows_keep_their_own_paths():
    columns = _columns()
    columns.keep(np.array([True, False, True, False, True]))
    assert [columns.image(row) for row in range(3)] == [IMAGES[0], IMAGES[2], IMAGES[4]]
    assert columns.listing_ids_at(columns.codes("listing_id").tolist()) == \
        [LISTINGS[0], LISTINGS[2], LISTINGS[0]]


def test_paths_and_ids_survive_search_deletion_save_and_load(tmp_path):
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(len(IMAGES), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = FaissIndex("test", 8, index_type="flat")
    index.add([IndexRecord(LISTINGS[owner], image) for image, owner in zip(IMAGES, OWNERS)],
              vectors)
    hits = index.search(vectors[1], k=4)
    assert hits[0] == ListingHit(LISTINGS[1], hits[0].score, IMAGES[1])
    assert {hit.listing_id for hit in hits} == set(LISTINGS)
    index.delete([LISTINGS[2]])
    index.save(tmp_path / "idx")
    loaded = open_index(tmp_path / "idx")
    try:
        for row in (0, 1, 3):
            assert loaded.search(vectors[row], k=3) == index.search(vectors[row], k=3)
        found = {hit.listing_id: hit.image for hit in loaded.search(vectors[1], k=3)}
        assert found[LISTINGS[1]] == IMAGES[1] and found[LISTINGS[3]] == IMAGES[3]
        assert LISTINGS[2] not in found
    finally:
        loaded.close()
