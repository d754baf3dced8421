"""Reads of model versions."""

from __future__ import annotations

from lifecycle.models import ModelVersion


def model_version_get_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
