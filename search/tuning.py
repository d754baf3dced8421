"""Search settings tuned to a shop at retrain, on its own held-out products, through the search code.

A retrain (lifecycle/retraining.py) asks for this with the `search_tuning_requested` signal once the new
version is embedded and indexed. With queries built from the shop's own data (lifecycle.shop_queries:
titles, attribute phrases, description sentences) over its held-out products, every ranking goes
through search/ranking.py, and the settings chosen are:
- `IMAGE_WEIGHT` and `DEFAULT_MODE`: the photo weight of a text query and `vector` or `hybrid`, by the
  mean mAP@10 over the query kinds the shop's data has;
- `SIMILAR_IMAGE_WEIGHT`: the photo weight of "more like this", by mAP@10 where relevant means the same
  gender, colour and article type.
The same queries score the active version at the settings it serves with, for the activation gate.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from catalog.models import Product
from lifecycle.models import ModelVersion, ProductEmbedding
from mlcore.shop_queries import RankingScores, ShopQuery, paired_difference_standard_error, shop_queries
from search.conf import search_setting_for_version, search_settings
from search.ranking import (
    Candidate,
    SearchFilters,
    every_word_matches_first,
    rank_by_fulltext,
    rank_by_vectors,
    reciprocal_rank_fusion,
)
from search.selectors import query_encode_text

logger = logging.getLogger(__name__)

WEIGHTS = tuple(round(0.1 * step, 1) for step in range(11))
MODES = ("vector", "hybrid")
# Candidates per index, as a 24-result page fetches (search.conf MIN_CANDIDATES).
CANDIDATES = 50
# Queries of each kind: enough to tell settings apart, few enough that tuning takes about a minute.
QUERIES_PER_KIND = 300


@dataclass
class _QueryRankings:
    query: ShopQuery
    vector: list[Candidate]  # with both similarities, so any photo weight can be recomputed
    fulltext: list[Candidate]


@dataclass
class TuningReport:
    settings: dict[str, Any]
    # Mean mAP@10 over the query kinds at the chosen settings (new) and at the active's (active).
    score: float
    active_score: float | None
    # Standard error of score - active_score over the same queries (paired): its noise.
    difference_standard_error: float | None = None
    # Per query kind: {"new": metrics, "active": metrics}, and the grid searched.
    by_kind: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    grid: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "score": self.score,
            "active_score": self.active_score,
            "difference_standard_error": self.difference_standard_error,
            "by_kind": self.by_kind,
            "grid": self.grid,
            "seconds": round(self.seconds, 1),
        }


def fused_order(candidates: Sequence[Candidate], image_weight: float) -> list[Candidate]:
    """The ranking SQL's score recomputed at another photo weight on the same candidates."""

    def score(candidate: Candidate) -> float:
        image, text = candidate.image_similarity, candidate.text_similarity
        if image is None or text is None:
            return (image if text is None else text) or 0.0
        return image_weight * image + (1 - image_weight) * text

    return sorted(candidates, key=lambda candidate: (-score(candidate), candidate.product_id))


def ranked_ids(rankings: _QueryRankings, *, mode: str, image_weight: float, rrf_k: int) -> list[int]:
    vector = fused_order(rankings.vector, image_weight)
    if mode == "hybrid":
        # As search_by_text ranks: the same fusion, the same every-word rule.
        vector = reciprocal_rank_fusion([vector, rankings.fulltext], k=rrf_k)
        if search_settings.EVERY_WORD_FIRST:
            vector = every_word_matches_first(vector, rankings.fulltext)
    return [candidate.product_id for candidate in vector]


def _collect(
    *, version: ModelVersion, queries: list[ShopQuery], product_ids: list[int]
) -> list[_QueryRankings]:
    filters = SearchFilters(product_ids=tuple(product_ids))
    collected = []
    for query in queries:
        vector = query_encode_text(version=version, text=query.text)
        candidates = rank_by_vectors(
            version=version,
            vectors={"image": vector, "text": vector},
            image_weight=0.5,
            k=CANDIDATES,
            filters=filters,
        )
        fulltext = rank_by_fulltext(text=query.text, k=CANDIDATES, filters=filters)
        collected.append(_QueryRankings(query, candidates, fulltext))
    return collected


def _scores_by_kind(
    rankings: list[_QueryRankings], *, mode: str, image_weight: float, types: dict[int, str]
) -> dict[str, RankingScores]:
    rrf_k = int(search_settings.RRF_K)
    scores: dict[str, RankingScores] = defaultdict(RankingScores)
    for item in rankings:
        ranked = ranked_ids(item, mode=mode, image_weight=image_weight, rrf_k=rrf_k)
        scores[item.query.kind].add(ranked, item.query, types)
    return dict(scores)


def _score_by_kind(
    rankings: list[_QueryRankings], *, mode: str, image_weight: float, types: dict[int, str]
) -> dict[str, dict[str, float]]:
    scores = _scores_by_kind(rankings, mode=mode, image_weight=image_weight, types=types)
    return {kind: value.means() for kind, value in scores.items()}


def _mean_map(by_kind: dict[str, dict[str, float]]) -> float:
    return float(np.mean([metrics["mAP@10"] for metrics in by_kind.values()])) if by_kind else 0.0


def settings_choose(
    grid: dict[tuple[str, float], float], *, default_mode: str, default_weight: float
) -> tuple[str, float]:
    """The (mode, photo weight) with the best score; a tie goes to the defaults, then to less photo
    weight and to `vector` (the cheaper query)."""

    def preference(key: tuple[str, float]) -> tuple:
        mode, weight = key
        return (grid[key], (mode, weight) == (default_mode, default_weight), -weight, mode == "vector")

    return max(grid, key=preference)


