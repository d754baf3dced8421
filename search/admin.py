"""The shop team's search settings in the admin: synonyms."""

from __future__ import annotations

from django.contrib import admin

from search.models import SynonymGroup


@admin.register(SynonymGroup)
class SynonymGroupAdmin(admin.ModelAdmin):
    list_display = ("__str__", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("terms",)
