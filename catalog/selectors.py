"""Reads of the catalogue."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from catalog.models import ModelVersion, Product, ProductImage


def product_list_with_primary_photo(*, include_inactive: bool = False) -> QuerySet[Product]:
    """Products, each annotated with `primary_photo`, the stored name of its first photo."""
    primary = ProductImage.objects.filter(product=OuterRef("pk")).order_by("position", "id")
    products = Product.objects.all() if include_inactive else Product.objects.filter(is_active=True)
    return products.annotate(primary_photo=Subquery(primary.values("image")[:1]))


def model_version_get_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
