"""Recording a search as the API answers it: one pipelined append to the Redis buffer, made once the
response has been sent (search.api.SearchPageResponse), and now and then a flush queued for a worker.
Nothing here waits on the database, holds up a shopper, or can fail a search."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
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
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        return  # no worker: the admin's report and `manage.py search_analytics` flush
    try:
        analytics_flush.apply_async(countdown=countdown_s, retry=False)
    except (BrokerError, RedisError, OSError) as error:
        logger.warning("Could not queue the analytics flush (%s); the buffer waits for the next one", error)


@dataclass(frozen=True)
class SearchRecord:
    """A search to record once its response is sent (SearchRecord.send)."""

    search_id: str
    record: dict[str, Any]

    def send(self) -> None:
        """Append the search to the buffer; queue a flush when one is due. Never raises: a Redis
        that is down loses the record (an event naming it is then refused as unknown)."""
        interval = int(search_settings.ANALYTICS_FLUSH_INTERVAL_S)
        try:
            flush_due = buffer_append_search(
                search_id=self.search_id, record=self.record, flush_interval_s=interval
            )
        except BufferUnavailable as error:
            logger.warning("Search analytics buffer unavailable (%s): this search is not recorded", error)
            return
        if flush_due:
            _flush_schedule(interval)


def search_record(
    *, kind: str, query: str, filters: SearchFilters, page: SearchPage, latency_ms: float
) -> SearchRecord | None:
    """The record of one answered search, with its new search id (None when analytics are off). No
    client address or other shopper identifier is kept. The caller sends it after the response."""
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
    return SearchRecord(search_id=search_id, record=record)
