"""The plugin's settings objects: defaults, overrides in the host's settings, unknown names refused."""

import pytest
from django.test import override_settings

from catalog.conf import catalog_settings
from lifecycle.conf import lifecycle_settings
from search.conf import search_settings


def test_a_default_is_read_when_the_host_sets_nothing():
    assert catalog_settings.MAX_IMAGE_BYTES == 10 * 1024 * 1024


def test_an_override_in_the_host_settings_wins_and_is_dropped_afterwards():
    assert catalog_settings.MAX_IMAGE_PIXELS == 40_000_000  # read once: now cached
    with override_settings(PRODUCT_SEARCH_MAX_IMAGE_PIXELS=1_000):
        assert catalog_settings.MAX_IMAGE_PIXELS == 1_000
    assert catalog_settings.MAX_IMAGE_PIXELS == 40_000_000


@pytest.mark.parametrize(
    ("plugin_settings", "name", "value"),
    [(lifecycle_settings, "KEEP_RETIRED_VERSIONS", 3), (search_settings, "MAX_LIMIT", 7)],
)
def test_every_part_reads_its_settings_the_same_way(settings, plugin_settings, name, value):
    setattr(settings, f"PRODUCT_SEARCH_{name}", value)
    assert getattr(plugin_settings, name) == value


@pytest.mark.parametrize("plugin_settings", [catalog_settings, lifecycle_settings, search_settings])
def test_an_unknown_setting_is_refused_with_its_full_name(plugin_settings):
    with pytest.raises(AttributeError, match="Unknown product-search setting PRODUCT_SEARCH_NO_SUCH"):
        _ = plugin_settings.NO_SUCH


def test_each_setting_name_belongs_to_one_part():
    parts = [catalog_settings, lifecycle_settings, search_settings]
    names = [name for part in parts for name in part._defaults]
    assert len(names) == len(set(names))
