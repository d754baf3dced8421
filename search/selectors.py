"""Reads of search: text, photo and similar-product rankings, facets, product details.

The active model version encodes the query (its encoder is loaded once per process,
catalog/encoders.py); search/ranking.py ranks in pgvector; search/facets.py counts the facets. Views
call only these functions.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db.models import Prefetch
from PIL import Image

from catalog.models import Product
from catalog.product_text import product_text
from catalog.selectors import product_photos_in_order, product_primary_photo
from lifecycle.encoders import ModelArtifactMissing, encoder_for_version
from lifecycle.models import ModelVersion, ProductEmbedding
from lifecycle.selectors import model_version_get_active
from search.conf import search_setting_for_version, search_settings
from search.exceptions import ModelFilesMissingError, NoActiveModel, NoActiveModelError
from search.facets import (
    NO_WORD_MATCHES,
    TOO_MANY_MATCHES,
    VECTOR_QUERY,
    FacetBasis,
    FacetCounts,
    facet_count_candidates,
    facet_count_matches,
    products_newest_first,
)
from search.merchandising import merchandising_apply, merchandising_hidden_product_ids
from search.ranking import (
    Candidate,
    FulltextQuery,
    SearchFilters,
    every_word_matches_first,
    fulltext_query_for,
    fulltext_ranking,
    rank_by_vectors,
    reciprocal_rank_fusion,
)
from search.read_replica import search_read_alias
from search.spelling import query_correct_spelling, vocabulary_cache
from search.synonyms import query_expand_synonyms, synonym_cache

MODES = ("vector", "hybrid")


@dataclass
class SearchHit:
    product: dict[str, Any]  # search.ranking.ATTRIBUTE_NAMES
    score: float


@dataclass
class SearchPage:
    hits: list[SearchHit]
    model_version: ModelVersion
    mode: str
    offset: int
    limit: int
    has_more: bool
    facets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Which products the facets count over (search/facets.py); None when facets were not asked for.
    facets_basis: FacetBasis | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    # The query as searched when spelling correction changed it ("showing results for ..."), else None.
    corrected_query: str | None = None
    # What was relaxed because the query and filters left too few results, in the order applied.
    relaxed: list[dict[str, Any]] = field(default_factory=list)
    # The database alias that answered: `default` (the primary) or the read replica (search_read).
    read_from: str = "default"


def search_version_get_active() -> ModelVersion:
    version = model_version_get_active()
    if version is None or not version.embedding_dim:
        raise NoActiveModelError(NoActiveModel.default_detail)
    return version


def _encoder(version: ModelVersion):
    try:
        return encoder_for_version(version)
    except ModelArtifactMissing as error:
        raise ModelFilesMissingError(str(error)) from error


def query_encode_text(*, version: ModelVersion, text: str) -> np.ndarray:
    return _encoder(version).encode_texts([text])[0]


def _text_query_vectors(vector: np.ndarray, *, image_weight: float) -> dict[str, np.ndarray]:
    """The indexes a text query searches: a kind whose score weighs 0 is neither searched nor scored."""
    weights = {"image": image_weight, "text": 1.0 - image_weight}
    return {kind: vector for kind, weight in weights.items() if weight > 0}


def query_encode_photo(*, version: ModelVersion, photo: Image.Image) -> np.ndarray:
    return _encoder(version).encode_images([photo.convert("RGB")])[0]


def _candidate_count(*, offset: int, limit: int) -> int:
    return max(int(search_settings.MIN_CANDIDATES), 2 * (offset + limit))


# Ranks the query's k nearest products under some filters, best first (rank_by_vectors, bound to a
# query's vectors): what a vector query's facets count over.
Nearest = Callable[[SearchFilters, int], list[Candidate]]


def _facets_over_candidates(
    *,
    nearest: Nearest,
    filters: SearchFilters,
    ranked: list[Candidate],
    k: int,
    hidden: Collection[int],
    reason: str,
    matches_more_than: int | None = None,
) -> FacetCounts:
    """Facets over the FACET_CANDIDATES nearest products, from the ranking already made (`ranked`,
    with `k` per index) when it reaches that deep."""
    return facet_count_candidates(
        filters=filters,
        nearest=nearest,
        size=int(search_settings.FACET_CANDIDATES),
        reason=reason,
        ranked=ranked,
        ranked_k=k,
        hidden=hidden,
        matches_more_than=matches_more_than,
    )


def _timed_facets(count: Callable[[], FacetCounts], timings: dict[str, float]) -> FacetCounts:
    started = time.perf_counter()
    counted = count()
    timings["facets_ms"] = (time.perf_counter() - started) * 1000
    return counted


def _page(
    *,
    ranking: list[Candidate],
    version: ModelVersion,
    mode: str,
    offset: int,
    limit: int,
    timings: dict[str, float],
    facets: FacetCounts | None,
) -> SearchPage:
    window = ranking[offset : offset + limit]
    hits = [SearchHit(product=candidate.attributes, score=candidate.score) for candidate in window]
    return SearchPage(
        hits=hits,
        model_version=version,
        mode=mode,
        offset=offset,
        limit=limit,
        has_more=len(ranking) > offset + limit and offset + limit < int(search_settings.MAX_WINDOW),
        facets=facets.facets if facets is not None else {},
        facets_basis=facets.basis if facets is not None else None,
        timings_ms=timings,
        read_from=search_read_alias(),
    )


@dataclass
class _TextRanking:
    candidates: list[Candidate]
    fulltext_matches: int | None  # None: vector mode, no full-text ranking
    # The vector ranking alone (k per index), under the filters of the last ranking made.
    vector_candidates: list[Candidate]
    # At least this many products match the query's words under those filters (FulltextRanking).
    fulltext_matches_read: int = 0


def _rank_text(
    *,
    version: ModelVersion,
    vector: np.ndarray,
    fulltext_query: FulltextQuery | None,
    mode: str,
    k: int,
    filters: SearchFilters,
    timings: dict[str, float],
) -> _TextRanking:
    text_ranking, matches_read = None, 0
    if mode == "hybrid":
        started = time.perf_counter()
        fulltext = fulltext_ranking(query=fulltext_query, k=k, filters=filters)
        text_ranking, matches_read = fulltext.candidates, fulltext.matches_read
        timings["fulltext_ms"] = timings.get("fulltext_ms", 0.0) + (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    vector_ranking = ranking = _text_nearest(version=version, vector=vector)(filters, k)
    if text_ranking is not None:
        ranking = reciprocal_rank_fusion([ranking[:k], text_ranking], k=int(search_settings.RRF_K))
        if search_settings.EVERY_WORD_FIRST:
            ranking = every_word_matches_first(ranking, text_ranking)
    timings["rank_ms"] = timings.get("rank_ms", 0.0) + (time.perf_counter() - started) * 1000
    return _TextRanking(
        ranking, None if text_ranking is None else len(text_ranking), vector_ranking, matches_read
    )


def _text_nearest(*, version: ModelVersion, vector: np.ndarray) -> Nearest:
    """A text query's vector ranking: photos and product texts by cosine, fused by IMAGE_WEIGHT."""
    image_weight = float(search_setting_for_version("IMAGE_WEIGHT", version))

    def nearest(filters: SearchFilters, k: int) -> list[Candidate]:
        return rank_by_vectors(
            version=version,
            vectors=_text_query_vectors(vector, image_weight=image_weight),
            image_weight=image_weight,
            k=k,
            filters=filters,
        )

    return nearest


