"""Celery tasks. Each takes ids, re-reads the rows, and is safe to run twice."""

from __future__ import annotations

import logging
import traceback

from celery import Task, shared_task
from django.db import OperationalError as DatabaseOperationalError

from lifecycle.embedding_pipeline import embedding_process_pending
from lifecycle.embedding_queue import embedding_queue_mark_started
from lifecycle.model_versions import (
    ModelVersionClaimed,
    model_version_claimed_elsewhere,
    model_version_fail,
    model_version_reap_abandoned,
)
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
def embed_pending(self: Task, queue: str | None = None) -> dict:
    """Embed every product marked dirty, for the active version and any being built.

    `queue`: the queue embedding_schedule sent this run to, whose flag it clears (None: the one queue
    Celery routes it to). Workers of several queues run it at once without embedding a product twice:
    each batch is claimed FOR UPDATE SKIP LOCKED."""
    embedding_queue_mark_started(queue)
    report = embedding_process_pending()
    if report.products:
        logger.info(
            "Embedded %d products (%d photos, %d failed photos)%s",
            report.products,
            report.photos,
            len(report.failed_photos),
            f" from queue {queue}" if queue else "",
        )
    return {"products": report.products, "photos": report.photos, "failed_photos": report.failed_photos}


class RetrainTask(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        version = ModelVersion.objects.filter(pk=args[0] if args else kwargs.get("version_id")).first()
        # A version another process holds is its business: a failed second delivery never fails it.
        if (
            version is not None
            and version.status in ModelVersion.UNFINISHED_STATUSES
            and not model_version_claimed_elsewhere(version=version)
        ):
            model_version_fail(version=version, error=f"{exc!r}\n{einfo}")


@shared_task(
    base=RetrainTask,
    bind=True,
    acks_late=True,
    soft_time_limit=RETRAIN_SOFT_TIME_LIMIT_S,
    time_limit=RETRAIN_TIME_LIMIT_S,
)
def retrain_model(self: Task, version_id: int, options: dict) -> dict:
    """Train, measure, embed and (if better) activate the version created by `manage.py retrain --async`.

    It trains once however often its message is delivered. The broker's visibility timeout outlasts
    the time limit (lifecycle/task_timing.py), so Redis does not hand a running retrain to a second
    worker; and whatever delivers the message again (a worker lost mid-task, with
    `task_reject_on_worker_lost`, or a host's shorter timeout), the first delivery claims the version
    in one conditional UPDATE (model_version_claim) and any other finds it claimed, or no longer
    `training`, and returns without touching it, saying who holds it.

    A claim is never taken over. When the holder is gone (its pid no longer runs on this host, or it
    reported no progress for PRODUCT_SEARCH_ABANDONED_AFTER_S), the delivery marks the version failed
    with that reason instead of training it again: a retrain that killed its worker (out of memory)
    would kill the next one, in a loop. The active model keeps serving; run `manage.py retrain`.
    A holder on another host that was lost a moment ago still looks alive: its version is marked
    failed once it has been silent for PRODUCT_SEARCH_ABANDONED_AFTER_S (at the next worker start or
    `retrain_status`).
    """
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        logger.warning("Model version %s is gone; nothing to retrain", version_id)
        return {}
    if version.status == ModelVersion.Status.TRAINING and not version.artifact_path:
        try:
            outcome = retrain_run(
                version=version,
                options=RetrainOptions.from_dict(options),
                claim_note=f"task {self.request.id}",
            )
        except ModelVersionClaimed as claimed:
            version = claimed.version
        except Exception:
            logger.error("Retrain of %s failed:\n%s", version.name, traceback.format_exc())
            raise
        else:
            return {
                "status": outcome.version.status,
                "activated": outcome.activated,
                "reason": outcome.reason,
            }
    return _leave_to_its_holder(
        version=version, redelivered=bool((self.request.delivery_info or {}).get("redelivered"))
    )


def _leave_to_its_holder(*, version: ModelVersion, redelivered: bool) -> dict:
    """This delivery does not train `version`: say why, and fail it if its holder is gone."""
    delivery = "A redelivered message" if redelivered else "This delivery"
    if model_version_reap_abandoned(version_ids=[version.pk]):
        version.refresh_from_db()
        logger.warning(
            "%s for model version %s finds its holder (%s) gone: marked failed, not trained again (a retrain "
            "that killed its worker would kill the next). Run `manage.py retrain`. %s",
            delivery,
            version.name,
            version.claimed_by or "no claim",
            version.error,
        )
        return {"status": version.status, "claimed_by": version.claimed_by, "reason": "holder gone"}
    if version.claimed_at is not None:
        logger.warning(
            "%s for model version %s (%s) leaves it alone: claimed by %s at %s",
            delivery,
            version.name,
            version.status,
            version.claimed_by,
            version.claimed_at.isoformat(),
        )
        return {"status": version.status, "claimed_by": version.claimed_by, "reason": "claimed"}
    logger.warning("Model version %s is %s; not retraining it again", version.name, version.status)
    return {"status": version.status}
