"""The one way a query's text is compared: analytics group by it, merchandising rules match on it."""

from __future__ import annotations


def query_normalize(text: str) -> str:
    """Lowercased, with runs of whitespace as one space: "Navy  Shirt " and "navy shirt" are one query."""
    return " ".join(text.lower().split())