def _filter_to_relax(filters: SearchFilters) -> tuple[str, Any] | None:
    """The next filter RELAX_FILTER_ORDER gives up, with its value, or None when none is left."""
    for name in search_settings.RELAX_FILTER_ORDER:
        if name == "price":
            if filters.min_price is not None or filters.max_price is not None:
                return name, {"min_price": filters.min_price, "max_price": filters.max_price}
        elif filters.values.get(name):
            return name, list(filters.values[name])
    return None


def _without_filter(filters: SearchFilters, name: str) -> SearchFilters:
    if name == "price":
        return dataclasses.replace(filters, min_price=None, max_price=None)
    return dataclasses.replace(
        filters, values={key: value for key, value in filters.values.items() if key != name}
    )


def search_by_text(
    *,
    query: str,
    filters: SearchFilters,
    limit: int,
    offset: int = 0,
    mode: str | None = None,
    correct_spelling: bool = True,
    facets: bool = True,
) -> SearchPage:
    """Products for a text query: photos and product texts ranked by cosine, fused by
    IMAGE_WEIGHT; `hybrid` adds PostgreSQL full-text ranking by reciprocal rank fusion.

    Words the catalogue does not use are corrected to its nearest words first (search/spelling.py).
    No dead ends: when fewer than RELAX_BELOW products match, filters are given up one at a time in
    RELAX_FILTER_ORDER until enough are found, the products that matched everything first; a hybrid
    query none of whose words any product has is answered by meaning alone. The page says what was
    relaxed.

    Facets (search/facets.py; `facets=False` skips them, for evaluations that read only the hits):
    a hybrid query's facets count every product its words match under the filters, up to FACET_MAX_MATCHES;
    beyond it, and in `vector` mode, they count the FACET_CANDIDATES nearest products."""
    version = search_version_get_active()
    mode = mode or search_setting_for_version("DEFAULT_MODE", version)
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    synonyms = synonym_cache.get()
    vocabulary = vocabulary_cache.get()
    corrected = None
    if correct_spelling and search_settings.CORRECT_SPELLING:
        corrected = query_correct_spelling(query, vocabulary=vocabulary, known=synonyms.words).corrected
    searched = corrected or query
    expansion = query_expand_synonyms(searched, index=synonyms, catalogue_words=vocabulary.frequencies)
    timings["understand_ms"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    vector = query_encode_text(version=version, text=expansion.vector_text)
    timings["encode_ms"] = (time.perf_counter() - started) * 1000
    k = _candidate_count(offset=offset, limit=limit)
    requested_filters = filters
    enough = int(search_settings.RELAX_BELOW)
    relaxed: list[dict[str, Any]] = []
    # The words' tsqueries once for every full-text ranking (each relaxed filter's) and the facets.
    fulltext_query: FulltextQuery | None = None
    if mode == "hybrid":
        started = time.perf_counter()
        fulltext_query = fulltext_query_for(expansion.alternatives)
        timings["fulltext_ms"] = (time.perf_counter() - started) * 1000

    def rank(under: SearchFilters) -> _TextRanking:
        return _rank_text(
            version=version,
            vector=vector,
            fulltext_query=fulltext_query,
            mode=mode,
            k=k,
            filters=under,
            timings=timings,
        )

    ranking = rank(filters)
    while len(ranking.candidates) < enough and (to_relax := _filter_to_relax(filters)) is not None:
        name, value = to_relax
        relaxed.append({"step": "filter", "param": name, "value": value})
        filters = _without_filter(filters, name)
        wider = rank(filters)
        # What matched every filter stays first; the products the relaxed search adds follow.
        found = {candidate.product_id for candidate in ranking.candidates}
        ranking = _TextRanking(
            ranking.candidates + [c for c in wider.candidates if c.product_id not in found],
            wider.fulltext_matches,
            wider.vector_candidates,
            wider.fulltext_matches_read,
        )
    if ranking.fulltext_matches == 0 and ranking.candidates:
        relaxed.insert(0, {"step": "words", "param": None, "value": None})
    # The shop's rules apply to the whole ranking, before the page is cut (search/merchandising.py).
    candidates = merchandising_apply(ranking=ranking.candidates, query=searched, filters=requested_filters)
    counted = None
    if facets:
        hidden = merchandising_hidden_product_ids(query=searched, filters=requested_filters)
        # Without filters, the catalogue's word counts say at least how many products the words match.
        matches_at_least = ranking.fulltext_matches_read
        if not filters.restricts:
            words = [alternative for group in expansion.alternatives for alternative in group]
            matches_at_least = max(matches_at_least, vocabulary.products_with_any_of(words))
        counted = _timed_facets(
            lambda: _text_facets(
                nearest=_text_nearest(version=version, vector=vector),
                ranking=ranking,
                fulltext_query=fulltext_query,
                mode=mode,
                k=k,
                filters=filters,
                hidden=hidden,
                matches_at_least=matches_at_least,
            ),
            timings,
        )
    page = _page(
        ranking=candidates,
        version=version,
        mode=mode,
        offset=offset,
        limit=limit,
        timings=timings,
        facets=counted,
    )
    page.corrected_query = corrected
    page.relaxed = relaxed
    return page


def _text_facets(
    *,
    nearest: Nearest,
    ranking: _TextRanking,
    fulltext_query: FulltextQuery | None,
    mode: str,
    k: int,
    filters: SearchFilters,
    hidden: Collection[int],
    matches_at_least: int = 0,
) -> FacetCounts:
    """A text query's facets under the filters it was answered with (after any relaxation): over every
    full-text match in hybrid mode when its words match and they are at most FACET_MAX_MATCHES, else
    over the nearest candidates, saying why. `matches_at_least`: what the search already knows of how
    many products its words match under the filters."""
    reason, matches_more_than = VECTOR_QUERY, None
    if mode == "hybrid" and (fulltext_query is None or not ranking.fulltext_matches):
        reason = NO_WORD_MATCHES  # the results are by meaning alone: so are the facets
    elif mode == "hybrid":
        cap = int(search_settings.FACET_MAX_MATCHES)
        # The search may already know of more matches than the count may read (the full-text
        # ranking's, the catalogue's word counts): the count would read cap + 1 products to give up.
        if matches_at_least - len(hidden) <= cap:
            counted = facet_count_matches(filters=filters, words=fulltext_query, hidden=hidden, cap=cap)
            if counted is not None:
                return counted
        reason, matches_more_than = TOO_MANY_MATCHES, cap
    return _facets_over_candidates(
        nearest=nearest,
        filters=filters,
        ranked=ranking.vector_candidates,
        k=k,
        hidden=hidden,
        reason=reason,
        matches_more_than=matches_more_than,
    )


def search_facets_by_filters(*, filters: SearchFilters) -> FacetCounts:
    """Facets of a filter-only browse (no query): over every active product under the filters (basis
    `all_matches`) up to FACET_MAX_MATCHES; beyond it over the FACET_CANDIDATES newest of them, as
    nothing ranks them (basis `candidates`, `too_many_matches`)."""
    cap = int(search_settings.FACET_MAX_MATCHES)
    hidden = merchandising_hidden_product_ids(query=None, filters=filters)
    counted = facet_count_matches(filters=filters, words=None, hidden=hidden, cap=cap)
    if counted is not None:
        return counted
    return facet_count_candidates(
        filters=filters,
        nearest=products_newest_first,
        size=int(search_settings.FACET_CANDIDATES),
        reason=TOO_MANY_MATCHES,
        hidden=hidden,
        matches_more_than=cap,
    )


def search_by_photo(*, photo: Image.Image, filters: SearchFilters, limit: int, offset: int = 0) -> SearchPage:
    """Products whose photos look like `photo`: product photos ranked by cosine, best photo per product."""
    version = search_version_get_active()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    vector = query_encode_photo(version=version, photo=photo)
    timings["encode_ms"] = (time.perf_counter() - started) * 1000

    def nearest(under: SearchFilters, k: int) -> list[Candidate]:
        return rank_by_vectors(
            version=version, vectors={"image": vector}, image_weight=1.0, k=k, filters=under
        )

    return _vector_page(
        nearest=nearest, filters=filters, version=version, offset=offset, limit=limit, timings=timings
    )


def _vector_page(
    *,
    nearest: Nearest,
    filters: SearchFilters,
    version: ModelVersion,
    offset: int,
    limit: int,
    timings: dict[str, float],
) -> SearchPage:
    """A page of a vector-only query (photo, "more like this"), ranked by `nearest` under the filters and
    merchandised; its facets over the nearest candidates."""
    started = time.perf_counter()
    k = _candidate_count(offset=offset, limit=limit)
    vector_ranking = nearest(filters, k)
    ranking = merchandising_apply(ranking=vector_ranking, query=None, filters=filters)
    timings["rank_ms"] = (time.perf_counter() - started) * 1000
    hidden = merchandising_hidden_product_ids(query=None, filters=filters)
    counted = _timed_facets(
        lambda: _facets_over_candidates(
            nearest=nearest, filters=filters, ranked=vector_ranking, k=k, hidden=hidden, reason=VECTOR_QUERY
        ),
        timings,
    )
    return _page(
        ranking=ranking,
        version=version,
        mode="vector",
        offset=offset,
        limit=limit,
        timings=timings,
        facets=counted,
    )


def _product_vectors(*, version: ModelVersion, product: Product) -> dict[str, np.ndarray]:
    """The product's primary-photo and text vectors of `version`; encoded now when not stored yet."""
    rows = ProductEmbedding.objects.filter(model_version=version, product=product).select_related("image")
    vectors: dict[str, np.ndarray] = {}
    best_position = None
    for row in rows:
        stored = row.embedding
        vector = np.asarray(stored.to_list() if hasattr(stored, "to_list") else stored, dtype=np.float32)
        if row.kind == ProductEmbedding.Kind.TEXT or row.image is None:
            vectors["text"] = vector
        elif best_position is None or (row.image.position, row.image.pk) < best_position:
            best_position = (row.image.position, row.image.pk)
            vectors["image"] = vector
    if "text" not in vectors:
        vectors["text"] = query_encode_text(version=version, text=product_text(product))
    if "image" not in vectors:
        primary = product_primary_photo(product=product)
        if primary is not None:
            with primary.image.open("rb") as handle:
                photo = Image.open(handle)
                photo.load()
            vectors["image"] = query_encode_photo(version=version, photo=photo)
    return vectors


def search_similar(*, product: Product, filters: SearchFilters, limit: int, offset: int = 0) -> SearchPage:
    """Products like `product` ("more like this"): its photo against the catalogue's photos and its
    text against their texts, fused with SIMILAR_IMAGE_WEIGHT; the product itself is left out."""
    version = search_version_get_active()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    vectors = _product_vectors(version=version, product=product)
    timings["encode_ms"] = (time.perf_counter() - started) * 1000
    filters = SearchFilters(
        values=filters.values,
        min_price=filters.min_price,
        max_price=filters.max_price,
        exclude_product_id=product.pk,
    )
    image_weight = float(search_setting_for_version("SIMILAR_IMAGE_WEIGHT", version))

    def nearest(under: SearchFilters, k: int) -> list[Candidate]:
        return rank_by_vectors(
            version=version, vectors=vectors, image_weight=image_weight, k=k, filters=under
        )

    return _vector_page(
        nearest=nearest, filters=filters, version=version, offset=offset, limit=limit, timings=timings
    )


def product_get_by_sku(*, sku: str) -> Product | None:
    """An active product with its photos in order, or None."""
    if "\x00" in sku:
        # No product has one (PostgreSQL text cannot hold NUL) and the query would fail with a
        # DataError: a URL such as /products/a%00b/ is simply a product that does not exist.
        return None
    photos = Prefetch("images", queryset=product_photos_in_order())
    return Product.objects.filter(sku=sku, is_active=True).prefetch_related(photos).first()
