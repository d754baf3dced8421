"""Reads of the catalogue."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from catalog.models import ModelVersion, Product, ProductImage


def product_list_with_primary_photo() -> QuerySet[Product]:
    """Active products, each annotated with `primary_photo`, the stored name of its first photo."""
    primary = ProductImage.objects.filter(product=OuterRef("pk")).order_by("position", "id")
    return Product.objects.filter(is_active=True).annotate(
        primary_photo=Subquery(primary.values("image")[:1])
    )


def model_version_get_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
