"""Search settings, prefixed `PRODUCT_SEARCH_` like the catalogue's (catalog/conf.py).

Kept beside the search code that reads them; a host shop overrides any of them in its Django
settings, e.g. `PRODUCT_SEARCH_DEFAULT_MODE = "hybrid"`. Read lazily and reset on
`setting_changed`, so `override_settings` works in tests.
"""

from __future__ import annotations

from typing import Any

from catalog.conf import PluginSettings

DEFAULTS: dict[str, Any] = {
    # `vector` or `hybrid` (vector + full-text by reciprocal rank fusion) when a query names none.
    # bench/search_quality.py (BENCHMARKS.md, test split): on shopper-like attribute queries ("Men Navy
    # Blue Shirts") hybrid lifts R@1 from .818 to .913 and mAP@10 from .815 to .919; on exact product
    # titles it costs .025 R@1. Shoppers type the former, so hybrid is the default.
    "DEFAULT_MODE": "hybrid",
    # Weight of the photo score in a text query's score (the product-text score gets 1 - weight);
    # measured on the Myntra val split by bench/search_quality.py: 0.0 scored best there with the
    # previous default model, and 0.1 with the current one, each within noise of the other, as Myntra
    # queries share their words with product titles. Photos still bring candidates. A retrain chooses
    # its own on the shop's held-out queries (search/tuning.py).
    "IMAGE_WEIGHT": 0.0,
    # The same weight for "more like this" (photo to photos, text to texts), chosen on the Myntra val
    # split by bench/similar_quality.py (relevant = same gender, colour and article type): mAP@10 .507
    # at 0.1 against .451 at the earlier unmeasured 0.5. Such labels cannot see visual style (a
    # pattern, a cut), so a shop whose shoppers browse by look may want more photo weight.
    "SIMILAR_IMAGE_WEIGHT": 0.1,
    "DEFAULT_LIMIT": 24,
    "MAX_LIMIT": 100,
    # Deepest result served (offset + limit): past it a similarity ranking means little.
    "MAX_WINDOW": 500,
    # Nearest neighbours taken from each HNSW index: at least this many, and twice offset + limit.
    "MIN_CANDIDATES": 50,
    # Facets (search/facets.py, docs/search.md "Facets"): a query whose matching set is defined (hybrid
    # full text, a filter-only browse) counts over all of it, each facet under the other facets'
    # filters; one matching more than FACET_MAX_MATCHES products (with one facet filter left off), and
    # a vector query, which has no matching set, count over the FACET_CANDIDATES nearest products. The
    # response's `facets_basis` says which. The count reads at most FACET_MAX_MATCHES + 1 rows.
    "FACET_CANDIDATES": 50,
    "FACET_MAX_MATCHES": 10000,
    # pgvector's candidate list (hnsw.ef_search) at least this long, whatever the page: the index's
    # recall falls as the catalogue grows, and pgvector's default (40) lost true neighbours from 100,000
    # products on (bench/scale.py sweeps it, BENCHMARKS.md "Search at scale").
    "HNSW_EF_SEARCH": 160,
    # ... and at least this long per million products: at a fixed candidate list, HNSW's recall keeps
    # falling as the catalogue grows past that (BENCHMARKS.md "Search at scale" sweeps both).
    "HNSW_EF_SEARCH_PER_MILLION": 640,
    # pgvector iterative index scan: index tuples visited at most when filters discard many.
    "MAX_SCAN_TUPLES": 20000,
    # A vector search under selective filters ranks every product they leave exactly instead of
    # scanning the HNSW index (search.ranking._exact_ranking_pays): exact neighbours and full pages, at
    # one distance per product left. Always up to EXACT_SEARCH_ALWAYS_UP_TO products; up to
    # EXACT_SEARCH_MAX_MATCHES when they are at most EXACT_SEARCH_MAX_SHARE of the catalogue (a broader
    # filter's HNSW scan finds its page sooner). bench/scale.py measures both paths.
    "EXACT_SEARCH_ALWAYS_UP_TO": 2000,
    "EXACT_SEARCH_MAX_MATCHES": 20000,
    "EXACT_SEARCH_MAX_SHARE": 0.05,
    # k of reciprocal rank fusion: a product's hybrid score is the sum of 1 / (k + rank).
    "RRF_K": 60,
    # Hybrid: products whose title and attributes hold every word of the query come first.
    "EVERY_WORD_FIRST": True,
    # How hybrid search ranks its full-text matches: `ts_rank` (term frequency) or `ts_rank_cd`
    # (cover density). Chosen on the Myntra val split by bench/search_quality.py: ts_rank ranks as well
    # (hybrid mAP@10 .941 vs .937 on attribute queries, .969 vs .968 on titles) in a third of the time.
    "FULLTEXT_RANK": "ts_rank",
    # Full-text matches read at most, for the products with every query word and again for those with
    # any (search.ranking.fulltext_sql): bounds a broad query's cost on a large catalogue.
    "FULLTEXT_MAX_MATCHES": 10000,
    # From this many products (PostgreSQL's estimate of the catalogue) the planner may read a broad
    # query's full-text matches by a sequential scan that stops at FULLTEXT_MAX_MATCHES; below it they
    # are read through the GIN index only, which bench/search_latency.py and docs/scaling.md ("Hybrid
    # search at scale") found cheaper there (search.ranking.set_fulltext_scan_options).
    "FULLTEXT_SEQSCAN_FROM_PRODUCTS": 500_000,
    "MAX_QUERY_LENGTH": 512,
    # Typo tolerance (search/spelling.py): query words the catalogue does not use are corrected to its
    # nearest words. A process rebuilds its vocabulary when the catalogue changed, checking at most this
    # often (seconds).
    "CORRECT_SPELLING": True,
    "VOCABULARY_CHECK_SECONDS": 60,
    # No dead ends: a text search that leaves fewer products than this (1: none at all) gives up its
    # filters one at a time, in this order (`price` is the price range; the others are filter
    # parameters), and says so; the products that matched every filter stay first.
    "RELAX_BELOW": 1,
    "RELAX_FILTER_ORDER": (
        "price",
        "colour",
        "brand",
        "sub_category",
        "master_category",
        "gender",
        "article_type",
    ),
    # API keys accepted in the `X-Api-Key` header. Empty: the API is open (anonymous, read-only).
    "API_KEYS": (),
    # The key the bundled storefront page sends when API_KEYS is set ("" sends none).
    "STOREFRONT_API_KEY": "",
    # DRF throttle rates ("120/min"; None switches it off): per client IP without a key, per key with one.
    "THROTTLE_ANON_RATE": "120/min",
    "THROTTLE_API_KEY_RATE": "1200/min",
    # Analytics (search/analytics.py, docs/analytics.md): every search and its shoppers' clicks and
    # add-to-carts, buffered in Redis (this URL; None: REDIS_URL) and written in batches.
    "ANALYTICS_ENABLED": True,
    "ANALYTICS_REDIS_URL": None,
    # A flush is queued at most this often (the first search after a flush queues the next one).
    "ANALYTICS_FLUSH_INTERVAL_S": 30,
    "ANALYTICS_FLUSH_BATCH": 1000,
    # Searches and their events older than this are deleted (the flush task prunes once an hour).
    "ANALYTICS_RETENTION_DAYS": 90,
    # Merchandising rules (search/merchandising.py): how long a server process keeps its copy of them.
    "MERCHANDISING_CACHE_S": 10,
    # Suggestions as you type (search/suggestions.py).
    "SUGGEST_DEFAULT_LIMIT": 10,
    "SUGGEST_MAX_LIMIT": 20,
    # How long a process keeps brands, categories, colours and popular queries in memory.
    "SUGGEST_CACHE_S": 60,
    # A query is suggested to others once it was searched (with results) this often: one shopper's
    # typing (a name, an order number) is never shown to the next.
    "SUGGEST_MIN_QUERY_SEARCHES": 3,
    "SUGGEST_POPULAR_QUERIES": 2000,
    # A read replica (search/read_replica.py, docs/deployment.md): the database alias the API's search
    # reads go to when it is configured (config/settings.py adds it from DATABASE_REPLICA_URL), answers,
    # and is at most REPLICA_MAX_LAG_SECONDS behind the primary; else they go to the primary. Each
    # process measures the lag at most every REPLICA_CHECK_SECONDS, and tries a replica it could not
    # reach again after REPLICA_RETRY_SECONDS.
    "REPLICA_ALIAS": "replica",
    "REPLICA_MAX_LAG_SECONDS": 5.0,
    "REPLICA_CHECK_SECONDS": 1.0,
    "REPLICA_RETRY_SECONDS": 10.0,
    # Learning from clicks (search/learning.py, `retrain --clicks`): a retrain trains on each query
    # shoppers clicked a product from in at least this many searches, beside the product's own texts.
    "CLICK_TRAINING_MIN_CLICKS": 3,
}


# Same prefix and the same lazy, test-friendly reads as the catalogue's own settings.
search_settings = PluginSettings(DEFAULTS)


# Settings a retrain may choose for its version on the shop's own held-out products (search/tuning.py).
TUNED_SETTINGS = ("IMAGE_WEIGHT", "DEFAULT_MODE", "SIMILAR_IMAGE_WEIGHT")


def search_setting_for_version(name: str, version: Any) -> Any:
    """A tuned setting as search uses it: the host's setting when it sets one, else the value the
    version was tuned to at retrain, else the default."""
    if name not in TUNED_SETTINGS:
        raise ValueError(f"{name} is not a tuned setting; tuned: {', '.join(TUNED_SETTINGS)}")
    tuned = (getattr(version, "search_settings", None) or {}) if version is not None else {}
    if search_settings.is_set_by_host(name) or name not in tuned:
        return getattr(search_settings, name)
    return tuned[name]
