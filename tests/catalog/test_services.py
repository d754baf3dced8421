import io
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from catalog.models import Product, ProductImage
from catalog.photos import photo_prepare
from catalog.services import (
    UpsertOutcome,
    product_create,
    product_photo_add,
    product_photo_delete,
    product_photos_set,
    product_update,
    product_upsert,
)
from tests.conftest import make_photo_bytes
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _photo(colour="navy", format="JPEG"):
    return photo_prepare(io.BytesIO(make_photo_bytes(colour=colour, format=format)))


def test_create_stores_photos_under_generated_names(_media_root):
    product = product_create(sku="A1", title="Navy Check Shirt", photos=[_photo(), _photo("red", "PNG")])

    images = list(product.images.all())
    assert [image.position for image in images] == [0, 1]
    assert images[0].image.name.startswith("products/") and images[0].image.name.endswith(".jpg")
    assert images[1].image.name.endswith(".png")
    assert all((Path(_media_root) / image.image.name).is_file() for image in images)
    assert product.embedding_dirty


def test_create_rejects_invalid_fields_and_leaves_nothing(_media_root):
    ProductFactory(sku="DUP")
    with pytest.raises(ValidationError):
        product_create(sku="DUP", title="Another", photos=[_photo()])
    with pytest.raises(ValidationError):
        product_create(sku="NEG", title="Negative", price=-1, photos=[_photo()])
    with pytest.raises(ValidationError, match="A SKU may contain only ASCII letters"):
        product_create(sku="A/B", title="Slashed", photos=[_photo()])
    assert Product.objects.count() == 1
    assert ProductImage.objects.count() == 0
    assert not any(Path(_media_root).rglob("*.jpg"))


def test_update_marks_dirty_only_when_embedded_text_changes():
    product = ProductFactory()
    Product.objects.filter(pk=product.pk).update(embedding_dirty=False)
    product.refresh_from_db()

    assert product_update(product=product, data={"price": 999}) is True
    product.refresh_from_db()
    assert not product.embedding_dirty

    assert product_update(product=product, data={"title": "Navy Slim Fit Shirt"}) is True
    product.refresh_from_db()
    assert product.embedding_dirty and product.title == "Navy Slim Fit Shirt"

    assert product_update(product=product, data={"title": "Navy Slim Fit Shirt"}) is False


def test_update_rejects_unknown_fields():
    with pytest.raises(ValueError, match="Unknown product fields: sizes"):
        product_update(product=ProductFactory(), data={"sizes": "M"})


def test_photo_add_and_delete_mark_dirty(_media_root, django_capture_on_commit_callbacks):
    product = ProductFactory()
    Product.objects.filter(pk=product.pk).update(embedding_dirty=False)

    image = product_photo_add(product=product, photo=_photo())
    product.refresh_from_db()
    assert product.embedding_dirty and image.position == 0
    stored = Path(_media_root) / image.image.name
    assert stored.is_file()

    Product.objects.filter(pk=product.pk).update(embedding_dirty=False)
    product_photo_delete(image=image)
    product.refresh_from_db()
    assert product.embedding_dirty
    assert not stored.exists()


def test_photos_set_keeps_unchanged_photos():
    product = product_create(sku="A2", title="Shirt", photos=[_photo()])
    original = product.images.get()
    assert product_photos_set(product=product, photos=[_photo()]) is False
    assert product.images.get().pk == original.pk

    assert product_photos_set(product=product, photos=[_photo("green")]) is True
    assert product.images.get().pk != original.pk


def test_upsert_creates_then_updates_then_leaves_alone():
    data = {"title": "Red Kurta", "colour": "Red"}
    assert product_upsert(sku="K1", data=data, photos=[_photo()]) is UpsertOutcome.CREATED
    assert product_upsert(sku="K1", data=data, photos=[_photo()]) is UpsertOutcome.UNCHANGED
    changed = {**data, "colour": "Maroon"}
    assert product_upsert(sku="K1", data=changed, photos=[_photo()]) is UpsertOutcome.UPDATED
    assert Product.objects.get(sku="K1").colour == "Maroon"
    assert Product.objects.count() == 1


def _many_upserts(count: int) -> list:
    from catalog.services import ProductUpsert

    colours = ["navy", "red", "white", "black", "green"]
    return [
        ProductUpsert(
            sku=f"M{index}",
            data={"title": f"Shirt {index}"},
            photos=[_photo(colours[index % 5]), _photo(colours[(index + 1) % 5], "PNG")],
        )
        for index in range(count)
    ]


def test_upsert_many_stores_each_products_photos_in_order(_media_root):
    from catalog.services import product_upsert_many

    items = _many_upserts(16)

    assert product_upsert_many(items=items) == [UpsertOutcome.CREATED] * len(items)
    for item in items:
        images = list(ProductImage.objects.filter(product__sku=item.sku).order_by("position"))
        assert [image.content_sha256 for image in images] == [photo.sha256 for photo in item.photos]
        assert all((Path(_media_root) / image.image.name).read_bytes() == photo.content
                   for image, photo in zip(images, item.photos, strict=True))  # fmt: skip


def test_upsert_many_that_fails_after_writing_files_leaves_no_file(_media_root, monkeypatch):
    from django.db import DatabaseError

    from catalog import services

    copy = services.model_instances_copy

    def copy_failing_on_images(*, instances, now):
        if instances and isinstance(instances[0], ProductImage):
            raise DatabaseError("the server closed the connection")
        return copy(instances=instances, now=now)

    monkeypatch.setattr(services, "model_instances_copy", copy_failing_on_images)
    with pytest.raises(DatabaseError):
        services.product_upsert_many(items=_many_upserts(16))

    assert Product.objects.count() == 0
    assert not [path for path in Path(_media_root).rglob("*") if path.is_file()]
