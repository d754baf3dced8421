"""Queueing embedding runs: a burst of saves queues one run, and a broken broker never fails a save."""

import base64
import json
import logging

import pytest

from lifecycle.dispatch import embedding_schedule
from lifecycle.embedding_queue import EMBED_QUEUED_KEY, embedding_queue_mark_started, embedding_queued_key


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


@pytest.mark.redis
def test_with_several_embed_queues_each_gets_one_run_per_burst(clean_redis, settings):
    # Given the GPU `train` worker shares the embedding with the `embed` workers
    settings.PRODUCT_SEARCH_EMBED_QUEUES = ["embed", "train"]

    # When a burst of changes is scheduled, then each queue gets one run, which knows its queue
    assert embedding_schedule() is True
    assert embedding_schedule() is False
    assert (clean_redis.llen("embed"), clean_redis.llen("train")) == (1, 1)
    message = json.loads(clean_redis.lindex("train", 0))
    assert message["headers"]["task"] == "lifecycle.tasks.embed_pending"
    assert json.loads(base64.b64decode(message["body"]))[1] == {"queue": "train"}

    # And once the `train` run started, the next change queues a run there alone
    embedding_queue_mark_started("train")
    assert embedding_schedule() is True
    assert (clean_redis.llen("embed"), clean_redis.llen("train")) == (1, 2)
    assert not clean_redis.exists(EMBED_QUEUED_KEY)  # the single-queue flag is not involved
    assert clean_redis.exists(embedding_queued_key("embed"), embedding_queued_key("train")) == 2
