"""Synonyms: a query word or phrase stands for every term of its group (search.models.SynonymGroup).

In the full-text ranking each query word becomes the alternatives its group gives ("tee" matches
products that say "t-shirt" or "tshirt", and the other way round), counted as one word. The query's
vector is encoded with the group's term the catalogue uses most in place of a term it never uses:
"trainers" is encoded as "sports shoes" in a shop that says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from search.conf import search_settings
from search.models import SynonymGroup, synonym_terms
from search.process_cache import CheckedCache, table_generation
from search.ranking import query_words


@dataclass
class SynonymIndex:
    """Term (its words as a tuple) -> the terms of its groups, and the longest term in words."""

    groups: dict[tuple[str, ...], list[str]]
    longest: int

    @classmethod
    def from_groups(cls, groups: list[list[str]]) -> SynonymIndex:
        index: dict[tuple[str, ...], list[str]] = {}
        for terms in groups:
            for term in terms:
                key = tuple(query_words(term))
                if not key:
                    continue
                alternatives = index.setdefault(key, [term])
                alternatives += [other for other in terms if other not in alternatives]
        return cls(index, max((len(key) for key in index), default=0))

    @property
    def words(self) -> frozenset[str]:
        """Every word of every term: words a shopper means even when no product uses them."""
        return frozenset(word for key in self.groups for word in key)


@dataclass
class QueryExpansion:
    """Per query word or phrase, its alternatives (itself first); and the text to encode as a vector."""

    alternatives: list[list[str]]
    vector_text: str


def synonym_index_build() -> SynonymIndex:
    groups = SynonymGroup.objects.filter(is_active=True).values_list("terms", flat=True)
    return SynonymIndex.from_groups([synonym_terms(terms) for terms in groups])


synonym_cache = CheckedCache(
    build=synonym_index_build,
    generation=lambda: table_generation(SynonymGroup._meta.db_table),
    check_seconds=lambda: float(search_settings.VOCABULARY_CHECK_SECONDS),
)


def query_expand_synonyms(
    query: str, *, index: SynonymIndex | None = None, catalogue_words: dict[str, int] | None = None
) -> QueryExpansion:
    """The query's words with their synonyms (the longest matching phrase first, left to right), and
    the query with each term the catalogue never uses replaced by its synonym the catalogue uses most
    (`catalogue_words`: word -> products using it; without it the query is encoded as typed)."""
    index = index or synonym_cache.get()
    words = query_words(query)
    lowered = [word.lower() for word in words]
    alternatives: list[list[str]] = []
    vector_words: list[str] = []
    position = 0
    while position < len(words):
        for length in range(min(index.longest, len(words) - position), 0, -1):
            key = tuple(lowered[position : position + length])
            if key in index.groups:
                terms = index.groups[key]
                alternatives.append(terms)
                vector_words.append(_term_for_vector(terms, catalogue_words))
                position += length
                break
        else:
            alternatives.append([words[position]])
            vector_words.append(words[position])
            position += 1
    changed = [terms[0] for terms in alternatives] != vector_words
    return QueryExpansion(alternatives, " ".join(vector_words) if changed else query)


def _term_for_vector(terms: list[str], catalogue_words: dict[str, int] | None) -> str:
    """The query's own term when the catalogue uses it (or nothing is known of the catalogue), else the
    group's term whose rarest word the most products use."""
    if not catalogue_words:
        return terms[0]

    def usage(term: str) -> int:
        return min((catalogue_words.get(word.lower(), 0) for word in query_words(term)), default=0)

    if usage(terms[0]) > 0:
        return terms[0]
    best = max(terms, key=usage)
    return best if usage(best) > 0 else terms[0]
