"""The admin's view of model versions, and the products' embedding status on the catalogue's pages.

Every write goes through lifecycle's services.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from catalog.admin import ProductAdmin
from catalog.models import Product
from lifecycle.dispatch import retrain_request_async
from lifecycle.model_versions import ModelVersionError, model_version_activate, model_version_rollback
from lifecycle.models import ModelVersion, ProductEmbedding
from lifecycle.progress import progress_summary
from lifecycle.retraining import RetrainOptions


class EmbeddingStatusFilter(admin.SimpleListFilter):
    title = "embedding status"
    parameter_name = "embedding"

    def lookups(self, request, model_admin):
        return [
            ("embedded", "Embedded by the active model"),
            ("pending", "Waiting to be embedded"),
        ]

    def queryset(self, request, queryset):
        if self.value() == "embedded":
            return queryset.filter(embedding_dirty=False, has_active_embedding=True)
        if self.value() == "pending":
            return queryset.exclude(embedding_dirty=False, has_active_embedding=True)
        return queryset


# The catalogue's admin knows nothing of models; this one adds the embedding status to it.
admin.site.unregister(Product)


@admin.register(Product)
class ProductWithEmbeddingAdmin(ProductAdmin):
    list_display = [*ProductAdmin.list_display, "embedding_status"]
    list_filter = [*ProductAdmin.list_filter, EmbeddingStatusFilter]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        active_embedding = ProductEmbedding.objects.filter(
            product=OuterRef("pk"), model_version__status=ModelVersion.Status.ACTIVE
        )
        return super().get_queryset(request).annotate(has_active_embedding=Exists(active_embedding))

    @admin.display(description="embedding")
    def embedding_status(self, product: Product) -> str:
        if not product.embedding_dirty and getattr(product, "has_active_embedding", False):
            return "embedded"
        return "pending"


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "progress_summary", "held_out_recall", "created_at", "activated_at"]
    list_filter = ["status"]
    readonly_fields = [
        "name",
        "status",
        "progress_summary",
        "held_out_recall",
        "metrics_table",
        "artifact_path",
        "embedding_dim",
        "error",
        "claimed_by",
        "claimed_at",
        "created_at",
        "updated_at",
        "activated_at",
    ]
    exclude = ["config", "metrics", "progress"]
    actions = ["activate_selected", "roll_back", "retrain"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from `retrain` or `install_default_model`

    @admin.display(description="progress")
    def progress_summary(self, version: ModelVersion) -> str:
        return progress_summary(version.progress) or "—"

    @admin.display(description="held-out R@1 / R@10 (t2i, i2t)")
    def held_out_recall(self, version: ModelVersion) -> str:
        report = (version.metrics or {}).get("held_out") or (version.metrics or {}).get("test")
        if not report:
            return "—"
        t2i, i2t = report["t2i"], report["i2t"]
        return f"{t2i['R@1']:.1f} / {t2i['R@10']:.1f}, {i2t['R@1']:.1f} / {i2t['R@10']:.1f}"

    @admin.display(description="metrics")
    def metrics_table(self, version: ModelVersion) -> str:
        metrics = version.metrics or {}
        sources = [
            ("this version, held out", "held_out"),
            ("active model, same products", "active_on_held_out"),
            ("test split", "test"),
            ("val split", "val"),
        ]
        rows = [
            (
                label,
                direction,
                *(f"{report[direction][key]:.1f}" for key in ("R@1", "R@5", "R@10", "medr", "mAP@10")),
            )
            for label, key in sources
            if (report := metrics.get(key))
            for direction in ("t2i", "i2t")
        ]
        if not rows:
            return "—"
        header = (
            "<tr><th></th><th></th><th>R@1</th><th>R@5</th><th>R@10</th><th>medr</th><th>mAP@10</th></tr>"
        )
        body = format_html_join("", "<tr>" + "<td>{}</td>" * 7 + "</tr>", rows)
        return format_html("<table>{}{}</table>", mark_safe(header), body)

    @admin.action(description="Activate (switch search to it)")
    def activate_selected(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", level=messages.ERROR)
            return
        try:
            model_version_activate(version=queryset.get())
        except ModelVersionError as error:
            self.message_user(request, str(error), level=messages.ERROR)
            return
        self.message_user(request, f"{queryset.get().name} is now the active model.")

    @admin.action(description="Roll back to the previously active version")
    def roll_back(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        try:
            version = model_version_rollback()
        except ModelVersionError as error:
            self.message_user(request, str(error), level=messages.ERROR)
            return
        self.message_user(request, f"Rolled back: {version.name} is active again.")

    @admin.action(description="Retrain on the current catalogue (in the background)")
    def retrain(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        try:
            version = retrain_request_async(options=RetrainOptions())
        except ModelVersionError as error:
            self.message_user(request, str(error), level=messages.ERROR)
            return
        self.message_user(request, f"Retraining as {version.name}: its progress shows here.")
