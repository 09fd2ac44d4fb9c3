"""The open_clip embedder loads a local checkpoint file through the same path a user's
downloaded weights take. The tests write a tiny architecture's checkpoint themselves."""

import json

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from retrieval.embedders.clip import ClipEmbedder  # noqa: E402

TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    (folder / "Tiny-Test.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(folder)
    torch.manual_seed(0)
    model, _, _ = open_clip.create_model_and_transforms("Tiny-Test", pretrained=None)
    path = folder / "tiny-test.pt"
    torch.save(model.state_dict(), path)
    return path


def test_loads_checkpoint_and_embeds_images_and_text(checkpoint):
    embedder = ClipEmbedder("Tiny-Test", pretrained=str(checkpoint), device="cpu", batch_size=2)
    assert embedder.name == "clip:Tiny-Test:file-tiny-test"
    assert embedder.dim == 32
    images = [Image.new("RGB", (80, 60), colour) for colour in ("red", "blue", "white")]
    vectors = embedder.embed_images(images)
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    texts = embedder.embed_texts(["a red hoodie", "an electric kettle"])
    assert texts.shape == (2, 32)
    assert np.allclose(np.linalg.norm(texts, axis=1), 1.0, atol=1e-5)


def test_checkpoint_weights_are_the_ones_loaded(checkpoint):
    """Two loads of the same file give the same vectors; a different init does not."""
    image = [Image.new("RGB", (64, 64), "orange")]
    first = ClipEmbedder("Tiny-Test", pretrained=str(checkpoint), device="cpu").embed_images(image)
    second = ClipEmbedder("Tiny-Test", pretrained=str(checkpoint), device="cpu").embed_images(image)
    assert np.allclose(first, second)
    torch.manual_seed(123)
    other = open_clip.create_model_and_transforms("Tiny-Test", pretrained=None)[0]
    other_path = checkpoint.parent / "other.pt"
    torch.save(other.state_dict(), other_path)
    third = ClipEmbedder("Tiny-Test", pretrained=str(other_path), device="cpu").embed_images(image)
    assert not np.allclose(first, third)


def test_missing_checkpoint_is_a_clear_error(tmp_path, checkpoint):
    embedder = ClipEmbedder("Tiny-Test", pretrained=str(tmp_path / "nope.pt"), device="cpu")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        embedder.embed_images([Image.new("RGB", (64, 64))])
