"""The admin's pages of search: the analytics report, the search log, merchandising rules, synonyms.

The report flushes the analytics buffer first, so it shows every search answered until now.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from search.analytics import search_analytics_flush
from search.analytics_reports import (
    report_latency_by_day,
    report_queries,
    report_totals,
    report_zero_result_queries,
)
from search.conf import search_settings
from search.merchandising import merchandising_rule_save
from search.models import MerchandisingRule, SearchLog, SynonymGroup

REPORT_PERIODS_DAYS = (1, 7, 30, 90)
DEFAULT_REPORT_DAYS = 7


@admin.register(SearchLog)
class SearchLogAdmin(admin.ModelAdmin):
    """The log itself, read-only; the report is one link away."""

    change_list_template = "admin/search/searchlog/change_list.html"
    list_display = ["created_at", "kind", "query", "mode", "offset", "result_count", "latency_ms"]
    list_filter = ["kind", "mode"]
    search_fields = ["normalized_query"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self):
        report = path(
            "report/", self.admin_site.admin_view(self.report_view), name="product_search_searchlog_report"
        )
        return [report, *super().get_urls()]

    def report_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            days = int(request.GET.get("days", DEFAULT_REPORT_DAYS))
        except ValueError:
            days = DEFAULT_REPORT_DAYS
        days = days if days in REPORT_PERIODS_DAYS else DEFAULT_REPORT_DAYS
        flushed = search_analytics_flush()
        since = timezone.now() - timedelta(days=days)
        context = {
            **self.admin_site.each_context(request),
            "title": "Search analytics",
            "opts": self.model._meta,
            "days": days,
            "periods": REPORT_PERIODS_DAYS,
            "flushed": flushed,
            "retention_days": int(search_settings.ANALYTICS_RETENTION_DAYS),
            "totals": report_totals(since=since),
            "top_queries": report_queries(since=since),
            "least_clicked": report_queries(since=since, order="click_through", limit=15),
            "zero_result_queries": report_zero_result_queries(since=since),
            "latency_by_day": report_latency_by_day(since=since),
            "log_url": reverse("admin:product_search_searchlog_changelist"),
        }
        return TemplateResponse(request, "admin/search/analytics_report.html", context)


@admin.register(MerchandisingRule)
class MerchandisingRuleAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "action",
        "query",
        "article_type",
        "product",
        "field",
        "value",
        "shift",
        "position",
    ]
    list_display += ["starts_at", "ends_at", "is_enabled"]
    list_filter = ["action", "is_enabled", "field"]
    search_fields = ["name", "query", "article_type", "value", "product__sku", "product__title"]
    autocomplete_fields = ["product"]
    fieldsets = [
        (None, {"fields": ["name", "action", "is_enabled"]}),
        ("Applies to", {"fields": ["query", "article_type", "starts_at", "ends_at"]}),
        ("Pin or hide", {"fields": ["product", "position"]}),
        ("Boost or bury", {"fields": ["field", "attribute_name", "value", "shift"]}),
    ]

    def save_model(self, request: HttpRequest, obj: MerchandisingRule, form: Any, change: bool) -> None:
        merchandising_rule_save(rule=obj)


@admin.register(SynonymGroup)
class SynonymGroupAdmin(admin.ModelAdmin):
    list_display = ("__str__", "is_active", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("terms",)
