"""System checks of the search app's settings."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

# Settings a release renamed: the old name, set in a shop's settings, would otherwise do nothing.
RENAMED_SETTINGS = {"PRODUCT_SEARCH_FACET_POOL": "PRODUCT_SEARCH_FACET_CANDIDATES"}


@checks.register(checks.Tags.compatibility)
def renamed_settings_check(app_configs, **kwargs) -> list[checks.Warning]:
    return [
        checks.Warning(
            f"{old} is no longer read; it is now {new}.",
            hint=f"Rename {old} to {new} in your settings (docs/search.md, 'Facets').",
            id="product_search.W001",
        )
        for old, new in RENAMED_SETTINGS.items()
        if hasattr(settings, old)
    ]
