"""Search analytics, the database side: writing buffered searches and events in batches, validating
an event against its search, and pruning what is older than the retention.

Recording a search costs the request one Redis round trip (search/analytics_recording.py); this module
does the rest off the request's path, in the `analytics_flush` task (search/tasks.py), in
`manage.py search_analytics`, and before the admin's report is drawn so that it is current.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from lifecycle.models import ModelVersion
from search import analytics_buffer as buffer
from search.conf import search_settings
from search.models import SearchEvent, SearchLog

logger = logging.getLogger(__name__)


class EventRejected(ValueError):
    """An event that names no search we know, or a product that search did not show."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class FlushReport:
    searches: int = 0
    events: int = 0
    dropped_events: int = 0
    # False when Redis did not answer or another flush held the lock for too long.
    done: bool = True


@dataclass(frozen=True)
class PruneReport:
    searches: int
    events: int
    popular_queries: int


def search_results_get(*, search_id: str) -> tuple[int, list[str]]:
    """The offset and result skus of a recorded search: from the buffer while it is not flushed, else
    from the log. Raises EventRejected when neither knows it."""
    try:
        buffered = buffer.buffer_search_results(search_id)
    except buffer.BufferUnavailable:
        buffered = None
    if buffered is not None:
        return int(buffered["offset"]), list(buffered["skus"])
    logged = SearchLog.objects.filter(pk=search_id).values_list("offset", "result_skus").first()
    if logged is None:
        raise EventRejected(
            "search_id",
            "Unknown search id: send the `search_id` of the search response that showed the product.",
        )
    return logged[0], list(logged[1])


def search_event_record(*, search_id: str, sku: str, kind: str) -> int:
    """Record a shopper's click or add-to-cart on a result; returns its position in the ranking (1 is
    the first result). Buffered like searches; with Redis down it is written at once when its search
    is in the log already, else lost (analytics never fail a shopper)."""
    offset, skus = search_results_get(search_id=search_id)
    if sku not in skus:
        raise EventRejected("sku", f"The product {sku!r} was not among the results of this search.")
    position = offset + skus.index(sku) + 1
    now = timezone.now()
    record = {"search_id": search_id, "sku": sku, "kind": kind, "position": position, "at": now.isoformat()}
    try:
        buffer.buffer_append_event(record)
    except buffer.BufferUnavailable as error:
        if SearchLog.objects.filter(pk=search_id).exists():
            SearchEvent.objects.create(
                search_id=search_id, sku=sku, kind=kind, position=position, created_at=now
            )
        else:
            logger.warning(
                "Search analytics buffer unavailable (%s): a %s event is not recorded", error, kind
            )
    return position


def _timestamp(value: str) -> datetime:
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"bad timestamp {value!r} in the analytics buffer")
    return parsed


def _search_logs(records: list[dict[str, Any]]) -> list[SearchLog]:
    versions = {record["model_version_id"] for record in records if record.get("model_version_id")}
    known_versions = set(ModelVersion.objects.filter(pk__in=versions).values_list("pk", flat=True))
    return [
        SearchLog(
            id=record["id"],
            created_at=_timestamp(record["at"]),
            kind=record["kind"],
            query=record["query"],
            normalized_query=record["normalized_query"],
            filters=record["filters"],
            mode=record["mode"],
            offset=record["offset"],
            result_count=record["result_count"],
            relaxed=record.get("relaxed", []),
            result_skus=record["result_skus"],
            latency_ms=record["latency_ms"],
            model_version_id=record.get("model_version_id")
            if record.get("model_version_id") in known_versions
            else None,
        )
        for record in records
    ]


def _popular_queries_count(logs: list[SearchLog]) -> None:
    """Add first-page text searches with results, found as asked (nothing relaxed), to their query's
    count (what suggestions offer)."""
    counted = [
        log
        for log in logs
        if log.kind == SearchLog.Kind.TEXT
        and log.offset == 0
        and log.result_count > 0
        and not log.relaxed
        and log.normalized_query
    ]
    counts = Counter(log.normalized_query for log in counted)
    latest: dict[str, datetime] = {}
    for log in counted:
        latest[log.normalized_query] = max(log.created_at, latest.get(log.normalized_query, log.created_at))
    if not counts:
        return
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO search_popularquery (normalized_query, searches, last_searched_at) "
            "VALUES (%s, %s, %s) "
            "ON CONFLICT (normalized_query) DO UPDATE SET searches = search_popularquery.searches + "
            "EXCLUDED.searches, last_searched_at = greatest(search_popularquery.last_searched_at, "
            "EXCLUDED.last_searched_at)",
            [(query, count, latest[query]) for query, count in sorted(counts.items())],
        )


