"""Writes to the catalogue. Views, admin, commands and tasks call these; none of them write directly.

Every write that changes what a product's embeddings are made from (its photos, or the text fields
in EMBEDDED_FIELDS) marks the product `embedding_dirty` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import Any

from django.db import transaction

from catalog.models import Product, ProductImage
from catalog.photos import PreparedPhoto, photo_delete_stored, photo_store
from catalog.signals import embedding_request_on_commit

# The fields the text tower reads, and is_active (an inactive product leaves the index).
EMBEDDED_FIELDS = frozenset(
    {"title", "description", "brand", "colour", "gender", "article_type", "sub_category", "is_active"}
)
EDITABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        "brand",
        "gender",
        "colour",
        "master_category",
        "sub_category",
        "article_type",
        "season",
        "usage",
        "price",
        "currency",
        "attributes",
        "is_active",
    }
)


class UpsertOutcome(Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@contextmanager
def _delete_written_files_on_error() -> Iterator[list[str]]:
    # The database rolls back by itself; files written for the failed change must be removed by hand.
    written: list[str] = []
    try:
        yield written
    except BaseException:
        for name in written:
            photo_delete_stored(name)
        raise


def _mark_dirty(product_id: int) -> None:
    Product.objects.filter(pk=product_id).update(embedding_dirty=True)
    embedding_request_on_commit()


def _check_fields(data: Mapping[str, Any]) -> None:
    unknown = set(data) - EDITABLE_FIELDS
    if unknown:
        raise ValueError(f"Unknown product fields: {', '.join(sorted(unknown))}")


def _add_photos(
    product: Product, photos: Sequence[PreparedPhoto], written: list[str], start: int = 0
) -> None:
    for offset, photo in enumerate(photos):
        name = photo_store(photo)
        written.append(name)
        image = ProductImage(
            product=product,
            image=name,
            position=start + offset,
            width=photo.width,
            height=photo.height,
            content_sha256=photo.sha256,
        )
        image.full_clean(exclude=["product"])
        image.save()


@transaction.atomic
def product_create(*, sku: str, photos: Sequence[PreparedPhoto] = (), **fields: Any) -> Product:
    _check_fields(fields)
    product = Product(sku=sku, embedding_dirty=True, **fields)
    product.full_clean()
    with _delete_written_files_on_error() as written:
        product.save()
        _add_photos(product, photos, written)
    embedding_request_on_commit()
    return product


@transaction.atomic
def product_update(*, product: Product, data: Mapping[str, Any]) -> bool:
    """Apply `data` to the product. Returns whether anything changed."""
    _check_fields(data)
    changed = {name for name, value in data.items() if getattr(product, name) != value}
    if not changed:
        return False
    for name in changed:
        setattr(product, name, data[name])
    product.full_clean()
    if changed & EMBEDDED_FIELDS:
        product.embedding_dirty = True
        embedding_request_on_commit()
    product.save()
    return True


@transaction.atomic
def product_save(*, product: Product, changed_fields: Sequence[str] = ()) -> Product:
    """Save a product whose fields were set by a form (the admin). `changed_fields` from the form."""
    product.full_clean()
    if product.pk is None or set(changed_fields) & EMBEDDED_FIELDS:
        product.embedding_dirty = True
        embedding_request_on_commit()
    product.save()
    return product


@transaction.atomic
def product_photo_add(*, product: Product, photo: PreparedPhoto, position: int | None = None) -> ProductImage:
    if position is None:
        last = product.images.order_by("-position").values_list("position", flat=True).first()
        position = 0 if last is None else last + 1
    with _delete_written_files_on_error() as written:
        _add_photos(product, [photo], written, start=position)
    _mark_dirty(product.pk)
    product.embedding_dirty = True
    return product.images.get(image=written[0])


@transaction.atomic
def product_photo_replace(*, image: ProductImage, photo: PreparedPhoto) -> ProductImage:
    old_name = image.image.name
    with _delete_written_files_on_error():
        image.image.name = photo_store(photo)
        image.width, image.height, image.content_sha256 = photo.width, photo.height, photo.sha256
        image.save()
    # Its old vectors describe the old photo.
    image.embeddings.all().delete()
    _mark_dirty(image.product_id)
    transaction.on_commit(lambda: photo_delete_stored(old_name))
    return image


def product_photo_move(*, image: ProductImage, position: int) -> ProductImage:
    """Change where a photo shows among its product's; the photo and its vectors stay the same."""
    if position != image.position:
        image.position = position
        image.full_clean(exclude=["image"])
        ProductImage.objects.filter(pk=image.pk).update(position=position)
    return image


@transaction.atomic
def product_photo_delete(*, image: ProductImage) -> None:
    name = image.image.name
    product_id = image.product_id
    image.delete()
    _mark_dirty(product_id)
    transaction.on_commit(lambda: photo_delete_stored(name))


@transaction.atomic
def product_photos_set(*, product: Product, photos: Sequence[PreparedPhoto]) -> bool:
    """Make the product's photos exactly `photos`, in order. Unchanged photos are kept as they are.

    Returns whether anything changed.
    """
    current = list(product.images.order_by("position", "id"))
    if [image.content_sha256 for image in current] == [photo.sha256 for photo in photos]:
        return False
    old_names = [image.image.name for image in current]
    product.images.all().delete()
    with _delete_written_files_on_error() as written:
        _add_photos(product, photos, written)
    _mark_dirty(product.pk)
    product.embedding_dirty = True
    transaction.on_commit(lambda: _delete_stored(old_names))
    return True


def _delete_stored(names: Sequence[str]) -> None:
    for name in names:
        photo_delete_stored(name)


@transaction.atomic
def product_upsert(*, sku: str, data: Mapping[str, Any], photos: Sequence[PreparedPhoto]) -> UpsertOutcome:
    """Create the product with this sku, or bring the existing one to `data` and `photos`."""
    product = Product.objects.select_for_update().filter(sku=sku).first()
    if product is None:
        product_create(sku=sku, photos=photos, **data)
        return UpsertOutcome.CREATED
    fields_changed = product_update(product=product, data=data)
    photos_changed = product_photos_set(product=product, photos=photos)
    return UpsertOutcome.UPDATED if fields_changed or photos_changed else UpsertOutcome.UNCHANGED
