import io

import numpy as np
import pytest

from catalog.models import Product
from catalog.photos import photo_prepare
from catalog.services import product_create, product_update
from lifecycle.embedding_pipeline import embedding_process_pending
from lifecycle.model_versions import (
    ModelVersionError,
    model_version_activate,
    model_version_build,
    model_version_prune,
    model_version_register_checkpoint,
    model_version_rollback,
)
from lifecycle.models import ModelVersion, ProductEmbedding
from tests.conftest import make_photo_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def _product(sku, colour="navy"):
    return product_create(
        sku=sku,
        title=f"{colour} shirt {sku}",
        photos=[photo_prepare(io.BytesIO(make_photo_bytes(colour=colour)))],
    )


def test_build_embeds_every_product_once_and_activates(tiny_model_path):
    products = [_product(f"E{i}", colour) for i, colour in enumerate(["navy", "red", "green"])]
    version = model_version_register_checkpoint(path=tiny_model_path, name="tiny-1")

    report = model_version_build(version=version)
    assert report.products == 3 and report.photos == 3
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.READY and version.progress["embedded"] == 3
    model_version_activate(version=version)

    rows = ProductEmbedding.objects.filter(model_version=version)
    assert rows.filter(kind="text").count() == 3 and rows.filter(kind="image").count() == 3
    vector = np.asarray(rows.filter(kind="image").first().embedding, dtype=np.float32)
    assert vector.shape == (32,) and abs(np.linalg.norm(vector) - 1) < 1e-2
    assert ProductEmbedding.objects.filter(model_version=version).count() == 6
    assert {product.pk for product in products} == set(rows.values_list("product_id", flat=True))


def test_pending_products_are_embedded_for_every_live_version(tiny_model_path):
    _product("P1")
    serving = model_version_register_checkpoint(path=tiny_model_path, name="serving")
    model_version_build(version=serving)
    model_version_activate(version=serving)
    Product.objects.update(embedding_dirty=False)

    changed = Product.objects.get(sku="P1")
    product_update(product=changed, data={"title": "navy slim fit shirt"})
    new = _product("P2", "red")
    report = embedding_process_pending()

    assert report.products == 2
    assert not Product.objects.filter(embedding_dirty=True).exists()
    assert ProductEmbedding.objects.filter(model_version=serving, product=new, kind="image").count() == 1
    assert ProductEmbedding.objects.filter(model_version=serving).count() == 4
    assert embedding_process_pending().products == 0


def test_without_a_model_products_stay_pending():
    _product("N1")
    assert embedding_process_pending().products == 0
    assert Product.objects.get(sku="N1").embedding_dirty


def test_a_corrupt_stored_photo_fails_alone(tiny_model_path, _media_root):
    good, bad = _product("C1"), _product("C2", "red")
    stored = bad.images.get()
    (_media_root / stored.image.name).write_bytes(b"broken")
    version = model_version_register_checkpoint(path=tiny_model_path, name="corrupt")

    report = model_version_build(version=version)
    assert [photo_id for photo_id, _ in report.failed_photos] == [stored.pk]
    assert ProductEmbedding.objects.filter(model_version=version, kind="image").get().product_id == good.pk
    assert ProductEmbedding.objects.filter(model_version=version, kind="text").count() == 2


def test_activate_rollback_and_prune(tiny_model_path):
    _product("R1")
    first = model_version_register_checkpoint(path=tiny_model_path, name="first")
    model_version_build(version=first)
    model_version_activate(version=first)
    second = model_version_register_checkpoint(path=tiny_model_path, name="second")
    with pytest.raises(ModelVersionError, match="only a ready"):
        model_version_activate(version=second)
    model_version_build(version=second)
    assert model_version_activate(version=second).pk == first.pk
    assert ModelVersion.objects.get(status="active").pk == second.pk

    assert model_version_rollback().pk == first.pk
    assert ModelVersion.objects.get(status="active").pk == first.pk
    assert model_version_prune(keep=0) == ["second"]
    assert not ProductEmbedding.objects.filter(model_version=second).exists()
    with pytest.raises(ModelVersionError, match="not fully embedded"):
        model_version_activate(version=ModelVersion.objects.get(pk=second.pk))


def test_building_the_only_live_version_leaves_nothing_pending(tiny_model_path):
    _product("F1")
    first = model_version_register_checkpoint(path=tiny_model_path, name="only")
    model_version_build(version=first)
    assert not Product.objects.filter(embedding_dirty=True).exists()
    assert embedding_process_pending().products == 0


