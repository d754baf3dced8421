"""Search quality measured the way a shopper meets it: queries from the shop's own data, through
search_by_text, over a set of catalogue products (a split the shop imported)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from catalog.models import Product
from lifecycle.models import ModelVersion
from mlcore.shop_queries import RankingScores, shop_queries
from search.conf import search_setting_for_version
from search.ranking import SearchFilters
from search.selectors import search_by_text, search_version_get_active


def search_top_ids(
    *, texts: Sequence[str], products: Sequence[Product], mode: str, correct_spelling: bool = True
) -> list[list[int]]:
    """Per query text, the ids of the search API's top 10 when only `products` may be found."""
    filters = SearchFilters(product_ids=tuple(product.pk for product in products))
    pk_of = {product.sku: product.pk for product in products}
    return [
        [
            pk_of[hit.product["sku"]]
            for hit in search_by_text(
                query=text,
                filters=filters,
                limit=10,
                mode=mode,
                correct_spelling=correct_spelling,
                facets=False,  # only the hits are measured
            ).hits
        ]
        for text in texts
    ]


def search_evaluate(
    *, skus: set[str], kind: str, mode: str | None = None, group_of: Callable[[Any], str] | None = None
) -> dict[str, Any]:
    """R@1, R@10, mAP@10 and type_p@10 of the search API's top 10 for queries of `kind` built from
    these products, each ranked among them alone; the active version's mode unless `mode` is given."""
    version: ModelVersion = search_version_get_active()
    products = list(Product.objects.filter(sku__in=skus, is_active=True).order_by("pk"))
    if not products:
        raise ValueError("none of the split's products is in the catalogue: import it first")
    if group_of is not None:
        queries = shop_queries(products=products, kinds=[kind], group_key=group_of)
    else:
        queries = shop_queries(products=products, kinds=[kind])
    mode = mode or search_setting_for_version("DEFAULT_MODE", version)
    types = {product.pk: product.article_type for product in products}
    scores = RankingScores()
    ranked_lists = search_top_ids(texts=[query.text for query in queries], products=products, mode=mode)
    for query, ranked in zip(queries, ranked_lists, strict=True):
        scores.add(ranked, query, types)
    return {
        "kind": kind,
        "mode": mode,
        "model_version": version.name,
        "queries": len(queries),
        "gallery": len(products),
        **scores.means(),
    }
