"""Celery tasks of search: writing the analytics buffer to the log, and pruning the log."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import OperationalError as DatabaseOperationalError

from search.analytics import search_analytics_flush, search_analytics_prune
from search.analytics_buffer import buffer_prune_due

logger = logging.getLogger(__name__)

# Batches of a thousand rows take a fraction of a second; a flush that runs minutes has met a stuck
# database. A hard limit is also what lets a worker start: the broker's visibility timeout must
# outlast every task's (lifecycle/task_timing.py, checked when a worker starts), and the retrain's
# hours do.
ANALYTICS_FLUSH_SOFT_TIME_LIMIT_S = 240
ANALYTICS_FLUSH_TIME_LIMIT_S = 300


@shared_task(
    acks_late=True,
    autoretry_for=(DatabaseOperationalError,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=ANALYTICS_FLUSH_SOFT_TIME_LIMIT_S,
    time_limit=ANALYTICS_FLUSH_TIME_LIMIT_S,
)
def analytics_flush() -> dict:
    """Write the buffered searches and events; prune past the retention at most once an hour. Safe to
    run twice: a search already in the log is not written again."""
    report = search_analytics_flush()
    pruned = search_analytics_prune() if buffer_prune_due() else None
    if report.searches or report.events:
        logger.info("Search analytics: wrote %d searches and %d events", report.searches, report.events)
    return {
        "searches": report.searches,
        "events": report.events,
        "pruned_searches": pruned.searches if pruned else 0,
    }