def test_text_vectors_read_the_product_text_and_follow_a_new_template(tiny_model_path, settings):
    from django.core.management import call_command

    from lifecycle.encoders import encoder_for_version

    product = product_create(
        sku="TXT1",
        title="Juno Jacket",
        colour="Blue",
        gender="Women",
        article_type="Jackets",
        description="A light shell for windy runs. Machine wash.",
        photos=[photo_prepare(io.BytesIO(make_photo_bytes()))],
    )
    version = model_version_register_checkpoint(path=tiny_model_path, name="tiny-text")
    model_version_build(version=version)
    model_version_activate(version=version)
    encoder = encoder_for_version(version)

    def stored_text_vector() -> np.ndarray:
        row = ProductEmbedding.objects.get(model_version=version, product=product, kind="text")
        return np.asarray(row.embedding, dtype=np.float32)

    def encoded(text: str) -> np.ndarray:
        return encoder.encode_texts([text])[0]

    full_text = "Juno Jacket. Women Blue Jackets. A light shell for windy runs. Machine wash."
    assert np.allclose(stored_text_vector(), encoded(full_text), atol=2e-3)  # halfvec precision
    photo_rows = ProductEmbedding.objects.filter(model_version=version, kind="image")
    photo_ids = list(photo_rows.values_list("pk", flat=True))

    settings.PRODUCT_SEARCH_PRODUCT_TEXT_TEMPLATE = "{title}"
    call_command("embed", "--texts", "--no-progress")

    assert np.allclose(stored_text_vector(), encoded("Juno Jacket"), atol=2e-3)
    assert not np.allclose(encoded("Juno Jacket"), encoded(full_text), atol=2e-3)
    # The photo vectors were left alone.
    assert list(photo_rows.values_list("pk", flat=True)) == photo_ids


def test_backfill_embeds_what_is_missing_and_comes_back_for_a_held_product(tiny_model_path):
    import psycopg
    from django.db import connection

    from lifecycle.embedding_pipeline import embedding_backfill_version
    from tests.lifecycle.conftest import database_url

    products = [_product(f"B{i}") for i in range(7)]
    version = model_version_register_checkpoint(path=tiny_model_path, name="backfill")
    model_version_build(version=version)
    done_before = dict(
        ProductEmbedding.objects.filter(model_version=version, kind="text").values_list("product_id", "pk")
    )
    # A killed run leaves vectors for some products: only the others are embedded again.
    ProductEmbedding.objects.filter(model_version=version, product__in=products[1:6:2]).delete()
    # Another transaction holds the first missing product while the batches pass it.
    held = products[1]
    holder = psycopg.connect(database_url())
    holder.execute("BEGIN")
    holder.execute("SELECT id FROM catalog_product WHERE id = %s FOR UPDATE", (held.pk,))
    batches: list[int] = []

    def release_after_first_batch(batch):
        batches.append(batch.products)
        if len(batches) == 1:
            holder.rollback()

    report = embedding_backfill_version(version=version, batch_size=2, on_batch=release_after_first_batch)
    holder.close()
    connection.close()
    assert report.products == 3 and sum(batches) == 3
    rows = ProductEmbedding.objects.filter(model_version=version, kind="text")
    assert set(rows.values_list("product_id", flat=True)) == {product.pk for product in products}
    # Products that had their vectors kept them (same rows), not rewritten.
    kept = {products[0].pk, products[2].pk, products[4].pk, products[6].pk}
    assert {pk for pk, row in rows.values_list("product_id", "pk") if done_before[pk] == row} == kept


def test_embedding_records_the_garment_colour_read_from_each_new_photo(tiny_model_path, monkeypatch):
    from catalog.models import ProductImage
    from lifecycle import embedding_pipeline

    red, green = _product("G1", "red"), _product("G2", "green")
    version = model_version_register_checkpoint(path=tiny_model_path, name="colours")
    model_version_build(version=version)

    colours = dict(ProductImage.objects.values_list("product_id", "garment_colour"))
    assert colours == {red.pk: "Red", green.pk: "Green"}

    # A reader that fails costs the colour, never the photo's vectors.
    def failing(image):
        raise ValueError("unreadable")

    monkeypatch.setattr(embedding_pipeline, "read_garment_colour", failing)
    third = _product("G3", "yellow")
    second = model_version_register_checkpoint(path=tiny_model_path, name="colours-2")
    report = model_version_build(version=second)

    assert report.failed_photos == [] and third.images.get().garment_colour == ""
    assert ProductEmbedding.objects.filter(model_version=second, product=third, kind="image").exists()
