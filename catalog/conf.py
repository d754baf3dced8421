"""The plugin's own settings, in one place, all prefixed `PRODUCT_SEARCH_`.

A host shop overrides any of them in its Django settings, e.g. `PRODUCT_SEARCH_MAX_IMAGE_BYTES = 5_000_000`.
Values are read lazily and the cache is dropped on `setting_changed`, so `override_settings` works.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

PREFIX = "PRODUCT_SEARCH_"

DEFAULTS: dict[str, Any] = {
    # Largest accepted photo upload, in bytes.
    "MAX_IMAGE_BYTES": 10 * 1024 * 1024,
    # Largest accepted photo, in pixels (width x height); larger ones are rejected as possible
    # decompression bombs before they are decoded.
    "MAX_IMAGE_PIXELS": 40_000_000,
    # Photo formats accepted, as Pillow names them.
    "ALLOWED_IMAGE_FORMATS": ("JPEG", "PNG", "WEBP"),
    # Storage folder (inside MEDIA_ROOT) for product photos.
    "PHOTO_UPLOAD_DIR": "products",
    # HNSW build parameters of the per-version vector indexes (pgvector defaults are 16 / 64).
    "HNSW_M": 16,
    "HNSW_EF_CONSTRUCTION": 64,
    # Where retrained models are written (one folder per version).
    "MODEL_DIR": None,  # None: <VAR_DIR>/models
    # Device for encoding: "auto" (CUDA when present), "cpu" or "cuda".
    "DEVICE": "auto",
    # Encoders kept loaded per process (the active one and one being built).
    "LOADED_MODELS_PER_PROCESS": 2,
    # Products per embedding batch: one transaction, one forward pass.
    "EMBED_BATCH_SIZE": 32,
    # A retrained version is activated only if it beats the active one by this much on the
    # held-out products (difference of the R@1+R@5+R@10 sums over both directions).
    "ACTIVATION_MARGIN": 0.0,
    # Retired versions whose vectors are kept (for a quick rollback); older ones are deleted.
    "KEEP_RETIRED_VERSIONS": 1,
    # A training or embedding version with no progress for this long is treated as abandoned.
    "ABANDONED_AFTER_S": 3600,
    # Share of the products held out to measure a retrained model (when no split file is given).
    "VALIDATION_SHARE": 0.1,
}


class PluginSettings:
    """Lazy reads of `PREFIX + name` from Django settings, falling back to `defaults`."""

    def __init__(self, defaults: dict[str, Any]) -> None:
        self._defaults = defaults
        self._cache: dict[str, Any] = {}
        _instances.append(self)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._defaults:
            raise AttributeError(f"Unknown product-search setting {PREFIX}{name}")
        if name not in self._cache:
            self._cache[name] = getattr(settings, PREFIX + name, self._defaults[name])
        return self._cache[name]

    def reload(self) -> None:
        self._cache.clear()


_instances: list[PluginSettings] = []
plugin_settings = PluginSettings(DEFAULTS)


@receiver(setting_changed)
def _reload_plugin_settings(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(PREFIX):
        for instance in _instances:
            instance.reload()
