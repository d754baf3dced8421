"""Installing the model shipped with the project (mlcore/default_model) as a version of this shop."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from lifecycle.embedding_pipeline import EmbeddingReport
from lifecycle.model_versions import (
    model_version_activate,
    model_version_build,
    model_version_register_checkpoint,
)
from lifecycle.models import ModelVersion
from lifecycle.selectors import model_version_get_active

DEFAULT_VERSION_PREFIX = "default-"


@dataclass
class DefaultModelInstall:
    version: ModelVersion
    registered: bool
    size_bytes: int
    # None when the catalogue was embedded by an earlier run.
    embedding: EmbeddingReport | None
    activated: bool
    active: ModelVersion | None


def default_model_replaces_active(*, active_name: str | None, installed_name: str) -> bool:
    """A shipped model serves when nothing does, and replaces an older shipped one; a model the shop
    trained itself stays active."""
    if active_name is None:
        return True
    return active_name != installed_name and active_name.startswith(DEFAULT_VERSION_PREFIX)


def default_model_install(
    *, on_batch: Callable[[EmbeddingReport, int, int], None] | None = None
) -> DefaultModelInstall:
    """Register the shipped model, embed the catalogue with it, activate it if the rule says so.

    Safe to run again: the version is named by its weights, so a rerun finds it, and a newer shipped
    model registers as a new version.
    """
    from mlcore.default_model import default_model_path, describe_model

    path = default_model_path()
    described = describe_model(path)
    digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()[:10]
    name = f"{DEFAULT_VERSION_PREFIX}{digest}"
    version = ModelVersion.objects.filter(name=name).first()
    registered = version is None
    if version is None:
        version = model_version_register_checkpoint(
            path=path, name=name, metrics={"test": described.get("test"), "val": described.get("val")}
        )
    embedding = None
    if version.status in ModelVersion.BUILDABLE_STATUSES:
        embedding = model_version_build(version=version, on_batch=on_batch)
    active = model_version_get_active()
    activated = default_model_replaces_active(
        active_name=active.name if active else None, installed_name=name
    )
    if activated:
        model_version_activate(version=version)
        version.refresh_from_db()
        active = version
    return DefaultModelInstall(
        version=version,
        registered=registered,
        size_bytes=int(described["size_bytes"]),
        embedding=embedding,
        activated=activated,
        active=active,
    )
