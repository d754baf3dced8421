"""Writes to the catalogue. Views, admin, commands and tasks call these; none of them write directly.

Every write that changes what a product's embeddings are made from (its photos, or the text fields
in EMBEDDED_FIELDS) marks the product `embedding_dirty` in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from catalog.bulk_copy import model_instances_copy
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
            source_sha256=photo.source_sha256 or "",
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
        image.source_sha256 = photo.source_sha256 or ""
        image.garment_colour = ""
        image.save()
    # Its old vectors describe the old photo.
    image.embeddings.all().delete()
    _mark_dirty(image.product_id)
    transaction.on_commit(lambda: photo_delete_stored(old_name))
    return image


def product_photo_colours_record(*, colours: Mapping[int, str]) -> None:
    """Record the garment colour read from each photo (by ProductImage id). No product changes, so
    nothing is re-embedded."""
    images = [ProductImage(pk=pk, garment_colour=colour[:32]) for pk, colour in colours.items()]
    ProductImage.objects.bulk_update(images, ["garment_colour"], batch_size=1000)


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


@dataclass(frozen=True)
class ProductUpsert:
    """One product for `product_upsert_many`: what `product_upsert` takes, except that `photos` may be
    None for an existing product whose photos' sources are known unchanged (`photo_sources`, their
    ProductImage.source_sha256 in order): they are kept without being decoded again."""

    sku: str
    data: Mapping[str, Any]
    photos: Sequence[PreparedPhoto] | None
    photo_sources: Sequence[str] = ()


@dataclass
class _PlannedUpdate:
    product: Product
    fields: set[str]
    photos: Sequence[PreparedPhoto] | None  # None: photos stay as they are


def _kept_photos_check(item: ProductUpsert, current: Sequence[ProductImage]) -> None:
    if item.photos is None and [image.source_sha256 for image in current] != list(item.photo_sources):
        # The photos changed between the caller's look and this transaction (another import, the admin).
        raise ValidationError(
            "the product's photos changed while it was being imported; import it again", code="photos_changed"
        )


def _same_photos_sources_to_record(
    current: Sequence[ProductImage], photos: Sequence[PreparedPhoto]
) -> list[ProductImage] | None:
    """None when `photos` differ from the stored ones; else the stored images whose source hash is
    new (stored before source hashes were kept, or re-encoded the same from another file)."""
    if [image.content_sha256 for image in current] != [photo.sha256 for photo in photos]:
        return None
    stale = []
    for image, photo in zip(current, photos, strict=True):
        if photo.source_sha256 and image.source_sha256 != photo.source_sha256:
            image.source_sha256 = photo.source_sha256
            stale.append(image)
    return stale


@transaction.atomic
def product_upsert_many(*, items: Sequence[ProductUpsert]) -> list[UpsertOutcome | ValidationError]:
    """`product_upsert` for many products in one transaction, with a few queries for them all.

    Returns, for each item in order, its outcome or the ValidationError that kept it out (the other
    items are written). Any other error fails the whole call, and the transaction with it. Each sku
    may appear once.
    """
    skus = [item.sku for item in items]
    if len(set(skus)) != len(skus):
        raise ValueError("product_upsert_many takes each sku at most once")
    for item in items:
        _check_fields(item.data)
    existing = {product.sku: product for product in Product.objects.select_for_update().filter(sku__in=skus)}
    current_images: dict[int, list[ProductImage]] = defaultdict(list)
    product_ids = [product.pk for product in existing.values()]
    for image in ProductImage.objects.filter(product_id__in=product_ids).order_by(
        "product_id", "position", "id"
    ):
        current_images[image.product_id].append(image)

    results: list[UpsertOutcome | ValidationError | None] = [None] * len(items)
    created: list[tuple[Product, Sequence[PreparedPhoto]]] = []
    updates: list[_PlannedUpdate] = []
    sources_to_record: list[ProductImage] = []
    for index, item in enumerate(items):
        product = existing.get(item.sku)
        try:
            if product is None:
                if item.photos is None:
                    # Deleted since the caller found it with these photos.
                    raise ValidationError(
                        "the product was deleted while it was being imported; import it again",
                        code="product_deleted",
                    )
                product = Product(sku=item.sku, embedding_dirty=True, **item.data)
                # The sku was looked up above (under this transaction) and the price check is the
                # field's own validator: the per-row queries of unique and constraint checks are spared.
                product.full_clean(validate_unique=False, validate_constraints=False)
                created.append((product, item.photos))
                results[index] = UpsertOutcome.CREATED
                continue
            current = current_images.get(product.pk, [])
            _kept_photos_check(item, current)
            changed = {name for name, value in item.data.items() if getattr(product, name) != value}
            if changed:
                for name in changed:
                    setattr(product, name, item.data[name])
                product.full_clean(validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            results[index] = error
            continue
        new_photos = item.photos
        if new_photos is not None:
            stale = _same_photos_sources_to_record(current, new_photos)
            if stale is not None:
                sources_to_record.extend(stale)
                new_photos = None
        if changed or new_photos is not None:
            updates.append(_PlannedUpdate(product, changed, new_photos))
            results[index] = UpsertOutcome.UPDATED
        else:
            results[index] = UpsertOutcome.UNCHANGED

    with _delete_written_files_on_error() as written:
        _write_planned(created=created, updates=updates, written=written)
        if sources_to_record:
            ProductImage.objects.bulk_update(sources_to_record, ["source_sha256"])
    return [result for result in results if result is not None]


def _write_planned(
    *,
    created: list[tuple[Product, Sequence[PreparedPhoto]]],
    updates: list[_PlannedUpdate],
    written: list[str],
) -> None:
    now = timezone.now()
    new_products = [product for product, _ in created]
    model_instances_copy(instances=new_products, now=now)
    if new_products:
        ids = dict(
            Product.objects.filter(sku__in=[product.sku for product in new_products]).values_list("sku", "id")
        )
        for product in new_products:
            product.pk = ids[product.sku]
            product._state.adding = False
    new_images: list[ProductImage] = []
    for product, photos in created:
        new_images.extend(_images_for(product, photos, written))

    replaced = [update for update in updates if update.photos is not None]
    old_names: list[str] = []
    if replaced:
        old_images = ProductImage.objects.filter(product__in=[update.product for update in replaced])
        old_names = list(old_images.values_list("image", flat=True))
        # Their vectors go with them (cascade): they describe the old photos.
        old_images.delete()
    for update in replaced:
        new_images.extend(_images_for(update.product, update.photos or (), written))
    model_instances_copy(instances=new_images, now=now)

    fields: set[str] = set()
    for update in updates:
        fields |= update.fields
        update.product.updated_at = now
        if update.photos is not None or update.fields & EMBEDDED_FIELDS:
            update.product.embedding_dirty = True
            fields.add("embedding_dirty")
    if updates:
        Product.objects.bulk_update([update.product for update in updates], sorted(fields | {"updated_at"}))
    if created or "embedding_dirty" in fields:
        embedding_request_on_commit()
    if old_names:
        transaction.on_commit(lambda: _delete_stored(old_names))


def _images_for(product: Product, photos: Sequence[PreparedPhoto], written: list[str]) -> list[ProductImage]:
    # No full_clean: every value is generated here or measured by catalog.photos, within the fields.
    images = []
    for position, photo in enumerate(photos):
        # A photo an import's worker stored already is the importer's to delete if this write fails.
        name = photo.stored_name or photo_store(photo)
        if not photo.stored_name:
            written.append(name)
        images.append(
            ProductImage(
                product=product,
                image=name,
                position=position,
                width=photo.width,
                height=photo.height,
                content_sha256=photo.sha256,
                source_sha256=photo.source_sha256 or "",
            )
        )
    return images
