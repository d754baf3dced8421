"""Computing and storing product embeddings.

Two entry points, both safe to run twice or at the same time (rows are claimed with
`FOR UPDATE SKIP LOCKED`, and a batch's vectors are replaced in the batch's own transaction):

- `embedding_process_pending`: the products marked `embedding_dirty`, for every version that needs
  vectors (the active one and any being built), then clears the flag.
- `embedding_backfill_version`: every active product that has no vectors yet for one version (a
  newly trained one, or a first embedding of the catalogue).

A photo that cannot be decoded is reported and left without a vector; the rest of the batch goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from PIL import Image

from catalog.bulk_copy import model_instances_copy
from catalog.models import Product, ProductImage
from catalog.photos import photo_open
from catalog.product_text import product_text
from catalog.selectors import PHOTO_ORDER, product_photos_in_order
from catalog.services import product_photo_colours_record
from lifecycle.conf import lifecycle_settings
from lifecycle.encoders import encoder_for_version
from lifecycle.models import ModelVersion, ProductEmbedding, TextFeatures
from lifecycle.photo_features import DatabaseFeatureStore
from mlcore.photo_colour import read_garment_colour
from mlcore.text_features import text_content_key

if TYPE_CHECKING:
    from mlcore.inference import Encoder

logger = logging.getLogger(__name__)


@dataclass
class EmbeddingReport:
    products: int = 0
    photos: int = 0
    failed_photos: list[tuple[int, str]] = field(default_factory=list)  # (photo id, reason)

    def add(self, other: EmbeddingReport) -> None:
        self.products += other.products
        self.photos += other.photos
        self.failed_photos.extend(other.failed_photos)


def _write_batch(*, version: ModelVersion, products: Sequence[Product]) -> EmbeddingReport:
    """Replace the version's vectors of these products. Runs inside the caller's transaction."""
    encoder = encoder_for_version(version)
    report = EmbeddingReport()
    product_ids = [product.pk for product in products]
    ProductEmbedding.objects.filter(model_version=version, product_id__in=product_ids).delete()
    embeddable = [product for product in products if product.is_active]
    report.products = len(embeddable)
    if not embeddable:
        return report

    photos = list(
        product_photos_in_order().filter(product__in=embeddable).order_by("product_id", *PHOTO_ORDER)
    )
    photos, photo_vectors = _photo_vectors(encoder=encoder, photos=photos, report=report)
    text_vectors = _text_vectors(encoder=encoder, texts=[product_text(product) for product in embeddable])
    rows = [
        ProductEmbedding(model_version=version, product=product, kind="text", embedding=vector)
        for product, vector in zip(embeddable, text_vectors, strict=True)
    ]
    rows += [
        ProductEmbedding(
            model_version=version, product_id=image.product_id, image=image, kind="image", embedding=vector
        )
        for image, vector in zip(photos, photo_vectors, strict=True)
    ]
    embeddings_insert(rows)
    report.photos = len(photos)
    return report


def embeddings_insert(rows: Sequence[ProductEmbedding]) -> None:
    """INSERT the rows (NumPy vectors) with one COPY (catalog.bulk_copy). bulk_create prepares every value
    through its field and builds one statement of them all, which cost more than storing the rows."""
    model_instances_copy(instances=rows, now=timezone.now())


def _text_vectors(*, encoder: Encoder, texts: list[str]) -> np.ndarray:
    """The texts' vectors. What the text tower's frozen part gives a text is kept (TextFeatures) and
    read back, so a text already embedded by any version that shares that part runs through this
    version's trained layers and projection only."""
    trunk = encoder.text_features_key
    if trunk is None:
        return encoder.encode_texts(texts)
    store = DatabaseFeatureStore(TextFeatures)
    keys = [text_content_key(text) for text in texts]
    found = store.get_many(trunk=trunk, keys=keys)
    missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
    if missing:
        computed = dict(zip(missing, encoder.text_features(list(missing.values())), strict=True))
        store.put_many(trunk=trunk, features=computed)
        found.update(computed)
    return encoder.encode_texts_from_features([found[key] for key in keys])


