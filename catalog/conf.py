"""The plugin's own settings, in one place, all prefixed `PRODUCT_SEARCH_`.

A host shop overrides any of them in its Django settings, e.g. `PRODUCT_SEARCH_MAX_IMAGE_BYTES = 5_000_000`.
Values are read lazily and the cache is dropped on `setting_changed`, so `override_settings` works.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from mlcore.product_text import DEFAULT_DESCRIPTION_WORDS, DEFAULT_PHRASE_ATTRIBUTES, DEFAULT_TEMPLATE

PREFIX = "PRODUCT_SEARCH_"

DEFAULTS: dict[str, Any] = {
    # Largest accepted photo upload, in bytes.
    "MAX_IMAGE_BYTES": 10 * 1024 * 1024,
    # Largest accepted photo, in pixels (width x height); larger ones are rejected as possible
    # decompression bombs before they are decoded.
    "MAX_IMAGE_PIXELS": 40_000_000,
    # Longest side, in pixels, of a stored photo: a larger upload is accepted and scaled down when it
    # is stored (a JPEG is even decoded at a reduced scale, to spare memory). The model reads 224
    # pixels and the storefront shows a card a few hundred pixels wide; 2048 leaves room for zoom and
    # high-density screens without keeping a 40-megapixel original.
    "MAX_STORED_IMAGE_SIDE": 2048,
    # Photo formats accepted, as Pillow names them.
    "ALLOWED_IMAGE_FORMATS": ("JPEG", "PNG", "WEBP"),
    # Storage folder (inside MEDIA_ROOT) for product photos.
    "PHOTO_UPLOAD_DIR": "products",
    # What the model reads of a product (catalog/product_text.py): a format string over `title`,
    # `attributes` (the attribute phrase below), `description` (its first sentences) and any product
    # field (`brand`, `colour`, ...). Empty parts and their separators are dropped.
    "PRODUCT_TEXT_TEMPLATE": DEFAULT_TEMPLATE,
    # The attribute phrase: gender, colour, these attributes (matched by name, case-insensitively,
    # in this order) and the article type, e.g. "Women Black Skinny Jeans".
    "PHRASE_ATTRIBUTES": DEFAULT_PHRASE_ATTRIBUTES,
    # Words of the description kept in the product text: whole sentences up to this many words (at
    # least the first sentence, cut at this many words if it alone is longer).
    "DESCRIPTION_WORDS": DEFAULT_DESCRIPTION_WORDS,
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

    def is_set_by_host(self, name: str) -> bool:
        """Whether the host's Django settings set `PREFIX + name` (rather than leaving the default)."""
        if name not in self._defaults:
            raise AttributeError(f"Unknown product-search setting {PREFIX}{name}")
        return hasattr(settings, PREFIX + name)


_instances: list[PluginSettings] = []
catalog_settings = PluginSettings(DEFAULTS)


@receiver(setting_changed)
def _reload_plugin_settings(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith(PREFIX):
        for instance in _instances:
            instance.reload()
