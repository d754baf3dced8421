"""Recording a search as the API answers it: one pipelined append to the Redis buffer, and now and
then a flush queued for a worker. Nothing here waits on the database or can fail a search."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError

from search.analytics_buffer import BufferUnavailable, buffer_append_search
from search.conf import search_settings
from search.query_text import query_normalize
from search.ranking import SearchFilters
from search.selectors import SearchPage
from search.tasks import analytics_flush

logger = logging.getLogger(__name__)


def _filters_record(filters: SearchFilters) -> dict[str, Any]:
    record: dict[str, Any] = {name: list(values) for name, values in sorted(filters.values.items()) if values}
    if filters.min_price is not None:
        record["min_price"] = str(filters.min_price)
    if filters.max_price is not None:
        record["max_price"] = str(filters.max_price)
    return record


def _flush_schedule(countdown_s: int) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return  # no worker: the admin's report and `manage.py search_analytics` flush
    try:
        analytics_flush.apply_async(countdown=countdown_s, retry=False)
    except (BrokerError, RedisError, OSError) as error:
        logger.warning("Could not queue the analytics flush (%s); the buffer waits for the next one", error)


def search_record(
    *, kind: str, query: str, filters: SearchFilters, page: SearchPage, latency_ms: float
) -> str | None:
    """Buffer one answered search; returns its search id (None when analytics are off). No client
    address or other shopper identifier is kept."""
    if not search_settings.ANALYTICS_ENABLED:
        return None
    search_id = str(uuid.uuid4())
    record = {
        "id": search_id,
        "at": timezone.now().isoformat(),
        "kind": kind,
        "query": query,
        "normalized_query": query_normalize(query),
        "filters": _filters_record(filters),
        "mode": page.mode,
        "offset": page.offset,
        "result_count": len(page.hits),
        "relaxed": json.loads(json.dumps(page.relaxed, default=str)),
        "result_skus": [hit.product["sku"] for hit in page.hits],
        "latency_ms": round(latency_ms, 2),
        "model_version_id": page.model_version.pk,
    }
    interval = int(search_settings.ANALYTICS_FLUSH_INTERVAL_S)
    try:
        flush_due = buffer_append_search(search_id=search_id, record=record, flush_interval_s=interval)
    except BufferUnavailable as error:
        # Fail open: the shopper gets results; the search has no id, so no events are sent for it.
        logger.warning("Search analytics buffer unavailable (%s): this search is not recorded", error)
        return None
    if flush_due:
        _flush_schedule(interval)
    return search_id
