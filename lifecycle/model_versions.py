"""The life of a model version: register, embed the catalogue, index, activate, roll back, prune.

training -> embedding -> ready -> active -> retired, or failed at any step. Search reads the one
`active` version; activation swaps two rows in one transaction, so it never sees none or two.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from catalog.models import Product
from lifecycle.conf import lifecycle_settings
from lifecycle.embedding_pipeline import EmbeddingReport, embedding_backfill_version, products_missing_vectors
from lifecycle.models import ModelVersion, ProductEmbedding
from lifecycle.vector_indexes import vector_index_create, vector_index_drop, vector_index_names_existing

logger = logging.getLogger(__name__)


class ModelVersionError(Exception):
    """A lifecycle step that cannot be done; the message says why and what to do."""


class ModelVersionClaimed(ModelVersionError):
    """The version is not this process's to train: another claimed it, or it is past training."""

    def __init__(self, version: ModelVersion):
        self.version = version
        holder = f", claimed by {version.claimed_by} at {version.claimed_at:%Y-%m-%d %H:%M:%S} UTC"
        super().__init__(
            f"Version {version.name} is {version.status}{holder if version.claimed_at else ''}: "
            "another process trains it or has trained it."
        )


def model_directory() -> Path:
    configured = lifecycle_settings.MODEL_DIR
    if configured:
        return Path(configured)
    # This project keeps local state in VAR_DIR; a host shop has none and must say where models go.
    var_dir = getattr(settings, "VAR_DIR", None)
    if var_dir is None:
        raise ImproperlyConfigured(
            "Set PRODUCT_SEARCH_MODEL_DIR in your settings: the folder retrained models are written to "
            "(one subfolder per version), on storage every web and worker process can read."
        )
    return Path(var_dir) / "models"


def model_version_create(
    *,
    name: str,
    artifact_path: str = "",
    status: str = ModelVersion.Status.TRAINING,
    config: dict[str, Any] | None = None,
) -> ModelVersion:
    version = ModelVersion(name=name, artifact_path=artifact_path, status=status, config=config or {})
    version.full_clean()
    version.save()
    return version


def model_version_register_checkpoint(*, path: Path, name: str, metrics: dict | None = None) -> ModelVersion:
    """A ModelVersion for an mlcore checkpoint folder (status ready, not yet embedded)."""
    from mlcore.checkpoint import read_checkpoint_config, retrieval_dim_of

    payload = read_checkpoint_config(path)
    version = model_version_create(
        name=name,
        artifact_path=str(Path(path).resolve()),
        status=ModelVersion.Status.EMBEDDING,
        config=payload,
    )
    version.embedding_dim = retrieval_dim_of(payload)
    version.metrics = metrics or {}
    version.save(update_fields=["embedding_dim", "metrics", "updated_at"])
    return version


def model_version_set_progress(*, version: ModelVersion, **progress: Any) -> None:
    """Merge stage/epoch/count fields into the version's progress; visible in the admin at once."""
    version.progress = {**(version.progress or {}), **progress, "updated_at": timezone.now().isoformat()}
    ModelVersion.objects.filter(pk=version.pk).update(progress=version.progress, updated_at=timezone.now())


def _claim_holder() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


def model_version_claim(*, version: ModelVersion, note: str = "") -> bool:
    """Claim a `training` version for this process, atomically: True for the one caller that does.

    One conditional UPDATE (`... WHERE claimed_at IS NULL AND status = 'training'`), so of two
    deliveries of the same retrain message exactly one trains. The claim records the host and pid,
    also in `progress`, where model_version_reap_abandoned tells a killed holder from a slow one;
    `updated_at`, which every progress report refreshes, is its heartbeat. A claim is never taken
    over: a holder that is gone leaves its version to be marked failed (see retrain_model).
    """
    now = timezone.now()
    progress = {**(version.progress or {}), "pid": os.getpid(), "host": socket.gethostname()}
    progress["updated_at"] = now.isoformat()
    holder = _claim_holder() + (f" ({note})" if note else "")
    claimed = ModelVersion.objects.filter(
        pk=version.pk, claimed_at__isnull=True, status=ModelVersion.Status.TRAINING, artifact_path=""
    ).update(claimed_by=holder, claimed_at=now, progress=progress, updated_at=now)
    if claimed:
        version.claimed_by, version.claimed_at, version.progress = holder, now, progress
    return bool(claimed)


def model_version_claimed_elsewhere(*, version: ModelVersion) -> bool:
    """Whether another process holds the version's claim (not this one, and not nobody)."""
    holder = _claim_holder()
    return bool(version.claimed_by) and not (
        version.claimed_by == holder or version.claimed_by.startswith(f"{holder} (")
    )


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def model_version_reap_abandoned(*, version_ids: list[int] | None = None) -> list[str]:
    """Mark failed the versions left in training/embedding by a process that is gone (all of them,
    or those of `version_ids`); returns their names.

    Gone: its pid no longer runs on this host, or it has not reported progress for
    PRODUCT_SEARCH_ABANDONED_AFTER_S seconds (a process on another host).
    """
    reaped = []
    stale_before = timezone.now() - timedelta(seconds=lifecycle_settings.ABANDONED_AFTER_S)
    unfinished = ModelVersion.objects.filter(status__in=ModelVersion.UNFINISHED_STATUSES)
    if version_ids is not None:
        unfinished = unfinished.filter(pk__in=version_ids)
    for version in unfinished:
        progress = version.progress or {}
        pid, host = progress.get("pid"), progress.get("host")
        if pid and host == socket.gethostname() and not _process_alive(int(pid)):
            reason = f"The process working on it (pid {pid}) stopped without finishing: killed or crashed."
        elif version.updated_at < stale_before:
            reason = f"No progress reported since {version.updated_at:%Y-%m-%d %H:%M} UTC."
        else:
            continue
        model_version_fail(version=version, error=f"{reason} The active model kept serving; retrain again.")
        reaped.append(version.name)
    return reaped


