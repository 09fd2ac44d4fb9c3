"""Settings: nonsense is refused at start-up in one line per problem naming the variable (the
command line and the server alike); folders that are read must exist; an explicit backend wins
over QDRANT_URL; a descriptor projection fitted on another catalog is used when configured."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from api.settings import Settings, get_settings, settings_error_message


def _message(**values) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**values)
    return settings_error_message(caught.value)


def test_qdrant_url_picks_qdrant_only_when_no_backend_was_chosen(monkeypatch):
    assert Settings(qdrant_url="http://qdrant:6333").index_backend == "qdrant"
    assert Settings(qdrant_url="http://qdrant:6333", index_backend="faiss").index_backend == "faiss"
    monkeypatch.setenv("QDRANT_URL", "http://qdrant:6333")
    assert Settings().index_backend == "qdrant"
    monkeypatch.setenv("SOURCING_INDEX_BACKEND", "faiss")
    assert Settings().index_backend == "faiss"


def test_errors_name_the_variable_and_the_value_not_the_field(monkeypatch):
    monkeypatch.setenv("SOURCING_INDEX_TYPE", "foo")
    monkeypatch.setenv("SOURCING_SHORTLIST_SIZE", "99")
    message = _message()
    assert message.splitlines() == [
        "SOURCING_INDEX_TYPE: Input should be 'auto', 'flat', 'hnsw' or 'ivf' (got 'foo')",
        "SOURCING_SHORTLIST_SIZE: Input should be less than or equal to 50 (got '99')"]
    assert "pydantic" not in message and "index_type" not in message


def test_folders_read_at_start_up_must_exist_and_the_alias_used_is_named(monkeypatch, tmp_path):
    missing = tmp_path / "nowhere"
    assert _message(catalog_dir=missing) == f"SOURCING_CATALOG_DIR: folder not found: {missing}"
    assert _message(rules_dir=missing) == f"SOURCING_RULES_DIR: folder not found: {missing}"
    assert _message(data_dir=missing) == f"SOURCING_DATA_DIR: folder not found: {missing}"
    (tmp_path / "file").write_text("x")
    assert _message(rules_dir=tmp_path / "file") == \
        f"SOURCING_RULES_DIR: not a folder: {tmp_path / 'file'}"
    assert _message(market_dirs=[tmp_path, missing]) == \
        f"SOURCING_MARKET_DIRS: folder not found: {missing}"
    monkeypatch.setenv("SOURCING_MARKET_DIR", str(missing))  # the older one-folder variable
    assert _message() == f"SOURCING_MARKET_DIR: folder not found: {missing}"
    monkeypatch.delenv("SOURCING_MARKET_DIR")
    # what the project writes itself need not exist yet
    made = Settings(index_dir=missing / "index", runs_db=missing / "runs.sqlite3",
                    cache_dir=missing / "cache")
    assert made.index_dir == missing / "index" and not missing.exists()


def test_device_is_one_torch_can_use():
    assert _message(device="tpu") == ("SOURCING_DEVICE: must be auto, cpu, cuda, cuda:N "
                                      "(a GPU number) or mps (got 'tpu')")
    assert "SOURCING_DEVICE" in _message(device="cuda:x")
    assert [Settings(device=d).device for d in ("auto", "cpu", "cuda", "cuda:1", "MPS")] == \
        ["auto", "cpu", "cuda", "cuda:1", "mps"]


def test_the_server_refuses_bad_settings_with_the_variable_not_a_traceback(monkeypatch):
    from api.app import create_app

    monkeypatch.setenv("SOURCING_DEVICE", "tpu")
    get_settings.cache_clear()
    try:
        with pytest.raises(SystemExit) as caught:
            create_app()
    finally:
        get_settings.cache_clear()
    assert str(caught.value) == ("error: invalid settings:\nSOURCING_DEVICE: must be auto, cpu, "
                                 "cuda, cuda:N (a GPU number) or mps (got 'tpu')")


# -- the descriptor projection ---------------------------------------------------------------


def _projection(path, dim: int, seed: int):
    """A valid projection file as `python -m retrieval.embedders.projection --out` writes it."""
    from retrieval.embedders.descriptor import DescriptorEmbedder
    from retrieval.embedders.projection import Projection

    raw_dim = DescriptorEmbedder(projection=None).dim
    rng = np.random.default_rng(seed)
    projection = Projection(np.zeros(raw_dim, np.float32),
                            rng.standard_normal((raw_dim, dim)).astype(np.float32),
                            {"fitted_on": "a test catalog"})
    projection.save(path)
    return projection


def test_a_configured_projection_is_the_one_used_and_is_checked_at_start_up(monkeypatch,
                                                                             tmp_path):
    from api.services import make_image_embedder

    default = make_image_embedder(Settings())
    path = tmp_path / "mine.npz"
    projection = _projection(path, dim=16, seed=1)
    monkeypatch.setenv("SOURCING_DESCRIPTOR_PROJECTION", str(path))
    mine = make_image_embedder(Settings())
    assert mine.name == default.name == "descriptor-v4"
    assert mine.version == f"4+{projection.digest}" != default.version
    photo = Image.new("RGB", (64, 64), "white")
    photo.paste((200, 40, 40), (16, 16, 48, 48))
    assert mine.embed_images([photo]).shape == (1, 16)
    assert default.embed_images([photo]).shape == (1, default.dim)

    assert _message(descriptor_projection=tmp_path / "none.npz").startswith(
        f"SOURCING_DESCRIPTOR_PROJECTION: file not found: {tmp_path / 'none.npz'}")
    (tmp_path / "notes.npz").write_text("not a projection")
    assert _message(descriptor_projection=tmp_path / "notes.npz").startswith(
        f"SOURCING_DESCRIPTOR_PROJECTION: {tmp_path / 'notes.npz'}: not a descriptor projection")


def test_an_index_built_with_one_projection_is_not_searched_with_another(tmp_path):
    """Same name and dimension, another projection: opening the index is refused (the
    projection's digest is part of the embedder version the index records)."""
    from api.services import build_catalog_index, load_or_build_index, make_image_embedder
    from data.catalog.importer import load_catalog
    from retrieval.index import IndexMismatchError
    from tests.test_cli import _write_catalog

    _write_catalog(tmp_path / "catalog")
    catalog = load_catalog(tmp_path / "catalog")
    _projection(tmp_path / "a.npz", 16, seed=1)
    _projection(tmp_path / "b.npz", 16, seed=2)
    first = Settings(catalog_dir=tmp_path / "catalog", index_dir=tmp_path / "index",
                     descriptor_projection=tmp_path / "a.npz")
    build_catalog_index(first, catalog, make_image_embedder(first), progress=False)
    assert len(load_or_build_index(first, catalog, make_image_embedder(first))) == 3
    second = Settings(catalog_dir=tmp_path / "catalog", index_dir=tmp_path / "index",
                      descriptor_projection=tmp_path / "b.npz")
    with pytest.raises(IndexMismatchError, match="another descriptor projection"):
        load_or_build_index(second, catalog, make_image_embedder(second))
