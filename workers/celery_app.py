"""The Celery app. Redis is the broker (REDIS_URL); JSON only; long and short work on separate queues.

- `embed`: embedding what changed, building a version's vectors (CPU or GPU).
- `train`: retraining (a GPU worker where there is one: `celery -A workers worker -Q train`).
"""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

from lifecycle.task_timing import LONGEST_TIME_LIMIT_S, visibility_timeout_for

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("workers")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # A task is acknowledged when it finishes, so a worker killed mid-task does not lose it; every
    # task is idempotent, so running one twice does no harm.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # Long tasks: a worker takes one message at a time, so others are not stuck behind it.
    worker_prefetch_multiplier=1,
    task_queues=[Queue("embed"), Queue("train")],
    task_default_queue="embed",
    task_routes={"lifecycle.tasks.retrain_model": {"queue": "train"}},
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    # Publishing must fail fast when Redis is down: the product is saved either way, and the
    # embedding catches up with the next worker run or `manage.py embed --pending`.
    # Redis hands an unacknowledged message to another worker after `visibility_timeout`: it must
    # outlast the longest task (a retrain), or a second worker trains the same version. Derived from
    # the tasks' limits, and checked against the registered tasks when a worker starts
    # (lifecycle/task_timing.py).
    broker_transport_options={
        "socket_connect_timeout": 2,
        "visibility_timeout": visibility_timeout_for(LONGEST_TIME_LIMIT_S),
    },
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks(["lifecycle", "search"])
