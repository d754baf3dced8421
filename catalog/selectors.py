"""Reads of the catalogue."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from catalog.models import Product, ProductImage

# A product's photos in display order; the first is its primary photo.
PHOTO_ORDER = ("position", "id")
# The same choice for raw SQL over `catalog_product p`: the stored name of the primary photo.
PRIMARY_PHOTO_SQL = (
    "(SELECT i.image FROM catalog_productimage i WHERE i.product_id = p.id ORDER BY i.position, i.id LIMIT 1)"
)


def product_photos_in_order() -> QuerySet[ProductImage]:
    return ProductImage.objects.order_by(*PHOTO_ORDER)


def product_primary_photo(*, product: Product) -> ProductImage | None:
    return product_photos_in_order().filter(product=product).first()


def product_primary_photo_name() -> Subquery:
    """For `annotate`: the stored name of the outer product's primary photo (None without photos)."""
    return product_primary_photo_value("image")


def product_primary_photo_value(field: str) -> Subquery:
    """For `annotate`: one field of the outer product's primary photo (None without photos)."""
    return Subquery(product_photos_in_order().filter(product=OuterRef("pk")).values(field)[:1])


def product_list_with_primary_photo(*, include_inactive: bool = False) -> QuerySet[Product]:
    """Products, each annotated with `primary_photo`, the stored name of its first photo."""
    products = Product.objects.all() if include_inactive else Product.objects.filter(is_active=True)
    return products.annotate(primary_photo=product_primary_photo_name())


def product_photo_names_referenced(*, skus: list[str], names: list[str]) -> set[str]:
    """Which of these stored photo names belong to a photo of one of these products."""
    return set(
        ProductImage.objects.filter(product__sku__in=skus, image__in=names).values_list("image", flat=True)
    )


def product_photo_sources(*, skus: list[str]) -> dict[str, list[str]]:
    """For each of these skus that exists, its photos' source hashes in display order ("" for a photo
    stored before they were kept). A product without photos is absent."""
    sources: dict[str, list[str]] = {}
    rows = (
        ProductImage.objects.filter(product__sku__in=skus)
        .order_by("product_id", *PHOTO_ORDER)
        .values_list("product__sku", "source_sha256")
    )
    for sku, source in rows:
        sources.setdefault(sku, []).append(source)
    return sources


def product_further_photos(*, products: QuerySet[Product]) -> dict[str, list[tuple[str, str]]]:
    """For each of these products with more than one photo (by sku), its photos after the primary one
    in display order, as (stored name, content hash)."""
    photos: dict[str, list[tuple[str, str]]] = {}
    rows = (
        ProductImage.objects.filter(product__in=products.values("pk"))
        .order_by("product_id", *PHOTO_ORDER)
        .values_list("product__sku", "image", "content_sha256")
    )
    for sku, name, content in rows:
        photos.setdefault(sku, []).append((name, content))
    return {sku: found[1:] for sku, found in photos.items() if len(found) > 1}