def _photo_vectors(
    *, encoder: Encoder, photos: list[ProductImage], report: EmbeddingReport
) -> tuple[list[ProductImage], np.ndarray]:
    """The photos that could be embedded and their vectors. With a fully frozen trunk, a photo whose
    pooled features are stored runs through the projection head only; otherwise a photo whose trunk
    prefix maps are stored is not even opened; the others go through the trunk once and what they give
    is kept. A photo that cannot be decoded is reported and left out."""
    store = DatabaseFeatureStore()
    pooled_key = encoder.pooled_key
    pooled: dict[str, np.ndarray] = {}
    if pooled_key:
        pooled = store.get_many(trunk=pooled_key, keys=[photo.content_sha256 for photo in photos])
    needing_maps = [photo for photo in photos if photo.content_sha256 not in pooled]
    with_maps, maps = _photo_prefix_maps(encoder=encoder, photos=needing_maps, report=report)
    if pooled_key is None:
        if not with_maps:
            return [], np.empty((0, encoder.dim), dtype=np.float32)
        if encoder.trunk_key is None:  # a trunk that trains: `maps` are already the photos' vectors
            return with_maps, maps
        return with_maps, encoder.encode_images_from_prefix_maps(maps)
    if with_maps:
        _keep(
            store,
            trunk=pooled_key,
            photos=with_maps,
            computed=encoder.pooled_from_prefix_maps(maps),
            into=pooled,
        )
    embeddable = [photo for photo in photos if photo.content_sha256 in pooled]
    if not embeddable:
        return [], np.empty((0, encoder.dim), dtype=np.float32)
    return embeddable, encoder.encode_images_from_pooled(
        np.stack([pooled[photo.content_sha256] for photo in embeddable])
    )


def _keep(
    store: DatabaseFeatureStore,
    *,
    trunk: str,
    photos: list[ProductImage],
    computed: np.ndarray,
    into: dict[str, np.ndarray],
) -> None:
    """Store what was computed for these photos under `trunk`, and add it to `into`."""
    new = {photo.content_sha256: value for photo, value in zip(photos, computed, strict=True)}
    store.put_many(trunk=trunk, features=new)
    into.update(new)


def _garment_colour(photo: ProductImage, image: Image.Image) -> str:
    """The colour read from the photo's pixels; "" (and the photo still embedded) if reading fails."""
    try:
        return read_garment_colour(image).name
    except Exception as error:  # noqa: BLE001 - the colour is a training aid; the vectors come first
        logger.warning("No garment colour read from photo %s: %s", photo.pk, error)
        return ""


def _photo_prefix_maps(
    *, encoder: Encoder, photos: list[ProductImage], report: EmbeddingReport
) -> tuple[list[ProductImage], np.ndarray]:
    """The photos that could be read and their trunk prefix maps (stored ones are not opened; computed
    ones are kept), or, for a trunk that trains, their vectors from the whole model."""
    store = DatabaseFeatureStore()
    trunk = encoder.trunk_key
    stored = store.get_many(trunk=trunk, keys=[photo.content_sha256 for photo in photos]) if trunk else {}
    embeddable: list[ProductImage] = []
    to_compute: list[ProductImage] = []
    opened: list[Image.Image] = []
    for photo in photos:
        if photo.content_sha256 in stored:
            embeddable.append(photo)
            continue
        try:
            opened.append(photo_open(photo))
        except Exception as error:  # noqa: BLE001 - any decoding failure fails this photo only
            logger.warning("Photo %s of product %s cannot be embedded: %s", photo.pk, photo.product_id, error)
            report.failed_photos.append((photo.pk, str(error)))
            continue
        embeddable.append(photo)
        to_compute.append(photo)
    # Read while the photo is decoded anyway; a trunk pass costs many times more.
    colours = {
        photo.pk: _garment_colour(photo, image) for photo, image in zip(to_compute, opened, strict=True)
    }
    product_photo_colours_record(colours={pk: colour for pk, colour in colours.items() if colour})
    if not embeddable:
        return [], np.empty((0,), dtype=np.float16)
    if trunk is None:
        return embeddable, encoder.encode_images(opened)
    if opened:
        _keep(store, trunk=trunk, photos=to_compute, computed=encoder.encode_prefix_maps(opened), into=stored)
    return embeddable, np.stack([stored[photo.content_sha256] for photo in embeddable])


def embedding_target_versions() -> list[ModelVersion]:
    return list(ModelVersion.objects.filter(status__in=ModelVersion.LIVE_STATUSES).order_by("id"))


