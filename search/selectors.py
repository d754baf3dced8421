"""Reads of search: text, photo and similar-product rankings, facets, product details.

The active model version encodes the query (its encoder is loaded once per process,
catalog/encoders.py); search/ranking.py ranks in pgvector. Views call only these functions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
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
from search.filters import FACETS
from search.merchandising import merchandising_apply
from search.ranking import (
    Candidate,
    SearchFilters,
    every_word_matches_first,
    rank_by_fulltext,
    rank_by_vectors,
    reciprocal_rank_fusion,
)

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
    timings_ms: dict[str, float] = field(default_factory=dict)


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
    return max(
        int(search_settings.MIN_CANDIDATES),
        2 * (offset + limit),
        int(search_settings.FACET_POOL),
    )


def facet_counts(candidates: Sequence[Candidate]) -> dict[str, list[dict[str, Any]]]:
    """Value counts of the facet columns over the best FACET_POOL candidates."""
    pool = candidates[: int(search_settings.FACET_POOL)]
    facets = {}
    for name, column in FACETS.items():
        counts = Counter(candidate.attributes[column] for candidate in pool if candidate.attributes[column])
        facets[name] = [
            {"value": value, "count": count, "param": column}
            for value, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ]
    return facets


def _page(
    *,
    ranking: list[Candidate],
    version: ModelVersion,
    mode: str,
    offset: int,
    limit: int,
    timings: dict[str, float],
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
        facets=facet_counts(ranking),
        timings_ms=timings,
    )


def search_by_text(
    *, query: str, filters: SearchFilters, limit: int, offset: int = 0, mode: str | None = None
) -> SearchPage:
    """Products for a text query: photos and product texts ranked by cosine, fused by
    IMAGE_WEIGHT; `hybrid` adds PostgreSQL full-text ranking by reciprocal rank fusion."""
    version = search_version_get_active()
    mode = mode or search_setting_for_version("DEFAULT_MODE", version)
    if mode not in MODES:
        raise ValueError(f"unknown search mode {mode!r}")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    vector = query_encode_text(version=version, text=query)
    timings["encode_ms"] = (time.perf_counter() - started) * 1000
    k = _candidate_count(offset=offset, limit=limit)
    text_ranking = None
    if mode == "hybrid":
        started = time.perf_counter()
        text_ranking = rank_by_fulltext(text=query, k=k, filters=filters)
        timings["fulltext_ms"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    image_weight = float(search_setting_for_version("IMAGE_WEIGHT", version))
    ranking = rank_by_vectors(
        version=version,
        vectors=_text_query_vectors(vector, image_weight=image_weight),
        image_weight=image_weight,
        k=k,
        filters=filters,
    )
    if text_ranking is not None:
        ranking = reciprocal_rank_fusion([ranking[:k], text_ranking], k=int(search_settings.RRF_K))
        if search_settings.EVERY_WORD_FIRST:
            ranking = every_word_matches_first(ranking, text_ranking)
    ranking = merchandising_apply(ranking=ranking, query=query, filters=filters)
    timings["rank_ms"] = (time.perf_counter() - started) * 1000
    return _page(ranking=ranking, version=version, mode=mode, offset=offset, limit=limit, timings=timings)


def search_by_photo(*, photo: Image.Image, filters: SearchFilters, limit: int, offset: int = 0) -> SearchPage:
    """Products whose photos look like `photo`: product photos ranked by cosine, best photo per product."""
    version = search_version_get_active()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    vector = query_encode_photo(version=version, photo=photo)
    timings["encode_ms"] = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    ranking = rank_by_vectors(
        version=version,
        vectors={"image": vector},
        image_weight=1.0,
        k=_candidate_count(offset=offset, limit=limit),
        filters=filters,
    )
    ranking = merchandising_apply(ranking=ranking, query=None, filters=filters)
    timings["rank_ms"] = (time.perf_counter() - started) * 1000
    return _page(ranking=ranking, version=version, mode="vector", offset=offset, limit=limit, timings=timings)


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
    started = time.perf_counter()
    filters = SearchFilters(
        values=filters.values,
        min_price=filters.min_price,
        max_price=filters.max_price,
        exclude_product_id=product.pk,
    )
    ranking = rank_by_vectors(
        version=version,
        vectors=vectors,
        image_weight=float(search_setting_for_version("SIMILAR_IMAGE_WEIGHT", version)),
        k=_candidate_count(offset=offset, limit=limit),
        filters=filters,
    )
    ranking = merchandising_apply(ranking=ranking, query=None, filters=filters)
    timings["rank_ms"] = (time.perf_counter() - started) * 1000
    return _page(ranking=ranking, version=version, mode="vector", offset=offset, limit=limit, timings=timings)


def product_get_by_sku(*, sku: str) -> Product | None:
    """An active product with its photos in order, or None."""
    if "\x00" in sku:
        # No product has one (PostgreSQL text cannot hold NUL) and the query would fail with a
        # DataError: a URL such as /products/a%00b/ is simply a product that does not exist.
        return None
    photos = Prefetch("images", queryset=product_photos_in_order())
    return Product.objects.filter(sku=sku, is_active=True).prefetch_related(photos).first()
