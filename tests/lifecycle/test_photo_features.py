"""The feature store in PostgreSQL: a photo goes through the frozen trunk once, whatever the version."""

import io
from pathlib import Path

import numpy as np
import pytest

from catalog.photos import photo_prepare
from catalog.services import product_create, product_photo_replace
from lifecycle.embedding_pipeline import embedding_process_pending
from lifecycle.model_versions import (
    model_version_activate,
    model_version_build,
    model_version_register_checkpoint,
)
from lifecycle.models import PhotoFeatures, ProductEmbedding
from lifecycle.photo_features import photo_features_backfill, photo_features_prune, photo_features_storage
from tests.conftest import make_photo_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def _product(sku: str, colour: str):
    return product_create(
        sku=sku, title=f"{colour} shirt", photos=[photo_prepare(io.BytesIO(make_photo_bytes(colour=colour)))]
    )


def _photo_vector(version, product) -> np.ndarray:
    row = ProductEmbedding.objects.get(model_version=version, product=product, kind="image")
    return np.asarray(row.embedding, dtype=np.float32)


def test_a_photos_features_are_computed_once_and_serve_every_version(tiny_model_path, _media_root):
    navy, red = _product("F1", "navy"), _product("F2", "red")
    first = model_version_register_checkpoint(path=tiny_model_path, name="first")
    model_version_build(version=first)
    assert PhotoFeatures.objects.count() == 2
    assert set(PhotoFeatures.objects.values_list("content_sha256", flat=True)) == {
        navy.images.get().content_sha256,
        red.images.get().content_sha256,
    }

    # The photo files are gone: a second version can only have its vectors from the stored features.
    for path in Path(_media_root).rglob("*.jpg"):
        path.unlink()
    second = model_version_register_checkpoint(path=tiny_model_path, name="second")
    report = model_version_build(version=second)

    assert report.photos == 2 and report.failed_photos == []
    assert PhotoFeatures.objects.count() == 2
    assert np.allclose(_photo_vector(second, navy), _photo_vector(first, navy), atol=1e-3)
    assert not np.allclose(_photo_vector(second, navy), _photo_vector(second, red), atol=1e-3)


def test_a_changed_photo_is_computed_again(tiny_model_path):
    product = _product("F3", "navy")
    version = model_version_register_checkpoint(path=tiny_model_path, name="v")
    model_version_build(version=version)
    model_version_activate(version=version)
    before = _photo_vector(version, product)

    product_photo_replace(
        image=product.images.get(), photo=photo_prepare(io.BytesIO(make_photo_bytes(colour="yellow")))
    )
    embedding_process_pending()

    assert PhotoFeatures.objects.count() == 2  # the old photo's and the new one's
    assert PhotoFeatures.objects.filter(content_sha256=product.images.get().content_sha256).exists()
    assert not np.allclose(_photo_vector(version, product), before, atol=1e-3)
    # Pruning drops the features no photo holds any more, and only those.
    assert photo_features_prune() == 1
    assert list(PhotoFeatures.objects.values_list("content_sha256", flat=True)) == [
        product.images.get().content_sha256
    ]
    storage = photo_features_storage()
    assert storage["rows"] == 1 and storage["bytes_per_photo"] > 0


def test_a_catalogue_embedded_before_the_store_gets_its_features_once(tiny_model_path):
    _product("B1", "navy"), _product("B2", "navy"), _product("B3", "red")  # B1 and B2: the same bytes
    version = model_version_register_checkpoint(path=tiny_model_path, name="older")
    model_version_build(version=version)
    PhotoFeatures.objects.all().delete()

    assert photo_features_backfill(version=version) == 2  # one per distinct photo
    assert PhotoFeatures.objects.count() == 2
    assert photo_features_backfill(version=version) == 0


def test_a_frozen_trunk_keeps_pooled_features_and_a_new_version_runs_only_its_heads(
    tiny_frozen_trunk_model_path, _media_root
):
    from mlcore.inference import Encoder

    navy, red = _product("P1", "navy"), _product("P2", "red")
    first = model_version_register_checkpoint(path=tiny_frozen_trunk_model_path, name="first")
    model_version_build(version=first)
    encoder = Encoder.load(tiny_frozen_trunk_model_path, device="cpu")
    assert set(PhotoFeatures.objects.values_list("trunk", flat=True)) == {
        encoder.trunk_key,
        encoder.pooled_key,
    }
    # The vector from stored pooled features is the one the whole model gives the photo.
    with navy.images.get().image.open("rb") as handle:
        from PIL import Image

        whole_model = encoder.encode_images([Image.open(handle).convert("RGB")])[0]
    assert np.allclose(_photo_vector(first, navy), whole_model, atol=2e-3)

    # No photo files and no prefix maps: a second version has its vectors from the pooled features.
    for path in Path(_media_root).rglob("*.jpg"):
        path.unlink()
    PhotoFeatures.objects.filter(trunk=encoder.trunk_key).delete()
    second = model_version_register_checkpoint(path=tiny_frozen_trunk_model_path, name="second")
    report = model_version_build(version=second)

    assert report.photos == 2 and report.failed_photos == []
    assert np.allclose(_photo_vector(second, navy), _photo_vector(first, navy), atol=1e-3)
    assert not np.allclose(_photo_vector(second, navy), _photo_vector(second, red), atol=1e-3)
    assert photo_features_storage()["photos"] == 2
