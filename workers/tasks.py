"""Celery tasks. Each takes ids, re-reads the rows, and is safe to run twice."""

from __future__ import annotations

import logging
import traceback

from celery import Task, shared_task
from celery.signals import worker_ready
from django.db import OperationalError as DatabaseOperationalError

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(DatabaseOperationalError,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=1800,
    time_limit=1900,
)
def embed_pending(self: Task) -> dict:
    """Embed every product marked dirty, for the active version and any being built."""
    from catalog.embedding import embedding_process_pending
    from workers.dispatch import embedding_queue_mark_started

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
        from catalog.model_versions import model_version_fail
        from catalog.models import ModelVersion

        version = ModelVersion.objects.filter(pk=args[0] if args else kwargs.get("version_id")).first()
        if version is not None and version.status in (
            ModelVersion.Status.TRAINING,
            ModelVersion.Status.EMBEDDING,
        ):
            model_version_fail(version=version, error=f"{exc!r}\n{einfo}")


@shared_task(base=RetrainTask, bind=True, acks_late=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def retrain_model(self: Task, version_id: int, options: dict) -> dict:
    """Train, measure, embed and (if better) activate the version created by `manage.py retrain --async`."""
    from catalog.models import ModelVersion
    from catalog.retraining import RetrainOptions, retrain_run

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


@worker_ready.connect
def _catch_up_on_start(**kwargs) -> None:
    """Products changed while no worker ran (or Redis was down) are embedded when one starts."""
    from catalog.model_versions import model_version_reap_abandoned
    from workers.dispatch import embedding_schedule

    for name in model_version_reap_abandoned():
        logger.warning("Model version %s was left unfinished by a stopped process: marked failed", name)
    embedding_schedule()
