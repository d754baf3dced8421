"""Model versions and the products' vectors they produce.

Embeddings of every model version share one table. Search ranks with a partial HNSW index per
(version, kind), created when the version's embeddings are complete, so a new version can be
embedded while the active one serves, and activating it is a single-row status switch. See
docs/architecture.md. The tables kept their `catalog_` names when these models moved here.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from catalog.models import Product, ProductImage, TimeStampedModel
from lifecycle.fields import HalfVectorField


class ModelVersion(TimeStampedModel):
    class Status(models.TextChoices):
        TRAINING = "training", "Training"
        EMBEDDING = "embedding", "Embedding the catalogue"
        READY = "ready", "Ready"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"
        FAILED = "failed", "Failed"

    # Versions a process is still working on: a killed process leaves one here until it is reaped.
    UNFINISHED_STATUSES = (Status.TRAINING, Status.EMBEDDING)
    # Versions whose vectors must follow every catalogue change.
    LIVE_STATUSES = (Status.ACTIVE, Status.EMBEDDING, Status.READY)
    # Versions whose catalogue embedding may (still) be built.
    BUILDABLE_STATUSES = (Status.TRAINING, Status.EMBEDDING, Status.READY)
    # Versions that have (had) all their vectors and can serve.
    ACTIVATABLE_STATUSES = (Status.READY, Status.RETIRED)

    name = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRAINING)
    # The mlcore checkpoint folder this version encodes with.
    artifact_path = models.CharField(max_length=500, blank=True)
    embedding_dim = models.PositiveIntegerField(null=True, blank=True)
    config = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    # Stage, epoch, products embedded: what an admin watching a retrain wants to see.
    progress = models.JSONField(default=dict, blank=True)
    # Search settings chosen for this version on the shop's held-out products at retrain (setting name
    # without the PRODUCT_SEARCH_ prefix -> value); search uses them while the version is active,
    # unless the host's settings set the same name.
    search_settings = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    # Who trains it, set once by one conditional UPDATE (model_version_claim): "host pid N (task id)".
    # A second delivery of its retrain message finds it set and leaves the version alone.
    claimed_by = models.CharField(max_length=255, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "catalog_modelversion"
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
        db_table = "catalog_productembedding"
        ordering = ["model_version_id", "product_id", "kind", "id"]
        indexes = [models.Index(fields=["model_version", "product"], name="catalog_pro_model_v_7c3677_idx")]
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


class KeptFeatures(models.Model):
    """What a frozen part of a model computes for one input, kept by the input's content digest and a
    key of that frozen part (mlcore.photo_features, mlcore.text_features), as float16 `.npy` bytes."""

    content_sha256 = models.CharField(max_length=64)
    trunk = models.CharField(max_length=160)
    features = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["trunk", "content_sha256"]

    def __str__(self) -> str:
        return f"{self.trunk} features of {self.content_sha256[:12]}"


class PhotoFeatures(KeptFeatures):
    """A photo's frozen image-trunk output, (C, h, w) maps or pooled features, kept so that no photo goes
    through the trunk twice: every version that shares the trunk, and every retrain, starts from it.
    `content_sha256` is ProductImage.content_sha256 (the same bytes give the same features, whichever
    product holds them); `trunk` is mlcore.photo_features.trunk_key or pooled_key."""

    class Meta(KeptFeatures.Meta):
        # The table named under the app's first label, so that relabelling kept every row in place.
        db_table = "lifecycle_photofeatures"
        constraints = [
            models.UniqueConstraint(
                fields=["trunk", "content_sha256"], name="one_feature_map_per_photo_and_trunk"
            )
        ]


class TextFeatures(KeptFeatures):
    """What MiniLM's frozen part gives a product text, (hidden,) pooled or (tokens, hidden) hidden
    states, kept so that embedding with a new version runs only the version's own trained layers and
    projection over it. `content_sha256` is mlcore.text_features.text_content_key; `trunk` is
    text_features_key."""

    class Meta(KeptFeatures.Meta):
        db_table = "lifecycle_textfeatures"  # beside lifecycle_photofeatures
        constraints = [
            models.UniqueConstraint(
                fields=["trunk", "content_sha256"], name="one_feature_set_per_text_and_trunk"
            )
        ]
