"""Queueing work for the workers: embedding without ever failing the write that asked for it, and
retraining on the `train` queue."""

from __future__ import annotations

import logging

import redis
from celery.signals import worker_ready
from django.conf import settings
from kombu.exceptions import OperationalError

from lifecycle.conf import lifecycle_settings
from lifecycle.embedding_queue import embedding_queue_claim, redis_url
from lifecycle.model_versions import ModelVersionError, model_version_fail, model_version_reap_abandoned
from lifecycle.models import ModelVersion
from lifecycle.retraining import RetrainOptions, retrain_prepare
from lifecycle.tasks import embed_pending, retrain_model

logger = logging.getLogger(__name__)


def embedding_schedule() -> bool:
    """Queue a run of embed_pending unless one is queued already, on each queue of EMBED_QUEUES (None:
    where Celery routes it). Returns whether any was queued."""
    # Without a worker (a host shop that runs no Celery, a demo without Redis) the work runs here.
    if getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False):
        embed_pending.apply()
        return True
    queues = lifecycle_settings.EMBED_QUEUES
    queued = False
    try:
        for queue in [None] if queues is None else list(queues):
            if not embedding_queue_claim(queue):
                continue
            if queue is None:
                embed_pending.apply_async(retry=False)
            else:
                embed_pending.apply_async(kwargs={"queue": queue}, queue=queue, retry=False)
            queued = True
    except (redis.exceptions.RedisError, OperationalError) as error:
        logger.warning(
            "Could not queue the embedding task (Redis at %s: %s). The change is saved and the "
            "product stays marked for embedding: a worker catches up when it starts, or run "
            "`python manage.py embed --pending`.",
            redis_url(),
            error,
        )
    return queued


def retrain_request_async(*, options: RetrainOptions) -> ModelVersion:
    """Prepare a version here (importing the catalogue, if any) and queue its training on `train`.

    A broker that cannot take the task leaves the version failed, not waiting for ever.
    """
    version = retrain_prepare(options=options)
    task_options = {**options.to_dict(), "catalog": None}  # imported already: the worker only trains
    try:
        retrain_model.apply_async(args=[version.pk, task_options], retry=False)
    except Exception as error:  # noqa: BLE001 - any broker failure: say so, keep nothing half-done
        model_version_fail(version=version, error=f"Could not queue the retrain: {error}")
        raise ModelVersionError(
            f"Could not queue the retrain ({error}). Is Redis running? Or run `manage.py retrain`."
        ) from error
    return version


@worker_ready.connect
def _catch_up_on_start(**kwargs) -> None:
    """Products changed while no worker ran (or Redis was down) are embedded when one starts."""
    for name in model_version_reap_abandoned():
        logger.warning("Model version %s was left unfinished by a stopped process: marked failed", name)
    embedding_schedule()
