"""The photo feature store in PostgreSQL: each photo's frozen-trunk output, computed once.

Written when a photo is first embedded; read by every later embedding with a version that shares the
trunk and by retraining, so those run only the model's tail and head over stored maps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from django.db.models import Exists, OuterRef, Sum
from django.db.models.functions import Length

from catalog.models import ProductImage
from lifecycle.models import PhotoFeatures
from mlcore.photo_features import features_from_bytes, features_to_bytes


class DatabaseFeatureStore:
    """mlcore.photo_features.PhotoFeatureStore over the PhotoFeatures table."""

    def get_many(self, *, trunk: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        rows = PhotoFeatures.objects.filter(trunk=trunk, content_sha256__in=set(keys)).values_list(
            "content_sha256", "features"
        )
        return {key: features_from_bytes(bytes(data)) for key, data in rows}

    def put_many(self, *, trunk: str, features: Mapping[str, np.ndarray]) -> None:
        # Two workers may compute the same photo at once: the first row stays, both are the same pixels.
        PhotoFeatures.objects.bulk_create(
            [
                PhotoFeatures(content_sha256=key, trunk=trunk, features=features_to_bytes(value))
                for key, value in features.items()
            ],
            ignore_conflicts=True,
        )


def photo_features_prune() -> int:
    """Delete the features of photos no product holds any more; returns how many rows went."""
    held = ProductImage.objects.filter(content_sha256=OuterRef("content_sha256"))
    deleted, _ = PhotoFeatures.objects.exclude(Exists(held)).delete()
    return deleted


def photo_features_storage() -> dict[str, float]:
    """Rows, bytes of feature data and bytes per photo, for the benchmarks and the admin."""
    rows = PhotoFeatures.objects.count()
    data_bytes = PhotoFeatures.objects.aggregate(total=Sum(Length("features")))["total"] or 0
    return {"rows": rows, "bytes": float(data_bytes), "bytes_per_photo": data_bytes / rows if rows else 0.0}
