"""The catalogue: products, their photos, model versions and their embeddings.

Embeddings of every model version share one table. Search ranks with a partial HNSW index per
(version, kind), created when the version's embeddings are complete, so a new version can be
embedded while the active one serves, and activating it is a single-row status switch. See
docs/architecture.md.
"""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from pgvector.django import HalfVectorField


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Product(TimeStampedModel):
    sku = models.CharField(max_length=64, unique=True)
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
    # Set in the same transaction as any change that alters the product's embeddings (text or
    # photos); the embedding task clears it. Indexed: the task selects by it.
    embedding_dirty = models.BooleanField(default=True, db_index=True)

    class Meta:
        ordering = ["sku"]
        indexes = [
            models.Index(fields=["article_type"]),
            models.Index(fields=["master_category", "sub_category"]),
            models.Index(fields=["gender"]),
            models.Index(fields=["colour"]),
            models.Index(fields=["brand"]),
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
    # Of the bytes as received: a re-import of an unchanged photo is recognised and skipped.
    content_sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["product_id", "position", "id"]
        indexes = [models.Index(fields=["product", "position"])]

    def __str__(self) -> str:
        return f"{self.product_id} #{self.position}"


class ModelVersion(TimeStampedModel):
    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        EMBEDDING = "embedding", "Embedding the catalogue"
        READY = "ready", "Ready"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING)
    # The mlcore checkpoint folder this version encodes with.
    artifact_path = models.CharField(max_length=500, blank=True)
    embedding_dim = models.PositiveIntegerField(null=True, blank=True)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # Stage, epoch, products embedded: what an admin watching a retrain wants to see.
    progress = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # At most one version serves: activation is a swap inside one transaction.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="active"), name="one_active_model_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class ProductEmbedding(models.Model):
    class Kind(models.TextChoices):
        IMAGE = "image", "Photo"
        TEXT = "text", "Text"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="embeddings")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="embeddings")
    image = models.ForeignKey(
        ProductImage, on_delete=models.CASCADE, null=True, blank=True, related_name="embeddings"
    )
    kind = models.CharField(max_length=8, choices=Kind.choices)
    # No fixed dimension: each version's HNSW index casts to its own `halfvec(dim)`.
    embedding = HalfVectorField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model_version_id", "product_id", "kind", "id"]
        indexes = [models.Index(fields=["model_version", "product"])]
        constraints = [
            models.UniqueConstraint(
                fields=["model_version", "image"],
                condition=Q(kind="image"),
                name="one_embedding_per_photo_and_version",
            ),
            models.UniqueConstraint(
                fields=["model_version", "product"],
                condition=Q(kind="text"),
                name="one_text_embedding_per_product_and_version",
            ),
            models.CheckConstraint(
                condition=(Q(kind="image") & Q(image__isnull=False))
                | (Q(kind="text") & Q(image__isnull=True)),
                name="photo_embedding_has_photo",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} vector of {self.product_id} for version {self.model_version_id}"
