"""The text feature store: a product text goes through MiniLM's frozen part once, whatever the version."""

import numpy as np
import pytest

from catalog.product_text import product_text
from catalog.services import product_create, product_update
from lifecycle.embedding_pipeline import embedding_process_pending
from lifecycle.model_versions import (
    model_version_activate,
    model_version_build,
    model_version_register_checkpoint,
)
from lifecycle.models import ProductEmbedding, TextFeatures
from lifecycle.photo_features import text_features_prune
from mlcore.inference import Encoder
from mlcore.text_features import text_content_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="session", params=[2, 0], ids=["last-2-layers-trained", "frozen-text-tower"])
def minilm_model_path(request, tmp_path_factory):
    """A small untrained model over the real MiniLM, its last layers trained or none."""
    from mlcore.checkpoint import save_checkpoint
    from mlcore.config import ModelConfig
    from mlcore.model import create_model

    config = ModelConfig(
        image_size=64,
        text_branch="bert",
        embed_dim=32,
        text_trainable_layers=request.param,
        text_max_length=16,
    )
    folder = tmp_path_factory.mktemp("models") / f"minilm-{request.param}"
    save_checkpoint(create_model(config), folder, name=folder.name)
    return folder


def _text_vector(version, product) -> np.ndarray:
    row = ProductEmbedding.objects.get(model_version=version, product=product, kind="text")
    return np.asarray(row.embedding, dtype=np.float32)


def test_kept_text_features_give_the_vectors_the_whole_tower_gives(minilm_model_path):
    encoder = Encoder.load(minilm_model_path)
    texts = ["Navy check shirt", "Women black skinny jeans with a long description that is cut", "x"]

    from_features = encoder.encode_texts_from_features(encoder.text_features(texts))

    assert np.allclose(from_features, encoder.encode_texts(texts), atol=2e-3)


def test_a_texts_features_are_computed_once_and_serve_every_version(minilm_model_path, monkeypatch):
    shirt = product_create(sku="T1", title="Navy check shirt")
    jeans = product_create(sku="T2", title="Black skinny jeans")
    first = model_version_register_checkpoint(path=minilm_model_path, name="first")
    model_version_build(version=first)
    assert TextFeatures.objects.count() == 2

    # A second version sharing the frozen part reads them: MiniLM's frozen part does not run again.
    def frozen_part_runs(self, texts):
        raise AssertionError(f"computed again: {texts}")

    monkeypatch.setattr(Encoder, "text_features", frozen_part_runs)
    second = model_version_register_checkpoint(path=minilm_model_path, name="second")
    model_version_build(version=second)

    assert TextFeatures.objects.count() == 2
    assert np.allclose(_text_vector(second, shirt), _text_vector(first, shirt), atol=1e-3)
    assert not np.allclose(_text_vector(second, shirt), _text_vector(second, jeans), atol=1e-3)


def test_a_changed_text_is_computed_again(minilm_model_path):
    product = product_create(sku="T3", title="Navy check shirt")
    version = model_version_register_checkpoint(path=minilm_model_path, name="v")
    model_version_build(version=version)
    model_version_activate(version=version)
    before = _text_vector(version, product)

    product_update(product=product, data={"title": "Red floral dress"})
    embedding_process_pending()

    assert TextFeatures.objects.count() == 2  # the old text's and the new one's
    assert not np.allclose(_text_vector(version, product), before, atol=1e-3)
    # Pruning drops the features of texts no product has any more, and only those.
    assert text_features_prune() == 1
    assert TextFeatures.objects.get().content_sha256 == text_content_key(product_text(product))
