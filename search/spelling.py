"""Typo tolerance: query words the catalogue never uses, corrected to the nearest words it does use.

The vocabulary is the catalogue's own: every word of the active products' titles, brands, genders,
colours, article types and attribute values, with the number of products that use it (PostgreSQL's
`ts_stat` over a `simple` tsvector: lower-cased words, not stemmed). Words only the descriptions use are
known too (a description sentence searched is not "corrected": Luma test, hybrid, R@10 .921 without
them, .974 with), but never a correction. A query word that is not in it is
replaced by a vocabulary word within a small Damerau-Levenshtein distance (1 edit for words of 3 to 6
letters, 2 from 7), the closest and most used first, unless the combination of corrections that no
product has every word of can be told from one that some product has: "navvy chek shirt" -> "navy check
shirt". Words of one or two letters, numbers and the synonyms' words are left alone. Only the
catalogue's own words count as known, as in the search engines shops compare this with.

Chosen on the Myntra `val` split's titles and attribute phrases mistyped as bench/typo_tolerance.py
does, by the share of mistyped words restored: a guard that also left English words as typed (the
MiniLM WordPiece vocabulary) restored fewer (89.7% and 89.6% against 91.9% and 91.4%: typos often make
other English words, "blue" -> "clue"); correcting three-letter words too ("gry" -> "grey") restored
more (94.6% and 94.7%) and changed no word of the clean queries that it had left alone; never
correcting to words under three letters, and replacing catalogue words that a 20 times more used word
is one edit from when the query's words then co-occur in some product's title and attributes ("back"
-> "black"), 95.2% and 96.0%; among equally close words, one not shorter than the typed word first (a
letter left out is the likelier typo: "wmen" is "women" before "men"), 95.1% and 96.7%. Preferring a
correction that keeps the first letter restored fewer (94.4% and 95.3%). Later, counted over every
mistyped word (plurals read as singulars count as misses): choosing among each word's closest
corrections the combination some product's title and attributes hold, 93.6% -> 95.3% and 93.6% ->
94.1% (hybrid mAP@10 .968 -> .976 and .939 -> .942); then two edits from 7 letters rather than 8 (two
edits in an 8-letter word often leave 7), 97.1% and 95.7% (.984 and .974); from 6, 97.3% and 95.7%,
too little more for the words it would put at risk.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import DamerauLevenshtein
from rapidfuzz.process import extract

from search.conf import search_settings
from search.process_cache import CheckedCache, table_generation
from search.read_replica import search_connection

WORD = re.compile(r"[^\W_]+", re.UNICODE)
MIN_CORRECTED_LENGTH = 3
TWO_EDITS_FROM_LENGTH = 7
# A catalogue word is a suspected typo of a neighbour this many times as used (query_correct_spelling).
DOMINANT_NEIGHBOUR = 20
# Corrections weighed per unknown word, and combinations of them tried, when the likeliest matches no product.
CANDIDATES_PER_WORD = 4
MAX_COMBINATIONS = 16

# Each word with the number of products that use it, and whether full-text search can find it (the
# english configuration drops its stop words: "with", "and").
_VOCABULARY_SQL = """
SELECT word, ndoc, numnode(plainto_tsquery('english', word)) > 0 FROM ts_stat($$
    SELECT to_tsvector('simple',
        coalesce(title, '') || ' ' || coalesce(brand, '') || ' ' || coalesce(gender, '') || ' '
        || coalesce(colour, '') || ' ' || coalesce(article_type, '') || ' '
        || coalesce((SELECT string_agg(value, ' ') FROM jsonb_each_text(attributes)), ''))
    FROM catalog_product WHERE is_active
$$)
"""
# Words of the descriptions (as much as the full-text document reads) that two products or more use:
# words the shop uses, so a query holding them is not corrected, but never what a mistyped word is
# corrected to. (A word of one description is as often a typo as a word.)
_DESCRIPTION_WORDS_SQL = """
SELECT word FROM ts_stat($$
    SELECT to_tsvector('simple', left(coalesce(description, ''), 2000)) FROM catalog_product WHERE is_active
$$) WHERE ndoc >= 2
"""


@dataclass
class Vocabulary:
    """Catalogue words and how many products use each, with the words grouped by length for lookups."""

    frequencies: dict[str, int]
    # Words the catalogue uses only in descriptions: known, never a correction.
    described: frozenset[str] = frozenset()
    # Catalogue words the full-text search drops (stop words).
    unsearchable: frozenset[str] = frozenset()
    by_length: dict[int, list[str]] = field(init=False)
    # dominant_neighbour's answers: it scans every word of three lengths, and every query asks it of
    # each of its words. Only catalogue words are kept, so this is at most the vocabulary's size.
    _dominant: dict[str, str | None] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.by_length = {}
        for word in self.frequencies:
            self.by_length.setdefault(len(word), []).append(word)

    def __contains__(self, word: str) -> bool:
        return word in self.frequencies or word in self.described

    def products_with_any_of(self, words: Collection[str]) -> int:
        """At least how many active products a full-text search for any of `words` matches: as many as
        use the most used of them in their titles and attributes."""
        return max(
            (
                self.frequencies.get(word.lower(), 0)
                for word in words
                if word.lower() not in self.unsearchable
            ),
            default=0,
        )

    def dominant_neighbour(self, word: str) -> str | None:
        """A catalogue word one edit from this catalogue word that DOMINANT_NEIGHBOUR times as many
        products use (the most used such), or None."""
        if word not in self or len(word) < MIN_CORRECTED_LENGTH:
            return None
        if word not in self._dominant:
            self._dominant[word] = self._dominant_neighbour(word)
        return self._dominant[word]

    def _dominant_neighbour(self, word: str) -> str | None:
        choices = [
            candidate
            for length in (len(word) - 1, len(word), len(word) + 1)
            for candidate in self.by_length.get(length, ())
            if candidate != word
            and self.frequencies[candidate] >= DOMINANT_NEIGHBOUR * max(self.frequencies.get(word, 0), 1)
        ]
        matches = extract(word, choices, scorer=DamerauLevenshtein.distance, score_cutoff=1, limit=None)
        if not matches:
            return None
        return max(matches, key=lambda match: (self.frequencies[match[0]], match[0]))[0]

    def nearest(self, word: str) -> str | None:
        """The vocabulary word closest to `word` within the edits its length allows, the most used one
        among equally close words; None when there is none."""
        candidates = self.candidates(word, limit=1)
        return candidates[0] if candidates else None

    def candidates(self, word: str, *, limit: int | None = None) -> list[str]:
        """Vocabulary words within the edits `word`'s length allows, likeliest first: fewest edits, then
        not shorter than the typed word, then the most used."""
        if len(word) < MIN_CORRECTED_LENGTH:
            return []
        max_edits = 2 if len(word) >= TWO_EDITS_FROM_LENGTH else 1
        choices = [
            candidate
            for length in range(max(len(word) - max_edits, MIN_CORRECTED_LENGTH), len(word) + max_edits + 1)
            for candidate in self.by_length.get(length, ())
        ]
        matches = extract(
            word, choices, scorer=DamerauLevenshtein.distance, score_cutoff=max_edits, limit=None
        )
        ranked = sorted(
            matches,
            key=lambda match: (match[1], len(match[0]) < len(word), -self.frequencies[match[0]], match[0]),
        )
        return [match[0] for match in ranked[:limit]]


@dataclass
class SpellingCorrection:
    """A query and the query with its unknown words corrected (`corrected` is None when nothing changed)."""

    query: str
    corrected: str | None
    changes: list[tuple[str, str]]


def vocabulary_build() -> Vocabulary:
    with search_connection().cursor() as cursor:
        cursor.execute(_VOCABULARY_SQL)
        rows = cursor.fetchall()
        frequencies = {word: int(count) for word, count, _ in rows}
        unsearchable = frozenset(word for word, _, searchable in rows if not searchable)
        cursor.execute(_DESCRIPTION_WORDS_SQL)
        described = frozenset(word for (word,) in cursor.fetchall() if word not in frequencies)
    return Vocabulary(frequencies, described, unsearchable)


vocabulary_cache = CheckedCache(
    build=vocabulary_build,
    generation=lambda: table_generation("catalog_product", where="is_active"),
    check_seconds=lambda: float(search_settings.VOCABULARY_CHECK_SECONDS),
)


def query_correct_spelling(
    query: str,
    *,
    vocabulary: Vocabulary | None = None,
    known: Collection[str] = (),
    which_match: Callable[[Sequence[str]], list[bool]] | None = None,
) -> SpellingCorrection:
    """The query with each word the catalogue does not use replaced by a nearby catalogue word;
    `known`: more words to leave as typed (the synonyms' words).

    Each unknown word's likeliest correction is taken unless no product has every word of the result
    (`which_match`, default catalogue_matches: titles and attributes): then the next likeliest
    combinations of the words' CANDIDATES_PER_WORD closest corrections are tried, and the first that
    some product has wins ("blie shit" is "blue shirt", not "blue shift", in a shop of shirts).
    A typo can also make another word the catalogue uses ("back" for "black"): when the query still
    matches no product, each word that a far more used catalogue word is one edit from
    (DOMINANT_NEIGHBOUR times the products) is replaced by it, if the query then matches."""
    vocabulary = vocabulary or vocabulary_cache.get()
    which_match = which_match or catalogue_matches
    words = list(WORD.finditer(query))
    options: dict[int, list[str]] = {}
    for position, match in enumerate(words):
        lowered = match.group(0).lower()
        if lowered in vocabulary or lowered in known or not lowered.isalpha():
            continue
        candidates = vocabulary.candidates(lowered, limit=CANDIDATES_PER_WORD)
        if candidates:
            options[position] = candidates

    def spelled(choice: dict[int, str]) -> str:
        parts, end = [], 0
        for position, match in enumerate(words):
            parts += [query[end : match.start()], choice.get(position, match.group(0))]
            end = match.end()
        return "".join(parts + [query[end:]])

    combinations = _likeliest_combinations(options)
    choice = combinations[0]
    corrected = spelled(choice)
    matched: bool | None = None
    if len(combinations) > 1:
        texts = [spelled(combination) for combination in combinations]
        found = which_match(texts)
        matched = any(found)
        if matched:
            choice, corrected = combinations[found.index(True)], texts[found.index(True)]
    changes = [(words[position].group(0), word) for position, word in sorted(choice.items())]

    # A query that matched as corrected needs no second look.
    suspects = (
        {}
        if matched
        else {
            word: neighbour
            for word in {match.group(0) for match in WORD.finditer(corrected)}
            if word.lower() not in known and (neighbour := vocabulary.dominant_neighbour(word.lower()))
        }
    )
    if suspects and not matched:
        replaced = WORD.sub(lambda match: suspects.get(match.group(0), match.group(0)), corrected)
        checks = which_match([corrected, replaced]) if matched is None else [False, *which_match([replaced])]
        if not checks[0] and checks[1]:
            changes += list(suspects.items())
            corrected = replaced
    return SpellingCorrection(query=query, corrected=corrected if changes else None, changes=changes)


def _likeliest_combinations(options: dict[int, list[str]]) -> list[dict[int, str]]:
    """Up to MAX_COMBINATIONS choices of one candidate per word, by the sum of the chosen candidates'
    ranks (the likeliest first); [{}] when there is nothing to choose. Enumerated best first from the
    all-likeliest choice, so a query of many mistyped words costs MAX_COMBINATIONS steps, not the
    product of its words' candidates."""
    positions = sorted(options)
    sizes = [len(options[position]) for position in positions]
    start = (0,) * len(positions)
    frontier, seen = [(0, start)], {start}
    ranked: list[tuple[int, ...]] = []
    while frontier and len(ranked) < MAX_COMBINATIONS:
        total, ranks = heapq.heappop(frontier)
        ranked.append(ranks)
        for index, rank in enumerate(ranks):
            following = (*ranks[:index], rank + 1, *ranks[index + 1 :])
            if rank + 1 < sizes[index] and following not in seen:
                seen.add(following)
                heapq.heappush(frontier, (total + 1, following))
    return [
        {position: options[position][rank] for position, rank in zip(positions, ranks, strict=True)}
        for ranks in ranked
    ]


_MATCHES_SQL = """
SELECT EXISTS (
    SELECT 1 FROM catalog_product WHERE is_active AND search_document @@
    regexp_replace(plainto_tsquery('english', text)::text, $re$('(?:[^']|'')*')$re$, '\\1:AB', 'g')::tsquery
) FROM unnest(%s::text[]) WITH ORDINALITY AS queries(text, position) ORDER BY position
"""


def catalogue_matches(queries: Sequence[str]) -> list[bool]:
    """For each query, whether an active product's title and attributes (search document weights A and
    B, not the description) hold every word of it: GIN lookups in one round trip."""
    if not queries:
        return []
    with search_connection().cursor() as cursor:
        cursor.execute(_MATCHES_SQL, [list(queries)])
        return [bool(found) for (found,) in cursor.fetchall()]


def catalogue_has_every_word(query: str) -> bool:
    """Whether an active product's title and attributes hold every word of the query."""
    return catalogue_matches([query])[0]
