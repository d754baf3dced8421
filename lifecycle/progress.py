"""How a version's progress reads to a person: one line, shared by the admin and `retrain_status`."""

from __future__ import annotations

from typing import Any


def progress_summary(progress: dict[str, Any] | None) -> str:
    """ "training, epoch 3/30" or "embedding, 120/240 embedded"; "" when nothing was reported."""
    progress = progress or {}
    parts = [progress.get("stage", "")]
    if progress.get("epochs"):
        parts.append(f"epoch {progress.get('epoch')}/{progress['epochs']}")
    if progress.get("total"):
        parts.append(f"{progress.get('embedded', 0)}/{progress['total']} embedded")
    return ", ".join(part for part in parts if part)
