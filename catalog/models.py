"""The catalogue: products and their photos.

Model versions and the products' vectors belong to the model lifecycle (lifecycle/models.py).
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from catalog.validators import validate_sku


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Product(TimeStampedModel):
    # Validated as one URL path segment: products are addressed by sku in the API and the storefront.
    sku = models.CharField(max_length=64, unique=True, validators=[validate_sku])
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    brand = models.CharField(max_length=100, blank=True)
    gender = models.CharField(max_length=32, blank=True)
    colour = models.CharField(max_length=64, blank=True)
    master_category = models.CharField(max_length=100, blank=True)
    sub_category = models.CharField(max_length=100, blank=True)
    article_type = models.CharField(max_length=100, blank=True)
    season = models.CharField(max_length=32, blank=True)
    usage = models.CharField(max_length=64, blank=True)
    price = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    currency = models.CharField(max_length=3, blank=True, help_text="ISO 4217 code, e.g. INR")
    attributes = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    # Which host model feeds this product (its `app_label.model`, catalog/sources.py); empty for products
    # imported or edited here. A resync deactivates the products of a source whose instance is gone.
    source = models.CharField(max_length=100, blank=True, db_index=True)
    # Set in the same transaction as any change that alters the product's embeddings (text or
    # photos); the embedding task clears it. The task takes the oldest pending products a batch at a
    # time: the partial index below holds only those, in that order.
    embedding_dirty = models.BooleanField(default=True)

    class Meta:
        # Tables keep the names of the app's first label (`catalog`), so relabelling moved no row.
        db_table = "catalog_product"
        ordering = ["sku"]
        indexes = [
            models.Index(fields=["article_type"]),
            models.Index(fields=["master_category", "sub_category"]),
            models.Index(fields=["gender"]),
            models.Index(fields=["colour"]),
            models.Index(fields=["brand"]),
            # Price ranges filter searches: search.ranking counts the products a filter leaves.
            models.Index(fields=["price"]),
            models.Index(
                fields=["updated_at", "id"],
                condition=models.Q(embedding_dirty=True),
                name="catalog_product_pending_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gte=0), name="product_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.title}"


class ProductImage(TimeStampedModel):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    # The stored name is generated (catalog.photos); it never comes from the uploaded file name.
    image = models.FileField(max_length=255)
    position = models.PositiveSmallIntegerField(default=0, help_text="0 is the primary photo")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # Of the stored bytes (catalog.photos re-encodes every photo, the same upload always to the same
    # bytes): a re-import of an unchanged photo is recognised and skipped, and it keys the photo's
    # stored trunk features (lifecycle.PhotoFeatures), which are computed from exactly these bytes.
    content_sha256 = models.CharField(max_length=64)
    # Of the bytes as uploaded or read from a catalogue, before re-encoding: a re-import hashes the
    # file and skips decoding it again when this matches. Empty for photos stored before it existed.
    source_sha256 = models.CharField(max_length=64, blank=True, default="")
    # The garment's colour as read from the pixels (mlcore.photo_colour), recorded when the photo first
    # goes through the model's trunk: a retrain names it in the texts of products whose shop wrote no
    # colour. Empty until then, and for a photo whose trunk features were stored under another photo.
    garment_colour = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        db_table = "catalog_productimage"
        ordering = ["product_id", "position", "id"]
        indexes = [models.Index(fields=["product", "position"])]

    def __str__(self) -> str:
        return f"{self.product_id} #{self.position}"
