"""The feature stores in PostgreSQL: each photo's frozen-trunk output and each product text's frozen
MiniLM output, computed once.

Written when a photo is first embedded; read by every later embedding with a version that shares the
trunk and by retraining, so those run only the model's tail and head over stored maps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from django.db.models import Count, Exists, OuterRef, Sum
from django.db.models.functions import Length

from catalog.models import Product, ProductImage
from catalog.photos import photo_open
from catalog.product_text import product_text
from lifecycle.encoders import encoder_for_version
from lifecycle.models import KeptFeatures, ModelVersion, PhotoFeatures, TextFeatures
from mlcore.photo_features import features_from_bytes, features_to_bytes
from mlcore.text_features import text_content_key

logger = logging.getLogger(__name__)


class DatabaseFeatureStore:
    """mlcore.photo_features.PhotoFeatureStore over the PhotoFeatures table (or, given TextFeatures, the
    same over product texts)."""

    def __init__(self, table: type[KeptFeatures] = PhotoFeatures):
        self.table = table

    def get_many(self, *, trunk: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        rows = self.table._default_manager.filter(trunk=trunk, content_sha256__in=set(keys)).values_list(
            "content_sha256", "features"
        )
        return {key: features_from_bytes(bytes(data)) for key, data in rows}

    def put_many(self, *, trunk: str, features: Mapping[str, np.ndarray]) -> None:
        # Two workers may compute the same photo at once: the first row stays, both are the same pixels.
        # Sorted keys: two workers inserting overlapping batches take the rows' locks in one order.
        self.table._default_manager.bulk_create(
            [
                self.table(content_sha256=key, trunk=trunk, features=features_to_bytes(features[key]))
                for key in sorted(features)
            ],
            ignore_conflicts=True,
        )


def photo_features_prune() -> int:
    """Delete the features of photos no product holds any more; returns how many rows went."""
    held = ProductImage.objects.filter(content_sha256=OuterRef("content_sha256"))
    deleted, _ = PhotoFeatures.objects.exclude(Exists(held)).delete()
    return deleted


def text_features_prune(*, chunk: int = 5000) -> int:
    """Delete the kept features of texts no active product has any more (a title edited, a template
    changed, a product gone); returns how many rows went."""
    current = {
        text_content_key(product_text(product))
        for product in Product.objects.filter(is_active=True).iterator()
    }
    stale = [
        key for key in TextFeatures.objects.values_list("content_sha256", flat=True) if key not in current
    ]
    deleted = 0
    for start in range(0, len(stale), chunk):
        removed, _ = TextFeatures.objects.filter(content_sha256__in=stale[start : start + chunk]).delete()
        deleted += removed
    return deleted


def photo_features_storage() -> dict[str, float]:
    """Rows, bytes of feature data and bytes per photo (every kind kept for it: trunk prefix maps and,
    for fully frozen trunks, pooled features), for the benchmarks and the admin."""
    rows = PhotoFeatures.objects.count()
    photos = PhotoFeatures.objects.values("content_sha256").distinct().count()
    data_bytes = PhotoFeatures.objects.aggregate(total=Sum(Length("features")))["total"] or 0
    return {
        "rows": rows,
        "photos": photos,
        "bytes": float(data_bytes),
        "bytes_per_photo": data_bytes / photos if photos else 0.0,
    }


def text_features_storage() -> dict[str, float]:
    """Bytes per kept text, by what is kept (mlcore.text_features: `pooled`, or `layers<N>` hidden
    states), for the benchmarks."""
    per_kind: dict[str, list[int]] = {}
    rows = TextFeatures.objects.values_list("trunk").annotate(count=Count("id"), data=Sum(Length("features")))
    for trunk, count, data in rows:
        kind = trunk.split("-")[1]
        totals = per_kind.setdefault(kind, [0, 0])
        totals[0] += count
        totals[1] += data or 0
    return {kind: data / count for kind, (count, data) in per_kind.items() if count}


def photo_features_backfill(
    *, version: ModelVersion, batch_size: int = 64, on_batch: Callable[[int], None] | None = None
) -> int:
    """Compute and keep the trunk features of every photo that has none for `version`'s trunk (a
    catalogue embedded before the store existed); returns how many photos were computed. Photos
    that cannot be read are skipped: embedding reports them."""
    encoder = encoder_for_version(version)
    trunk = encoder.trunk_key
    if trunk is None:
        return 0
    have = PhotoFeatures.objects.filter(trunk=trunk, content_sha256=OuterRef("content_sha256"))
    photos = (
        ProductImage.objects.filter(product__is_active=True)
        .exclude(Exists(have))
        .order_by("content_sha256", "id")
    )
    computed, last_key, store = 0, "", DatabaseFeatureStore()
    while True:
        batch = list(photos.filter(content_sha256__gt=last_key).distinct("content_sha256")[:batch_size])
        if not batch:
            return computed
        last_key = batch[-1].content_sha256
        readable, opened = [], []
        for photo in batch:
            try:
                opened.append(photo_open(photo))
                readable.append(photo)
            except Exception:  # noqa: BLE001 - an unreadable photo is embedding's to report
                logger.warning("Photo %s cannot be read; no features kept for it", photo.pk)
        if opened:
            maps = encoder.encode_prefix_maps(opened)
            store.put_many(
                trunk=trunk,
                features={photo.content_sha256: value for photo, value in zip(readable, maps, strict=True)},
            )
        computed += len(readable)
        if on_batch is not None:
            on_batch(len(batch))