def model_version_fail(*, version: ModelVersion, error: str) -> None:
    version.status = ModelVersion.Status.FAILED
    version.error = error
    version.save(update_fields=["status", "error", "updated_at"])


def model_version_build(
    *, version: ModelVersion, on_batch: Callable[[EmbeddingReport, int, int], None] | None = None
) -> EmbeddingReport:
    """Embed every active product with `version` and build its indexes; leaves it `ready`.

    Safe to run again after a crash: products already embedded are skipped.
    """
    if version.status not in ModelVersion.BUILDABLE_STATUSES:
        raise ModelVersionError(f"Version {version.name} is {version.status}; only a new one is built.")
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.EMBEDDING)
    version.status = ModelVersion.Status.EMBEDDING
    total_products = Product.objects.filter(is_active=True).count()
    done = total_products - products_missing_vectors(version).count()
    model_version_set_progress(version=version, stage="embedding", embedded=done, total=total_products)

    def progress(batch: EmbeddingReport) -> None:
        nonlocal done
        done += batch.products
        model_version_set_progress(version=version, embedded=done, total=total_products)
        if on_batch is not None:
            on_batch(batch, done, total_products)

    report = embedding_backfill_version(version=version, on_batch=progress)
    model_version_set_progress(version=version, stage="indexing")
    vector_index_create(version=version)
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.READY)
    version.status = ModelVersion.Status.READY
    model_version_set_progress(version=version, stage="ready")
    return report


@transaction.atomic
def model_version_activate(*, version: ModelVersion) -> ModelVersion | None:
    """Make `version` the one search uses; returns the version it replaced (now retired)."""
    version = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if version.status == ModelVersion.Status.ACTIVE:
        return None
    if version.status not in ModelVersion.ACTIVATABLE_STATUSES:
        raise ModelVersionError(
            f"Version {version.name} is {version.status}; only a ready (fully embedded) or retired "
            "version can be activated."
        )
    if (
        len(vector_index_names_existing(version_id=version.pk)) < 2
        or products_missing_vectors(version).exists()
    ):
        raise ModelVersionError(
            f"Version {version.name} is not fully embedded (its vectors were pruned or never built). "
            f"Run `manage.py embed --all --model-version {version.pk}` first."
        )
    previous = ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).first()
    if previous is not None:
        previous.status = ModelVersion.Status.RETIRED
        previous.save(update_fields=["status", "updated_at"])
    version.status = ModelVersion.Status.ACTIVE
    version.activated_at = timezone.now()
    version.save(update_fields=["status", "activated_at", "updated_at"])
    logger.info("Model version %s is now active (was %s)", version.name, previous and previous.name)
    return previous


def model_version_rollback() -> ModelVersion:
    """Activate the most recently active retired version that still has its vectors."""
    candidates = ModelVersion.objects.filter(
        status=ModelVersion.Status.RETIRED, activated_at__isnull=False
    ).order_by(F("activated_at").desc())
    for candidate in candidates:
        try:
            model_version_activate(version=candidate)
        except ModelVersionError:
            continue
        return candidate
    raise ModelVersionError("No earlier version with its vectors is left to roll back to.")


def model_version_prune(*, keep: int | None = None) -> list[str]:
    """Delete the vectors and indexes of retired versions beyond the newest `keep`."""
    keep = lifecycle_settings.KEEP_RETIRED_VERSIONS if keep is None else keep
    retired = ModelVersion.objects.filter(status=ModelVersion.Status.RETIRED).order_by(
        F("activated_at").desc(nulls_last=True), "-id"
    )
    pruned = []
    for version in retired[keep:]:
        if not ProductEmbedding.objects.filter(model_version=version).exists():
            continue
        vector_index_drop(version_id=version.pk)
        ProductEmbedding.objects.filter(model_version=version).delete()
        pruned.append(version.name)
    return pruned


def model_version_rebuild(
    *, version: ModelVersion, on_batch: Callable[[EmbeddingReport, int, int], None] | None = None
) -> EmbeddingReport:
    """Embed the catalogue again with a version that is not active: its vectors are dropped and built
    anew, then it is `ready` (for example after its vectors were pruned)."""
    ProductEmbedding.objects.filter(model_version=version).delete()
    return model_version_build(version=version, on_batch=on_batch)


def model_version_get(*, identifier: str) -> ModelVersion:
    """A version by id or name, for commands."""
    query = ModelVersion.objects.filter(pk=int(identifier)) if identifier.isdigit() else None
    version = (query.first() if query is not None else None) or ModelVersion.objects.filter(
        name=identifier
    ).first()
    if version is None:
        raise ModelVersionError(f"No model version {identifier!r}: `manage.py retrain_status` lists them.")
    return version