def embedding_process_pending(
    *,
    batch_size: int | None = None,
    max_batches: int | None = None,
    on_batch: Callable[[EmbeddingReport], None] | None = None,
) -> EmbeddingReport:
    """Embed dirty products, a bounded batch per transaction, until none is left (or max_batches)."""
    batch_size = batch_size or lifecycle_settings.EMBED_BATCH_SIZE
    total = EmbeddingReport()
    batches = 0
    while max_batches is None or batches < max_batches:
        with transaction.atomic():
            products = list(
                Product.objects.select_for_update(skip_locked=True)
                .filter(embedding_dirty=True)
                .order_by("updated_at", "id")[:batch_size]
            )
            if not products:
                break
            versions = embedding_target_versions()
            batch = EmbeddingReport()
            for version in versions:
                batch.add(_write_batch(version=version, products=products))
            if not versions:
                # No model yet: the flags stay set so that the first model embeds these products.
                break
            Product.objects.filter(pk__in=[product.pk for product in products]).update(embedding_dirty=False)
            batch.products = len(products)
        total.add(batch)
        batches += 1
        if on_batch is not None:
            on_batch(batch)
    return total


def products_missing_vectors(version: ModelVersion) -> QuerySet[Product]:
    has_text = ProductEmbedding.objects.filter(model_version=version, kind="text", product=OuterRef("pk"))
    return Product.objects.filter(is_active=True).exclude(Exists(has_text))


def embedding_backfill_version(
    *,
    version: ModelVersion,
    batch_size: int | None = None,
    on_batch: Callable[[EmbeddingReport], None] | None = None,
) -> EmbeddingReport:
    """Embed every active product that has no vectors for `version`; resumes where a killed run stopped."""
    batch_size = batch_size or lifecycle_settings.EMBED_BACKFILL_BATCH_SIZE
    total = EmbeddingReport()
    # Products are walked in id order from where the last batch ended, and each batch keeps those that
    # have no vectors yet: asking the database for "the first products without vectors" instead reads
    # every product done so far once per batch, which grows with the square of the catalogue. Products
    # another transaction held when their turn came are found by one last look over the whole catalogue.
    after_id = 0
    looked_again = False
    while True:
        with transaction.atomic():
            candidates = list(
                Product.objects.filter(is_active=True, pk__gt=after_id)
                .select_for_update(skip_locked=True)
                .order_by("id")[:batch_size]
            )
            if not candidates:
                first_missing = products_missing_vectors(version).order_by("id").values_list("pk", flat=True)
                missing_id = None if looked_again else first_missing.first()
                if missing_id is None:
                    break
                after_id, looked_again = missing_id - 1, True
                continue
            after_id = candidates[-1].pk
            embedded = set(
                ProductEmbedding.objects.filter(
                    model_version=version, kind="text", product__in=candidates
                ).values_list("product_id", flat=True)
            )
            products = [product for product in candidates if product.pk not in embedded]
            if not products:
                continue
            batch = _write_batch(version=version, products=products)
            others_live = ModelVersion.objects.filter(status__in=ModelVersion.LIVE_STATUSES).exclude(
                pk=version.pk
            )
            if not others_live.exists():
                # The only version that needs vectors now has fresh ones: nothing is pending for these.
                Product.objects.filter(pk__in=[product.pk for product in products]).update(
                    embedding_dirty=False
                )
        total.add(batch)
        if on_batch is not None:
            on_batch(batch)
    return total


def embedding_mark_all_pending() -> int:
    """Mark every product for re-embedding by every live version; returns how many were marked.

    The active version's vectors are then replaced batch by batch, each in its own transaction, so
    search keeps serving throughout.
    """
    return Product.objects.update(embedding_dirty=True)


def embedding_refresh_texts(
    *, version: ModelVersion, batch_size: int | None = None, on_batch: Callable[[int], None] | None = None
) -> int:
    """Encode every active product's text again with `version` (after the product-text template
    changed) and replace its text vectors, one batch per transaction; photo vectors stay. Returns
    how many products were refreshed."""
    batch_size = batch_size or lifecycle_settings.EMBED_BATCH_SIZE
    encoder = encoder_for_version(version)
    refreshed, last_id = 0, 0
    while True:
        products = list(Product.objects.filter(is_active=True, pk__gt=last_id).order_by("pk")[:batch_size])
        if not products:
            return refreshed
        vectors = encoder.encode_texts([product_text(product) for product in products])
        with transaction.atomic():
            ProductEmbedding.objects.filter(
                model_version=version, kind=ProductEmbedding.Kind.TEXT, product__in=products
            ).delete()
            embeddings_insert(
                [
                    ProductEmbedding(model_version=version, product=product, kind="text", embedding=vector)
                    for product, vector in zip(products, vectors, strict=True)
                ]
            )
        refreshed += len(products)
        last_id = products[-1].pk
        if on_batch is not None:
            on_batch(len(products))
