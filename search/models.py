"""What search keeps: the search log and its shoppers' events (analytics), the popular queries that
feed suggestions, the shop's merchandising rules and its synonyms.

The log is written in batches from a Redis buffer (search/analytics.py), never on the search's own
path; it holds no client address.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

from catalog.models import Product
from lifecycle.models import ModelVersion


class SearchLog(models.Model):
    """One answered search request (each page of results is one request)."""

    class Kind(models.TextChoices):
        TEXT = "text", "text"
        PHOTO = "photo", "photo"
        SIMILAR = "similar", "more like this"

    # The search id the API returns; click and add-to-cart events name it.
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    query = models.CharField(
        max_length=512, blank=True, help_text="As typed (trimmed); the sku for 'similar'."
    )
    # Lowercased with single spaces: what the reports group by and rules match.
    normalized_query = models.CharField(max_length=512, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    mode = models.CharField(max_length=16)
    offset = models.PositiveIntegerField(default=0)
    result_count = models.PositiveIntegerField(help_text="Results on the page answered.")
    relaxed = models.JSONField(
        default=list,
        blank=True,
        help_text="What the search gave up to avoid a dead end (the API's `relaxed`): a search that "
        "relaxed found nothing as asked.",
    )
    result_skus = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    latency_ms = models.FloatField(help_text="Time in the API view, as its took_ms.")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "search_searchlog"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["normalized_query", "created_at"], name="search_log_query_time")]
        verbose_name = "search"
        verbose_name_plural = "search log"

    def __str__(self) -> str:
        return f"{self.kind} {self.query!r} at {self.created_at:%Y-%m-%d %H:%M}"


class SearchEvent(models.Model):
    """A shopper's click or add-to-cart on a result of a logged search."""

    class Kind(models.TextChoices):
        CLICK = "click", "click"
        ADD_TO_CART = "add_to_cart", "add to cart"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    search = models.ForeignKey(SearchLog, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    sku = models.CharField(max_length=64)
    position = models.PositiveIntegerField(help_text="1 for the first result of the search's ranking.")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "search_searchevent"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} on {self.sku}"


class PopularQuery(models.Model):
    """How often a query was searched with results (first pages only): what suggestions offer."""

    normalized_query = models.CharField(max_length=512, unique=True)
    searches = models.PositiveIntegerField(default=0)
    last_searched_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "search_popularquery"
        ordering = ["-searches", "normalized_query"]
        indexes = [models.Index(fields=["-searches"], name="search_popular_searches")]
        verbose_name_plural = "popular queries"

    def __str__(self) -> str:
        return f"{self.normalized_query} ({self.searches})"


class MerchandisingRule(models.Model):
    """A shop's say over a ranking: pin a product to a position, boost or bury products by a field,
    hide a product; for one query, one category (article type filter), or every search."""

    class Action(models.TextChoices):
        PIN = "pin", "pin a product to a position"
        BOOST = "boost", "boost products"
        BURY = "bury", "bury products"
        HIDE = "hide", "hide a product"

    class Field(models.TextChoices):
        BRAND = "brand", "brand"
        ARTICLE_TYPE = "article_type", "category (article type)"
        COLOUR = "colour", "colour"
        GENDER = "gender", "gender"
        MASTER_CATEGORY = "master_category", "master category"
        SUB_CATEGORY = "sub_category", "sub category"
        ATTRIBUTE = "attribute", "attribute"

    name = models.CharField(
        max_length=200, help_text="What the rule is for, e.g. 'Summer sale: linen first'."
    )
    action = models.CharField(max_length=8, choices=Action.choices)
    query = models.CharField(
        max_length=512,
        blank=True,
        help_text="Applies to this query only (case and spacing ignored); empty: any query.",
    )
    article_type = models.CharField(
        max_length=100,
        blank=True,
        help_text="Applies only to searches filtered to this category (article type); empty: any.",
    )
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.CASCADE, help_text="Pin or hide: the product."
    )
    position = models.PositiveIntegerField(
        null=True, blank=True, help_text="Pin: the position, 1 for the first result."
    )
    field = models.CharField(max_length=16, choices=Field.choices, blank=True, help_text="Boost or bury: by")
    attribute_name = models.CharField(max_length=100, blank=True, help_text="When by attribute: its name.")
    value = models.CharField(max_length=200, blank=True, help_text="Boost or bury: the value (any case).")
    shift = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Boost or bury: by how many positions; empty: all the way (before or after the rest).",
    )
    starts_at = models.DateTimeField(null=True, blank=True, help_text="Empty: from now.")
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: until disabled.")
    is_enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "search_merchandisingrule"
        ordering = ["-updated_at", "-id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.action in (self.Action.PIN, self.Action.HIDE) and self.product_id is None:
            errors["product"] = "Choose the product to pin or hide."
        if self.action == self.Action.PIN:
            if not self.position:
                errors["position"] = "Give the position to pin the product to (1 is the first result)."
            if not self.query.strip() and not self.article_type.strip():
                errors["query"] = "A pin needs a query or a category to apply to."
        if self.action in (self.Action.BOOST, self.Action.BURY):
            if not self.field:
                errors["field"] = "Choose what to boost or bury by."
            if not self.value.strip():
                errors["value"] = "Give the value to boost or bury, e.g. a brand."
            if self.field == self.Field.ATTRIBUTE and not self.attribute_name.strip():
                errors["attribute_name"] = "Give the attribute's name, e.g. Pattern."
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The end must come after the start."
        if errors:
            raise ValidationError(errors)


MAX_TERM_LENGTH = 100


def synonym_terms(text: str) -> list[str]:
    """The distinct terms of a comma-separated list, lower-cased and trimmed, in their order."""
    terms: list[str] = []
    for raw in text.split(","):
        term = " ".join(raw.lower().split())
        if term and term not in terms:
            terms.append(term)
    return terms


class SynonymGroup(models.Model):
    """Words or phrases shoppers use for one another ("tee, t-shirt"): a query holding one of them also
    finds the products that say another, in the full-text ranking and in the query's vector."""

    terms = models.TextField(
        help_text="Comma-separated words or phrases that mean the same, e.g. `tee, t-shirt, tshirt`. "
        "Each applies both ways."
    )
    is_active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "search_synonymgroup"
        ordering = ("terms",)
        verbose_name = "synonym group"

    def __str__(self) -> str:
        return ", ".join(self.term_list())

    def term_list(self) -> list[str]:
        return synonym_terms(self.terms)

    def clean(self) -> None:
        if "\x00" in self.terms:
            raise ValidationError({"terms": "Terms cannot hold NUL characters."})
        terms = self.term_list()
        if len(terms) < 2:
            raise ValidationError({"terms": "Give at least two different terms, separated by commas."})
        too_long = [term for term in terms if len(term) > MAX_TERM_LENGTH]
        if too_long:
            raise ValidationError(
                {"terms": f"Terms are at most {MAX_TERM_LENGTH} characters: {too_long[0]!r}."}
            )
        self.terms = ", ".join(terms)
