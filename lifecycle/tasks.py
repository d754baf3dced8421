"""Celery tasks. Each takes ids, re-reads the rows, and is safe to run twice."""

from __future__ import annotations

import logging
import traceback

from celery import Task, shared_task
from django.db import OperationalError as DatabaseOperationalError

from lifecycle.embedding_pipeline import embedding_process_pending
from lifecycle.embedding_queue import embedding_queue_mark_started
from lifecycle.model_versions import model_version_fail
from lifecycle.models import ModelVersion
from lifecycle.retraining import RetrainOptions, retrain_run
from lifecycle.task_timing import (
    EMBED_PENDING_SOFT_TIME_LIMIT_S,
    EMBED_PENDING_TIME_LIMIT_S,
    RETRAIN_SOFT_TIME_LIMIT_S,
    RETRAIN_TIME_LIMIT_S,
)

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseOperationalError,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=EMBED_PENDING_SOFT_TIME_LIMIT_S,
    time_limit=EMBED_PENDING_TIME_LIMIT_S,
)
def embed_pending(self: Task) -> dict:
    """Embed every product marked dirty, for the active version and any being built."""
    embedding_queue_mark_started()
    report = embedding_process_pending()
    if report.products:
        logger.info(
            "Embedded %d products (%d photos, %d failed photos)",
            report.products,
            report.photos,
            len(report.failed_photos),
        )
    return {"products": report.products, "photos": report.photos, "failed_photos": report.failed_photos}


class RetrainTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        version = ModelVersion.objects.filter(pk=args[0] if args else kwargs.get("version_id")).first()
        if version is not None and version.status in ModelVersion.UNFINISHED_STATUSES:
            model_version_fail(version=version, error=f"{exc!r}\n{einfo}")


@shared_task(
    base=RetrainTask,
    bind=True,
    acks_late=True,
    soft_time_limit=RETRAIN_SOFT_TIME_LIMIT_S,
    time_limit=RETRAIN_TIME_LIMIT_S,
)
def retrain_model(self: Task, version_id: int, options: dict) -> dict:
    """Train, measure, embed and (if better) activate the version created by `manage.py retrain --async`."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        logger.warning("Model version %s is gone; nothing to retrain", version_id)
        return {}
    if version.status != ModelVersion.Status.TRAINING or version.artifact_path:
        logger.warning("Model version %s is %s; not retraining it again", version.name, version.status)
        return {"status": version.status}
    try:
        outcome = retrain_run(version=version, options=RetrainOptions.from_dict(options))
    except Exception:
        logger.error("Retrain of %s failed:\n%s", version.name, traceback.format_exc())
        raise
    return {"status": outcome.version.status, "activated": outcome.activated, "reason": outcome.reason}
