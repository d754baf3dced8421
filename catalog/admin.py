"""The shop admin's view of the catalogue. Every write goes through catalog.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from catalog.models import Product, ProductImage
from catalog.photos import PhotoRejected, photo_prepare
from catalog.selectors import product_list_with_primary_photo
from catalog.services import (
    product_photo_add,
    product_photo_delete,
    product_photo_move,
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
    ]
    list_display_links = ["thumbnail", "sku", "title"]
    list_filter = [
        "master_category",
        "article_type",
        "gender",
        "colour",
        "brand",
        "is_active",
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
        return product_list_with_primary_photo(include_inactive=True)

    @admin.display(description="")
    def thumbnail(self, product: Product) -> str:
        name = getattr(product, "primary_photo", None)
        if not name:
            return "—"
        return format_html('<img src="{}" style="height:48px" alt="">', ProductImage(image=name).image.url)

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
                if position is not None:
                    product_photo_move(image=image, position=position)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
