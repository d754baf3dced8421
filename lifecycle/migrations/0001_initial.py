"""ModelVersion and ProductEmbedding move here from `catalog`, their tables and data untouched.

State only: the tables keep their `catalog_` names, so no row moves and no index is rebuilt (the
per-version HNSW indexes name the table). `catalog.0003` drops the models from catalog's state after
this migration has added them here. The content types follow, so admin history and permissions keep
pointing at them. Reversible: unapplying moves the state and the content types back.
"""

import django.db.models.deletion
import pgvector.django.halfvec
from django.db import migrations, models

MOVED_MODELS = ("modelversion", "productembedding")


def _move_content_types(apps, *, from_app: str, to_app: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label=from_app, model__in=MOVED_MODELS).update(app_label=to_app)


def content_types_to_lifecycle(apps, schema_editor):
    _move_content_types(apps, from_app="product_search_catalog", to_app="product_search_lifecycle")


def content_types_to_catalog(apps, schema_editor):
    _move_content_types(apps, from_app="product_search_lifecycle", to_app="product_search_catalog")


STATE = [
    migrations.CreateModel(
        name="ModelVersion",
        fields=[
            (
                "id",
                models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
            ),
            ("created_at", models.DateTimeField(auto_now_add=True)),
            ("updated_at", models.DateTimeField(auto_now=True)),
            ("name", models.CharField(max_length=100, unique=True)),
            (
                "status",
                models.CharField(
                    choices=[
                        ("training", "Training"),
                        ("embedding", "Embedding the catalogue"),
                        ("ready", "Ready"),
                        ("active", "Active"),
                        ("retired", "Retired"),
                        ("failed", "Failed"),
                    ],
                    default="training",
                    max_length=16,
                ),
            ),
            ("artifact_path", models.CharField(blank=True, max_length=500)),
            ("embedding_dim", models.PositiveIntegerField(blank=True, null=True)),
            ("config", models.JSONField(blank=True, default=dict)),
            ("metrics", models.JSONField(blank=True, default=dict)),
            ("progress", models.JSONField(blank=True, default=dict)),
            ("error", models.TextField(blank=True)),
            ("activated_at", models.DateTimeField(blank=True, null=True)),
        ],
        options={
            "db_table": "catalog_modelversion",
            "ordering": ["-created_at", "-id"],
            "constraints": [
                models.UniqueConstraint(
                    condition=models.Q(("status", "active")),
                    fields=("status",),
                    name="one_active_model_version",
                )
            ],
        },
    ),
    migrations.CreateModel(
        name="ProductEmbedding",
        fields=[
            (
                "id",
                models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
            ),
            ("kind", models.CharField(choices=[("image", "Photo"), ("text", "Text")], max_length=8)),
            ("embedding", pgvector.django.halfvec.HalfVectorField()),
            ("created_at", models.DateTimeField(auto_now_add=True)),
            (
                "model_version",
                models.ForeignKey(
                    on_delete=django.db.models.deletion.CASCADE,
                    related_name="embeddings",
                    to="product_search_lifecycle.modelversion",
                ),
            ),
            (
                "product",
                models.ForeignKey(
                    on_delete=django.db.models.deletion.CASCADE,
                    related_name="embeddings",
                    to="product_search_catalog.product",
                ),
            ),
            (
                "image",
                models.ForeignKey(
                    blank=True,
                    null=True,
                    on_delete=django.db.models.deletion.CASCADE,
                    related_name="embeddings",
                    to="product_search_catalog.productimage",
                ),
            ),
        ],
        options={
            "db_table": "catalog_productembedding",
            "ordering": ["model_version_id", "product_id", "kind", "id"],
            "indexes": [
                models.Index(fields=["model_version", "product"], name="catalog_pro_model_v_7c3677_idx")
            ],
            "constraints": [
                models.UniqueConstraint(
                    condition=models.Q(("kind", "image")),
                    fields=("model_version", "image"),
                    name="one_embedding_per_photo_and_version",
                ),
                models.UniqueConstraint(
                    condition=models.Q(("kind", "text")),
                    fields=("model_version", "product"),
                    name="one_text_embedding_per_product_and_version",
                ),
                models.CheckConstraint(
                    condition=models.Q(
                        models.Q(("kind", "image"), ("image__isnull", False)),
                        models.Q(("kind", "text"), ("image__isnull", True)),
                        _connector="OR",
                    ),
                    name="photo_embedding_has_photo",
                ),
            ],
        },
    ),
]


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("product_search_catalog", "0002_product_search_document"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=STATE, database_operations=[]),
        migrations.RunPython(content_types_to_lifecycle, content_types_to_catalog),
    ]
