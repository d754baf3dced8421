"""The loaded model of each serving or building version, once per process.

Loading is lazy (never at import) and keyed by version id, so activating another version makes the
next call load that one; only the last few are kept in memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from lifecycle.conf import lifecycle_settings
from lifecycle.models import ModelVersion

if TYPE_CHECKING:
    from mlcore.inference import Encoder

_encoders: OrderedDict[tuple[int, str], Encoder] = OrderedDict()
_lock = threading.Lock()


class ModelArtifactMissing(RuntimeError):
    pass


def encoder_for_version(version: ModelVersion) -> Encoder:
    from pathlib import Path

    from mlcore.inference import Encoder

    key = (version.pk, version.artifact_path)
    with _lock:
        if key in _encoders:
            _encoders.move_to_end(key)
            return _encoders[key]
        if not (Path(version.artifact_path) / "config.json").exists():
            raise ModelArtifactMissing(
                f"Model version {version.name} has no model files at {version.artifact_path!r}. "
                "Retrain it (`manage.py retrain`) or activate another (`manage.py activate_model N`)."
            )
        encoder = Encoder.load(
            version.artifact_path,
            device=lifecycle_settings.DEVICE,
            runtime=lifecycle_settings.ENCODER_RUNTIME,
        )
        _encoders[key] = encoder
        while len(_encoders) > lifecycle_settings.LOADED_MODELS_PER_PROCESS:
            _encoders.popitem(last=False)
        return encoder


def encoder_cache_clear() -> None:
    with _lock:
        _encoders.clear()
