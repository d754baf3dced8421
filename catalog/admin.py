"""The shop admin's view of the catalogue. Every write goes through catalog.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from catalog.model_versions import (
    ModelVersionError,
    model_version_activate,
    model_version_fail,
    model_version_rollback,
)
from catalog.models import ModelVersion, Product, ProductEmbedding, ProductImage
from catalog.photos import PhotoRejected, photo_prepare
from catalog.selectors import product_list_with_primary_photo
from catalog.services import (
    product_photo_add,
    product_photo_delete,
    product_photo_replace,
    product_save,
)


class ProductImageForm(forms.ModelForm):
    image = forms.FileField(
        label="Photo",
        help_text="JPEG, PNG or WebP, at most 10 MB and 40 megapixels.",
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )

    class Meta:
        model = ProductImage
        fields = ["image", "position"]

    def clean_image(self):
        upload = self.cleaned_data["image"]
        if upload is None or not hasattr(upload, "content_type"):
            # An existing photo left untouched.
            return upload
        try:
            self.prepared_photo = photo_prepare(upload)
        except PhotoRejected as error:
            raise forms.ValidationError(error.messages, code=error.code) from error
        return upload


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    form = ProductImageForm
    extra = 1
    fields = ["thumbnail", "image", "position", "width", "height"]
    readonly_fields = ["thumbnail", "width", "height"]
    ordering = ["position", "id"]

    @admin.display(description="")
    def thumbnail(self, image: ProductImage) -> str:
        if not image.pk:
            return ""
        return format_html('<img src="{}" style="height:80px">', image.image.url)


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


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = [
        "thumbnail",
        "sku",
        "title",
        "brand",
        "article_type",
        "colour",
        "gender",
        "price",
        "is_active",
        "embedding_status",
    ]
    list_display_links = ["thumbnail", "sku", "title"]
    list_filter = [
        "master_category",
        "article_type",
        "gender",
        "colour",
        "brand",
        "is_active",
        EmbeddingStatusFilter,
    ]
    search_fields = ["sku", "title"]
    list_per_page = 50
    readonly_fields = ["embedding_dirty", "created_at", "updated_at"]
    inlines = [ProductImageInline]
    fieldsets = [
        (None, {"fields": ["sku", "title", "description", "is_active"]}),
        (
            "Category",
            {"fields": ["brand", "gender", "colour", "master_category", "sub_category", "article_type"]},
        ),
        ("Details", {"fields": ["season", "usage", "price", "currency", "attributes"]}),
        ("Search", {"fields": ["embedding_dirty", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        active_embedding = ProductEmbedding.objects.filter(
            product=OuterRef("pk"), model_version__status=ModelVersion.Status.ACTIVE
        )
        return product_list_with_primary_photo(include_inactive=True).annotate(
            has_active_embedding=Exists(active_embedding)
        )

    @admin.display(description="")
    def thumbnail(self, product: Product) -> str:
        name = getattr(product, "primary_photo", None)
        if not name:
            return "—"
        return format_html('<img src="{}" style="height:48px" alt="">', ProductImage(image=name).image.url)

    @admin.display(description="embedding")
    def embedding_status(self, product: Product) -> str:
        if not product.embedding_dirty and getattr(product, "has_active_embedding", False):
            return "embedded"
        return "pending"

    def save_model(self, request, obj, form, change):
        product_save(product=obj, changed_fields=form.changed_data if change else ())

    def save_formset(self, request, form, formset, change):
        if formset.model is not ProductImage:
            return super().save_formset(request, form, formset, change)
        product = form.instance
        for deleted in formset.deleted_forms:
            if deleted.instance.pk:
                product_photo_delete(image=deleted.instance)
        for image_form in formset.forms:
            if image_form in formset.deleted_forms or not image_form.has_changed():
                continue
            prepared = getattr(image_form, "prepared_photo", None)
            position = image_form.cleaned_data.get("position")
            if image_form.instance.pk is None:
                if prepared is not None:
                    product_photo_add(product=product, photo=prepared, position=position)
            else:
                image = image_form.instance
                if prepared is not None:
                    image = product_photo_replace(image=image, photo=prepared)
                if position is not None and position != image.position:
                    ProductImage.objects.filter(pk=image.pk).update(position=position)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


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
        progress = version.progress or {}
        parts = [progress.get("stage", "")]
        if progress.get("epochs"):
            parts.append(f"epoch {progress.get('epoch')}/{progress['epochs']}")
        if progress.get("total"):
            parts.append(f"{progress.get('embedded', 0)}/{progress['total']} embedded")
        return ", ".join(part for part in parts if part) or "—"

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
        from catalog.retraining import RetrainOptions, retrain_prepare
        from workers.tasks import retrain_model

        options = RetrainOptions()
        version = retrain_prepare(options=options)
        try:
            retrain_model.apply_async(args=[version.pk, options.to_dict()], retry=False)
        except Exception as error:  # noqa: BLE001 - the broker is down: say so, keep nothing half-done
            model_version_fail(version=version, error=f"Could not queue the retrain: {error}")
            self.message_user(
                request,
                f"Could not queue the retrain ({error}). Is Redis running? Or run `manage.py retrain`.",
                level=messages.ERROR,
            )
            return
        self.message_user(request, f"Retraining as {version.name}: its progress shows here.")
