"""The Redis side of search analytics: lists that searches and events are appended to, and read back
in batches by the flush (search/analytics.py).

A search's only cost is one pipelined round trip to Redis. Every call here that a shopper's request
makes fails open: a Redis that is down or slow (timeouts of a quarter second) loses analytics, never a
search. Keys carry the database's name, so two databases (two checkouts' test runs, the bench) sharing
one Redis never read each other's buffers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator, Sequence
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.db import connection

from search.conf import search_settings

logger = logging.getLogger(__name__)

SEARCHES = "searches"
EVENTS = "events"
# How long a search's results are kept in Redis for validating its events before the flush has
# written the search to the database (afterwards the database answers).
SEARCH_RESULTS_TTL_S = 6 * 3600
FLUSH_LOCK_TTL_S = 300
PRUNE_EVERY_S = 3600
REDIS_TIMEOUT_S = 0.25


class BufferUnavailable(Exception):
    """Redis did not answer; the caller fails open."""


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S)


def buffer_client() -> redis.Redis:
    # REDIS_URL as this project names it; a host shop without that setting gets the local default.
    return _client(
        search_settings.ANALYTICS_REDIS_URL or getattr(settings, "REDIS_URL", "redis://127.0.0.1:6379/0")
    )


def _key(name: str) -> str:
    return f"product-search:analytics:{connection.settings_dict['NAME']}:{name}"


def buffer_append_search(*, search_id: str, record: dict[str, Any], flush_interval_s: int) -> bool:
    """Append a search and keep its results for its events' validation. Returns whether the caller
    should queue a flush: true for the first search after the last one was queued. Raises
    BufferUnavailable when Redis does not answer."""
    skus = {"offset": record["offset"], "skus": record["result_skus"]}
    try:
        pipeline = buffer_client().pipeline(transaction=False)
        pipeline.rpush(_key(SEARCHES), json.dumps(record))
        pipeline.set(_key(f"search:{search_id}"), json.dumps(skus), ex=SEARCH_RESULTS_TTL_S)
        pipeline.set(_key("flush-queued"), "1", nx=True, ex=max(1, int(flush_interval_s)))
        _, _, flush_due = pipeline.execute()
    except (redis.exceptions.RedisError, OSError) as error:
        raise BufferUnavailable(str(error)) from error
    return bool(flush_due)


def buffer_search_results(search_id: str) -> dict[str, Any] | None:
    """The offset and result skus of a search not yet (or just) flushed; None when Redis has none."""
    try:
        stored = buffer_client().get(_key(f"search:{search_id}"))
    except (redis.exceptions.RedisError, OSError) as error:
        raise BufferUnavailable(str(error)) from error
    return None if stored is None else json.loads(stored)


def buffer_append_event(record: dict[str, Any]) -> None:
    try:
        buffer_client().rpush(_key(EVENTS), json.dumps(record))
    except (redis.exceptions.RedisError, OSError) as error:
        raise BufferUnavailable(str(error)) from error


def buffer_read(name: str, count: int) -> list[dict[str, Any]]:
    """The oldest `count` records of a list, left in place until buffer_drop (so a flush that fails
    between reading and writing loses nothing)."""
    return [json.loads(item) for item in buffer_client().lrange(_key(name), 0, count - 1)]


def buffer_drop(name: str, count: int) -> None:
    """Drop the oldest `count` records, once they are in the database."""
    buffer_client().ltrim(_key(name), count, -1)


def buffer_length(name: str) -> int:
    return int(buffer_client().llen(_key(name)))


def buffer_flush_started() -> None:
    """Let the next search queue the next flush (what arrives from now on is not in this one)."""
    with contextlib.suppress(redis.exceptions.RedisError, OSError):
        buffer_client().delete(_key("flush-queued"))


@contextlib.contextmanager
def buffer_flush_lock(*, wait_s: float) -> Iterator[bool]:
    """One flush at a time, so events are written after the searches they name. Yields whether the
    lock was taken within `wait_s`."""
    token = uuid.uuid4().hex
    key = _key("flush-lock")
    client = buffer_client()
    deadline = time.monotonic() + wait_s
    held = bool(client.set(key, token, nx=True, ex=FLUSH_LOCK_TTL_S))
    while not held and time.monotonic() < deadline:
        time.sleep(0.05)
        held = bool(client.set(key, token, nx=True, ex=FLUSH_LOCK_TTL_S))
    try:
        yield held
    finally:
        if held and client.get(key) == token.encode():
            client.delete(key)


def buffer_prune_due() -> bool:
    """True at most once an hour across every process: pruning is a bulk delete, not needed often."""
    try:
        return bool(buffer_client().set(_key("pruned-recently"), "1", nx=True, ex=PRUNE_EVERY_S))
    except (redis.exceptions.RedisError, OSError):
        return False


def buffer_clear(names: Sequence[str] = (SEARCHES, EVENTS)) -> None:
    """Empty the lists (tests, and a shop that switches analytics off)."""
    client = buffer_client()
    client.delete(*(_key(name) for name in names))
    client.delete(_key("flush-queued"), _key("pruned-recently"))
