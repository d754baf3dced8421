"""Queueing embedding runs: a burst of saves queues one run, and a broken broker never fails a save."""

import logging

import pytest

from lifecycle.dispatch import embedding_schedule
from lifecycle.embedding_queue import EMBED_QUEUED_KEY, embedding_queue_mark_started


@pytest.mark.redis
def test_a_burst_of_changes_queues_one_run_until_it_starts(clean_redis):
    assert embedding_schedule() is True
    assert embedding_schedule() is False  # queued already: debounced
    assert clean_redis.exists(EMBED_QUEUED_KEY)
    queued = clean_redis.llen("embed")
    assert queued == 1

    embedding_queue_mark_started()  # what the task does first
    assert embedding_schedule() is True
    assert clean_redis.llen("embed") == 2


def test_redis_down_is_a_logged_warning_not_an_error(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    with caplog.at_level(logging.WARNING, logger="lifecycle.dispatch"):
        assert embedding_schedule() is False
    assert "manage.py embed --pending" in caplog.text
