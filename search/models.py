"""What a shop's team edits to shape its search: synonyms."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

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
