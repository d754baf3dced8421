"""Queries built from a shop's own products, to measure and tune search on what its shoppers type.

Three kinds, each with the products that count as relevant:
- `title`: each product's title; relevant: the products sharing its title key (the same title,
  case-insensitive, unless the caller groups differently, e.g. by style).
- `attributes`: one query per (gender, colour, article type) among the products, as a shopper types
  it ("Women Blue Jackets"; without what the shop leaves empty); relevant: every product with them.
- `description`: the first sentence of each description; relevant: that product.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlcore.product_text import description_sentences

QUERY_KINDS = ("title", "attributes", "description")


@dataclass
class ShopQuery:
    kind: str
    text: str
    relevant: set
    # The article type of the product the query was made from (title and description queries) or
    # asked for (attribute queries): what type precision compares.
    article_type: str = ""


def _title_key(product: Any) -> str:
    return " ".join(str(product.title).lower().split())


def _primary_key(product: Any) -> Any:
    return product.pk


def shop_queries(
    *,
    products: Sequence[Any],
    kinds: Iterable[str] = QUERY_KINDS,
    group_key: Callable[[Any], str] = _title_key,
    id_of: Callable[[Any], Any] = _primary_key,
    per_kind: int | None = None,
    seed: int = 0,
) -> list[ShopQuery]:
    """The queries of each kind over `products` (anything with title, gender, colour, article_type and
    description; `id_of` names it in the relevant sets, its `pk` by default), at most `per_kind` of each
    (a seeded sample, the same on every run)."""
    queries: list[ShopQuery] = []
    for kind in kinds:
        if kind not in QUERY_KINDS:
            raise ValueError(f"unknown query kind {kind!r}; choose from {', '.join(QUERY_KINDS)}")
        built = _BUILDERS[kind](products, group_key, id_of)
        if per_kind is not None and len(built) > per_kind:
            built = random.Random(f"{seed}-{kind}").sample(built, per_kind)
        queries += built
    return queries


def _title_queries(products: Sequence[Any], group_key: Callable, id_of: Callable) -> list[ShopQuery]:
    groups: dict[str, set] = defaultdict(set)
    for product in products:
        groups[group_key(product)].add(id_of(product))
    return [
        ShopQuery("title", product.title, groups[group_key(product)], product.article_type)
        for product in products
        if product.title
    ]


def _attribute_queries(products: Sequence[Any], group_key: Callable, id_of: Callable) -> list[ShopQuery]:
    groups: dict[tuple[str, str, str], set] = defaultdict(set)
    for product in products:
        if product.article_type:
            groups[(product.gender or "", product.colour or "", product.article_type)].add(id_of(product))
    return [
        ShopQuery("attributes", " ".join(part for part in key if part), ids, key[2])
        for key, ids in sorted(groups.items())
    ]


def _description_queries(products: Sequence[Any], group_key: Callable, id_of: Callable) -> list[ShopQuery]:
    queries = []
    for product in products:
        sentences = description_sentences(product.description or "")
        if sentences:
            queries.append(ShopQuery("description", sentences[0], {id_of(product)}, product.article_type))
    return queries


_BUILDERS = {
    "title": _title_queries,
    "attributes": _attribute_queries,
    "description": _description_queries,
}


@dataclass
class RankingScores:
    """Sums over queries: R@1, R@10 (share of the relevant in the top 10), mAP@10, type_p@10."""

    totals: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])
    count: int = 0
    # Each query's AP@10 in the order added, for paired comparisons of two rankings of one query set.
    average_precisions: list[float] = field(default_factory=list)

    def add(self, ranked: Sequence, query: ShopQuery, types: dict) -> None:
        top = list(ranked[:10])
        hits, precision_sum = 0, 0.0
        for rank, product_id in enumerate(top, start=1):
            if product_id in query.relevant:
                hits += 1
                precision_sum += hits / rank
        denominator = min(len(query.relevant), 10)
        values = (
            float(bool(top) and top[0] in query.relevant),
            hits / denominator,
            precision_sum / denominator,
            sum(types.get(product_id) == query.article_type for product_id in top) / 10,
        )
        self.totals = [total + value for total, value in zip(self.totals, values, strict=True)]
        self.count += 1
        self.average_precisions.append(values[2])

    def means(self) -> dict[str, float]:
        count = max(self.count, 1)
        names = ("R@1", "R@10", "mAP@10", "type_p@10")
        return {name: total / count for name, total in zip(names, self.totals, strict=True)}


def paired_difference_standard_error(
    new: dict[str, Sequence[float]], active: dict[str, Sequence[float]]
) -> float:
    """The standard error of (mean over kinds of the mean AP of new) - (the same of active), from the
    per-query differences of the same queries: how far the score difference moves by chance alone."""
    kinds = sorted(set(new) & set(active))
    if not kinds:
        return 0.0
    variance = 0.0
    for kind in kinds:
        differences = [a - b for a, b in zip(new[kind], active[kind], strict=True)]
        if len(differences) > 1:
            mean = sum(differences) / len(differences)
            sample_variance = sum((d - mean) ** 2 for d in differences) / (len(differences) - 1)
            variance += sample_variance / len(differences)
    return (variance**0.5) / len(kinds)