def _similar_weight(
    *, version: ModelVersion, product_ids: list[int], limit: int
) -> tuple[float, dict[str, float]]:
    """The "more like this" photo weight with the best mAP@10 (relevant: same gender, colour, type)."""
    products = list(Product.objects.filter(pk__in=product_ids, is_active=True).order_by("pk")[:limit])
    labels = {
        product.pk: (product.gender, product.colour, product.article_type)
        for product in Product.objects.filter(pk__in=product_ids)
    }
    rows = ProductEmbedding.objects.filter(model_version=version, product__in=products).select_related(
        "image"
    )
    vectors: dict[int, dict[str, Any]] = defaultdict(dict)
    for row in rows.order_by("product_id", "kind", "image__position", "image_id"):
        vectors[row.product_id].setdefault(row.kind, np.asarray(row.embedding, dtype=np.float32))
    grid: dict[float, RankingScores] = defaultdict(RankingScores)
    for product in products:
        own = vectors.get(product.pk, {})
        relevant = {pk for pk, label in labels.items() if label == labels[product.pk] and pk != product.pk}
        if not relevant or "text" not in own:
            continue
        filters = SearchFilters(product_ids=tuple(product_ids), exclude_product_id=product.pk)
        candidates = rank_by_vectors(
            version=version, vectors=own, image_weight=0.5, k=CANDIDATES, filters=filters
        )
        query = ShopQuery("similar", "", relevant, product.article_type)
        for weight in WEIGHTS:
            ranked = [candidate.product_id for candidate in fused_order(candidates, weight)]
            grid[weight].add(ranked, query, {})
    if not grid:
        return float(search_settings.SIMILAR_IMAGE_WEIGHT), {}
    scores = {weight: value.means()["mAP@10"] for weight, value in grid.items()}
    default = float(search_settings.SIMILAR_IMAGE_WEIGHT)
    best = max(scores, key=lambda weight: (scores[weight], weight == default, -weight))
    return best, {f"similar {weight:.1f}": round(score, 4) for weight, score in scores.items()}


def search_tune(
    *, version: ModelVersion, product_ids: list[int], active: ModelVersion | None = None,
    per_kind: int = QUERIES_PER_KIND,
) -> TuningReport:  # fmt: skip
    """Choose `version`'s search settings on these (held-out) products, and score `active` on the same
    queries at the settings it serves with."""
    started = time.perf_counter()
    products = list(Product.objects.filter(pk__in=product_ids, is_active=True).order_by("pk"))
    ids = [product.pk for product in products]
    types = {product.pk: product.article_type for product in products}
    queries = shop_queries(products=products, per_kind=per_kind)
    rankings = _collect(version=version, queries=queries, product_ids=ids)
    grid_by_kind = {
        (mode, weight): _score_by_kind(rankings, mode=mode, image_weight=weight, types=types)
        for mode in MODES
        for weight in WEIGHTS
    }
    grid = {key: _mean_map(by_kind) for key, by_kind in grid_by_kind.items()}
    mode, weight = settings_choose(
        grid,
        default_mode=str(search_settings.DEFAULT_MODE),
        default_weight=float(search_settings.IMAGE_WEIGHT),
    )
    similar_weight, similar_grid = _similar_weight(version=version, product_ids=ids, limit=per_kind)
    by_kind = {kind: {"new": metrics} for kind, metrics in grid_by_kind[(mode, weight)].items()}
    active_score = None
    difference_standard_error = None
    if active is not None:
        active_mode = search_setting_for_version("DEFAULT_MODE", active)
        active_weight = float(search_setting_for_version("IMAGE_WEIGHT", active))
        active_rankings = _collect(version=active, queries=queries, product_ids=ids)
        active_scores = _scores_by_kind(
            active_rankings, mode=active_mode, image_weight=active_weight, types=types
        )
        active_by_kind = {kind: value.means() for kind, value in active_scores.items()}
        active_score = _mean_map(active_by_kind)
        for kind, metrics in active_by_kind.items():
            by_kind.setdefault(kind, {})["active"] = metrics
        new_scores = _scores_by_kind(rankings, mode=mode, image_weight=weight, types=types)
        difference_standard_error = paired_difference_standard_error(
            {kind: value.average_precisions for kind, value in new_scores.items()},
            {kind: value.average_precisions for kind, value in active_scores.items()},
        )
    return TuningReport(
        settings={"DEFAULT_MODE": mode, "IMAGE_WEIGHT": weight, "SIMILAR_IMAGE_WEIGHT": similar_weight},
        score=grid[(mode, weight)],
        active_score=active_score,
        difference_standard_error=difference_standard_error,
        by_kind=by_kind,
        grid={f"{key[0]} {key[1]:.1f}": round(value, 4) for key, value in grid.items()} | similar_grid,
        seconds=time.perf_counter() - started,
    )


def tune_for_retrain(
    *, version: ModelVersion, active: ModelVersion | None, product_ids: list[int], **kwargs: Any
) -> dict:
    """Receiver of lifecycle's `search_tuning_requested`: the report as a dict for the version's metrics."""
    report = search_tune(version=version, product_ids=product_ids, active=active)
    logger.info(
        "Search settings for %s chosen on %d held-out products in %.0f s: %s",
        version.name,
        len(product_ids),
        report.seconds,
        report.settings,
    )
    return report.to_dict()