def _flush_searches(batch: int) -> int:
    written = 0
    while records := buffer.buffer_read(buffer.SEARCHES, batch):
        # A flush that died after writing and before dropping its batch left it in Redis: write only
        # the searches the log does not hold yet (once each), so nothing is counted twice.
        ids = [record["id"] for record in records]
        seen = {str(pk) for pk in SearchLog.objects.filter(pk__in=ids).values_list("pk", flat=True)}
        fresh = []
        for record in records:
            if record["id"] not in seen:
                seen.add(record["id"])
                fresh.append(record)
        logs = _search_logs(fresh)
        with transaction.atomic():
            SearchLog.objects.bulk_create(logs)
            _popular_queries_count(logs)
        buffer.buffer_drop(buffer.SEARCHES, len(records))
        written += len(logs)
    return written


def _flush_events(batch: int) -> tuple[int, int]:
    written = dropped = 0
    while records := buffer.buffer_read(buffer.EVENTS, batch):
        known = {
            str(pk)
            for pk in SearchLog.objects.filter(pk__in={r["search_id"] for r in records}).values_list(
                "pk", flat=True
            )
        }
        # An event whose search is gone (pruned, or lost while Redis was down) has nothing to count for.
        events = [
            SearchEvent(
                search_id=record["search_id"],
                kind=record["kind"],
                sku=record["sku"],
                position=record["position"],
                created_at=_timestamp(record["at"]),
            )
            for record in records
            if record["search_id"] in known
        ]
        SearchEvent.objects.bulk_create(events)
        buffer.buffer_drop(buffer.EVENTS, len(records))
        written += len(events)
        dropped += len(records) - len(events)
    return written, dropped


def search_analytics_flush(*, wait_s: float = 10.0) -> FlushReport:
    """Write every buffered search, then every buffered event, in batches of ANALYTICS_FLUSH_BATCH.

    One flush at a time (a lock in Redis): events are written after the searches they name. Safe to run
    again at any time; a Redis that does not answer leaves the buffer for the next flush.
    """
    batch = int(search_settings.ANALYTICS_FLUSH_BATCH)
    try:
        with buffer.buffer_flush_lock(wait_s=wait_s) as held:
            if not held:
                return FlushReport(done=False)
            buffer.buffer_flush_started()
            searches = _flush_searches(batch)
            events, dropped = _flush_events(batch)
    except (redis.exceptions.RedisError, OSError) as error:
        logger.warning("Search analytics not flushed: Redis did not answer (%s)", error)
        return FlushReport(done=False)
    if dropped:
        logger.info("Dropped %d events of searches no longer in the log", dropped)
    return FlushReport(searches=searches, events=events, dropped_events=dropped)


def search_analytics_prune(*, now: datetime | None = None) -> PruneReport:
    """Delete searches (with their events) and popular queries older than ANALYTICS_RETENTION_DAYS."""
    cutoff = (now or timezone.now()) - timedelta(days=int(search_settings.ANALYTICS_RETENTION_DAYS))
    with transaction.atomic(), connection.cursor() as cursor:
        # Plain SQL: the ORM's cascade would first load every old search into memory.
        cursor.execute(
            "DELETE FROM search_searchevent WHERE search_id IN "
            "(SELECT id FROM search_searchlog WHERE created_at < %s)",
            [cutoff],
        )
        events = cursor.rowcount
        cursor.execute("DELETE FROM search_searchlog WHERE created_at < %s", [cutoff])
        searches = cursor.rowcount
        cursor.execute("DELETE FROM search_popularquery WHERE last_searched_at < %s", [cutoff])
        popular = cursor.rowcount
    return PruneReport(searches=searches, events=events, popular_queries=popular)
