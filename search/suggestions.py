"""Suggestions as a shopper types: popular queries, categories, brands, colours and product titles
whose words start with the words typed so far ("nav sh" finds "Navy Blue Shirts"), without case.

The small sets (brands, article types, colours, the most searched queries) are kept in each process's
memory for SUGGEST_CACHE_S and matched there; titles are matched in PostgreSQL with a prefix
`tsquery` (`'nav':* & 'sh':*`) on the unstemmed words of the title (the GIN index
search_product_title_words of search/migrations/0001_initial.py). No extension is needed.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass

from django.db.models import Count

from catalog.models import Product
from search.conf import search_settings
from search.models import PopularQuery
from search.read_replica import search_connection

WORD = re.compile(r"\w+")
# Most words typed that are matched; further ones are ignored (a suggestion is for a short prefix).
MAX_WORDS = 6
# Of a page of suggestions, at most this many of each kind; titles fill what is left.
SHARE = {"query": 4, "category": 2, "brand": 2, "colour": 2}
KINDS = ("query", "category", "brand", "colour", "product")
# Titles are matched from this many characters typed: one letter starts a word of most titles, so
# it would cost the longest query for suggestions nobody reads.
TITLE_MIN_CHARACTERS = 2


@dataclass(frozen=True)
class Suggestion:
    text: str
    kind: str  # one of KINDS
    # The filter that selects it (categories, brands, colours) and the value to give it.
    param: str | None = None
    sku: str | None = None


@dataclass(frozen=True)
class _Entry:
    suggestion: Suggestion
    words: tuple[str, ...]
    weight: int  # searches or products: the more, the earlier


@dataclass(frozen=True)
class _Vocabulary:
    entries: tuple[_Entry, ...]
    read_at: float


_vocabulary: _Vocabulary | None = None
_lock = threading.Lock()


def prefix_words(text: str) -> list[str]:
    """The words of what was typed, lowercased (at most MAX_WORDS)."""
    return [word.lower() for word in WORD.findall(text)][:MAX_WORDS]


def _entry(text: str, kind: str, weight: int, param: str | None = None) -> _Entry:
    words = tuple(word.lower() for word in WORD.findall(text))
    return _Entry(Suggestion(text=text, kind=kind, param=param), words, weight)


def _vocabulary_read() -> tuple[_Entry, ...]:
    entries = []
    active = Product.objects.filter(is_active=True)
    for column, kind in (("article_type", "category"), ("brand", "brand"), ("colour", "colour")):
        counts = active.exclude(**{column: ""}).values_list(column).annotate(products=Count("id"))
        entries += [_entry(value, kind, products, param=column) for value, products in counts]
    popular = PopularQuery.objects.filter(searches__gte=int(search_settings.SUGGEST_MIN_QUERY_SEARCHES))
    popular = popular.order_by("-searches", "normalized_query")[
        : int(search_settings.SUGGEST_POPULAR_QUERIES)
    ]
    entries += [
        _entry(query, "query", searches)
        for query, searches in popular.values_list("normalized_query", "searches")
    ]
    # Best first once, so that matching keeps the order and stops early.
    entries.sort(key=lambda entry: (-entry.weight, entry.suggestion.text))
    return tuple(entries)


def suggestion_vocabulary_forget() -> None:
    """Read the small sets again at the next suggestion (tests; a process that just imported)."""
    global _vocabulary
    with _lock:
        _vocabulary = None


def _vocabulary_entries() -> tuple[_Entry, ...]:
    global _vocabulary
    vocabulary = _vocabulary
    if vocabulary is None or time.monotonic() - vocabulary.read_at > float(search_settings.SUGGEST_CACHE_S):
        vocabulary = _Vocabulary(entries=_vocabulary_read(), read_at=time.monotonic())
        with _lock:
            _vocabulary = vocabulary
    return vocabulary.entries


def _matches(words: tuple[str, ...], typed: list[str]) -> bool:
    return all(any(word.startswith(prefix) for word in words) for prefix in typed)


def title_prefix_tsquery(typed: list[str]) -> str:
    """`'nav':* & 'sh':*` for the words typed (\\w characters only, so nothing needs escaping)."""
    return " & ".join(f"'{word}':*" for word in typed)


def title_suggestions_sql(limit: int) -> str:
    """Active products whose title has a word starting with each typed word; short titles first (the
    closest to what was typed), then by id."""
    return (
        "SELECT sku, title FROM catalog_product "
        "WHERE is_active AND to_tsvector('simple'::regconfig, title) @@ to_tsquery('simple'::regconfig, %s) "
        f"ORDER BY length(title), id LIMIT {int(limit)}"
    )


def suggestions_for_prefix(*, text: str, limit: int) -> list[Suggestion]:
    """Up to `limit` suggestions for what was typed: popular queries, categories, brands, colours (each
    kind up to its SHARE), then product titles; an empty list when nothing matches."""
    typed = prefix_words(text)
    if not typed:
        return []
    picked: dict[str, list[Suggestion]] = {kind: [] for kind in KINDS}
    for entry in _vocabulary_entries():
        kind = entry.suggestion.kind
        if len(picked[kind]) < SHARE[kind] and _matches(entry.words, typed):
            picked[kind].append(entry.suggestion)
    chosen = [suggestion for kind in KINDS[:-1] for suggestion in picked[kind]][:limit]
    shown = {suggestion.text.lower() for suggestion in chosen}
    room = limit - len(chosen)
    if room > 0 and sum(len(word) for word in typed) >= TITLE_MIN_CHARACTERS:
        with search_connection().cursor() as cursor:
            cursor.execute(title_suggestions_sql(room + len(shown)), [title_prefix_tsquery(typed)])
            rows = cursor.fetchall()
        titles = [
            Suggestion(text=title, kind="product", sku=sku)
            for sku, title in rows
            if title.lower() not in shown
        ]
        chosen += titles[:room]
    return chosen
