"""The flag that debounces embedding runs: a burst of saves (an import, an admin editing photos) queues
one `embed_pending` task, not one per save (one per queue when PRODUCT_SEARCH_EMBED_QUEUES names
several: each queue has its own flag).

Set while a run is queued and not yet started; the task clears it when it starts, so a change
committed after that start queues the next run. It expires on its own if a queued task is lost.
"""

from __future__ import annotations

import contextlib

import redis
from django.conf import settings

EMBED_QUEUED_KEY = "product-search:embed-pending-queued"
EMBED_QUEUED_TTL_S = 300


def redis_url() -> str:
    """The Redis that holds the flag: `REDIS_URL`, as this project names it; a host shop without that
    setting gets the local default, as Celery's Redis broker has."""
    return getattr(settings, "REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis() -> redis.Redis:
    return redis.Redis.from_url(redis_url(), socket_connect_timeout=1, socket_timeout=2)


def embedding_queued_key(queue: str | None = None) -> str:
    """The flag of runs sent to `queue`; None: runs sent where Celery routes them."""
    return EMBED_QUEUED_KEY if queue is None else f"{EMBED_QUEUED_KEY}:{queue}"


def embedding_queue_claim(queue: str | None = None) -> bool:
    """Set the flag; False when a run is queued already. Raises redis errors: the caller decides."""
    return bool(_redis().set(embedding_queued_key(queue), "1", nx=True, ex=EMBED_QUEUED_TTL_S))


def embedding_queue_mark_started(queue: str | None = None) -> None:
    with contextlib.suppress(redis.exceptions.RedisError):  # the task runs regardless
        _redis().delete(embedding_queued_key(queue))
