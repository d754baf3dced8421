"""Queueing work without ever failing the write that asked for it."""

from __future__ import annotations

import contextlib
import logging

import redis
from django.conf import settings
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# Set while an embed_pending task is queued and not yet started: a burst of saves (an import, an
# admin editing photos) queues one task, not one per save. The task deletes it when it starts, so a
# change committed after that start queues the next run.
EMBED_QUEUED_KEY = "product-search:embed-pending-queued"
EMBED_QUEUED_TTL_S = 300


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=2)


def embedding_schedule() -> bool:
    """Queue a run of embed_pending unless one is queued already. Returns whether one was queued."""
    from workers.tasks import embed_pending

    if settings.CELERY_TASK_ALWAYS_EAGER:
        embed_pending.apply()
        return True
    try:
        if not _redis().set(EMBED_QUEUED_KEY, "1", nx=True, ex=EMBED_QUEUED_TTL_S):
            return False
        embed_pending.apply_async(retry=False)
    except (redis.exceptions.RedisError, OperationalError) as error:
        logger.warning(
            "Could not queue the embedding task (Redis at %s: %s). The change is saved and the "
            "product stays marked for embedding: a worker catches up when it starts, or run "
            "`python manage.py embed --pending`.",
            settings.REDIS_URL,
            error,
        )
        return False
    return True


def embedding_queue_mark_started() -> None:
    with contextlib.suppress(redis.exceptions.RedisError):  # the task runs regardless
        _redis().delete(EMBED_QUEUED_KEY)
