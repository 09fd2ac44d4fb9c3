"""Set-up problems of the command line and the server: one ``error:`` line and exit 2 (or a
/readyz load error), never a traceback; a missing index is built on first use only for the
default demo setup, never silently anywhere else; an explicit --backend wins over QDRANT_URL."""

from __future__ import annotations

import json
from types import SimpleNamespace

from typer.testing import CliRunner

from api.cli import app
from api.settings import Settings
from tests.test_cli import _write_catalog

cli = CliRunner()


def test_only_the_default_demo_setup_may_build_a_missing_index(tmp_path):
    from api.services import may_build_missing_index

    default = Settings()
    assert may_build_missing_index(default)
    assert not may_build_missing_index(Settings(index_dir=tmp_path / "index"))
    assert not may_build_missing_index(Settings(catalog_dir=tmp_path))  # another catalog
    assert not may_build_missing_index(Settings(qdrant_url="http://qdrant:6333"))
    # the URL left in the environment, the index asked for in process
    assert may_build_missing_index(Settings(qdrant_url="http://qdrant:6333",
                                            index_backend="faiss"))


def test_search_refuses_a_missing_index_elsewhere_and_creates_nothing(tmp_path):
    where = tmp_path / "missing" / "index"
    outcome = cli.invoke(app, ["search", "text", "blender"],
                         env={"SOURCING_INDEX_DIR": str(where)})
    assert outcome.exit_code == 2, outcome.output
    assert f"error: no index at {where}: build it with `sourcing index build --catalog" \
        in " ".join(outcome.output.split())
    assert "Traceback" not in outcome.output
    assert not (tmp_path / "missing").exists()


def test_the_server_reports_a_missing_index_in_readyz_instead_of_building_it(tmp_path):
    from api.app import _load_services

    where = tmp_path / "missing" / "index"
    state = SimpleNamespace(services=None, load_error=None, graph=None)
    _load_services(state, Settings(index_dir=where))
    assert state.services is None
    assert state.load_error.startswith(f"loading failed: no index at {where}: build it with")
    assert not (tmp_path / "missing").exists()


def test_broken_rules_are_one_error_line(tmp_path):
    outcome = cli.invoke(app, ["search", "text", "blender"],
                         env={"SOURCING_RULES_DIR": str(tmp_path)})
    assert outcome.exit_code == 2, outcome.output
    assert f"error: compliance rules in {tmp_path} have problems" in outcome.output
    assert "rule.schema.json: schema file not found" in outcome.output
    assert "Traceback" not in outcome.output


def test_missing_data_files_are_one_error_line_naming_the_setting(demo_services, demo_settings,
                                                                 tmp_path):
    outcome = cli.invoke(app, ["search", "text", "blender"],
                         env={"SOURCING_INDEX_DIR": str(demo_settings.index_dir),
                              "SOURCING_DATA_DIR": str(tmp_path)})
    assert outcome.exit_code == 2, outcome.output
    assert outcome.output.startswith(f"error: file not found: {tmp_path / 'trade'}")
    assert "(SOURCING_DATA_DIR)" in outcome.output and "Traceback" not in outcome.output


def test_bad_settings_are_one_line_each_naming_the_variable_or_the_option(tmp_path):
    outcome = cli.invoke(app, ["search", "text", "blender"],
                         env={"SOURCING_DEVICE": "tpu", "SOURCING_CATALOG_DIR": "/nonexistent"})
    assert outcome.exit_code == 2, outcome.output
    assert outcome.output.splitlines() == [
        "error: SOURCING_CATALOG_DIR: folder not found: /nonexistent",
        "SOURCING_DEVICE: must be auto, cpu, cuda, cuda:N (a GPU number) or mps (got 'tpu')"]
    option = cli.invoke(app, ["index", "build", "--out", str(tmp_path / "i"),
                              "--index-type", "foo"])
    assert option.exit_code == 2
    assert option.output.strip() == ("error: --index-type: Input should be 'auto', 'flat', "
                                     "'hnsw' or 'ivf' (got 'foo')")


def test_an_explicit_backend_wins_over_qdrant_url(tmp_path, refused_url):
    catalog, index = tmp_path / "catalog", tmp_path / "index"
    _write_catalog(catalog)
    env = {"QDRANT_URL": refused_url}
    built = cli.invoke(app, ["index", "build", "--catalog", str(catalog), "--out", str(index),
                             "--backend", "faiss", "--no-features"], env=env)
    assert built.exit_code == 0, built.output
    assert json.loads((index / "meta.json").read_text())["backend"] == "faiss"


def test_an_unreachable_qdrant_server_is_one_error_line_and_writes_nothing(
        tmp_path, quiet_client, refused_url):
    catalog, index = tmp_path / "catalog", tmp_path / "index"
    _write_catalog(catalog)
    url = refused_url
    outcome = cli.invoke(app, ["index", "build", "--catalog", str(catalog), "--out", str(index),
                               "--no-features"], env={"QDRANT_URL": url})
    assert outcome.exit_code == 2, outcome.output
    assert outcome.output.startswith(f"error: Qdrant server at {url} cannot be used:")
    assert "the index was not written" in " ".join(outcome.output.split())
    assert "Traceback" not in outcome.output and not index.exists()


def test_index_build_names_every_broken_catalog_photo_and_writes_nothing(tmp_path):
    catalog, index = tmp_path / "catalog", tmp_path / "index"
    _write_catalog(catalog)
    (catalog / "images" / "p0.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (catalog / "images" / "p2.jpg").write_bytes(b"")
    outcome = cli.invoke(app, ["index", "build", "--catalog", str(catalog), "--out", str(index),
                               "--no-features"])
    assert outcome.exit_code == 2, outcome.output
    lines = outcome.output.splitlines()
    first = lines.index("error: 2 catalog photos cannot be used:")  # after the progress bar
    assert lines[first + 1].startswith("  listings.csv:2: images: listing L1: ")
    assert lines[first + 2].startswith("  listings.csv:4: images: listing L3: ")
    assert lines[first + 3] == "the index was not written" and "Traceback" not in outcome.output
    assert not index.exists()
