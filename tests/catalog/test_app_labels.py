"""A database migrated under the old app labels (`catalog`, `lifecycle`) moves to the new ones
without losing a row: catalog/app_labels.py and `manage.py product_search_relabel`."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

from catalog.app_labels import LEGACY_LABELS, legacy_labels_check, legacy_labels_relabel
from catalog.models import Product
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db

PLUGIN_LABELS = ("product_search_catalog", "product_search_lifecycle")


def _as_before_the_rename() -> dict[str, int]:
    """Put the test database's bookkeeping back under the old labels, as a shop that migrated an
    earlier release has it; returns the number of migration rows per new label."""
    recorded = MigrationRecorder(connection).migration_qs
    counts = {label: recorded.filter(app=label).count() for label in PLUGIN_LABELS}
    old_of = {new: old for old, new in LEGACY_LABELS.items()}
    for label in PLUGIN_LABELS:
        recorded.filter(app=label).update(app=old_of[label])
        ContentType.objects.filter(app_label=label).update(app_label=old_of[label])
    ContentType.objects.clear_cache()
    return counts


def _pending_plan() -> list:
    executor = MigrationExecutor(connection)
    return executor.migration_plan(executor.loader.graph.leaf_nodes())


def test_migrate_stops_on_old_labels_and_names_the_command():
    _as_before_the_rename()

    assert _pending_plan(), "under the old labels migrate would create the plugin's tables again"
    with pytest.raises(SystemCheckError, match="product_search_relabel"):
        call_command("migrate", plan=True, skip_checks=False, verbosity=0)


def test_relabel_keeps_rows_history_and_content_type_ids():
    product = ProductFactory(sku="KEPT-1")
    product_type_id = ContentType.objects.get_for_model(Product).pk
    counts = _as_before_the_rename()

    report = legacy_labels_relabel()

    assert report.migrations == {**counts, "product_search": 0}
    assert report.content_types["product_search_catalog"] >= 2  # product, productimage
    assert legacy_labels_check(databases=["default"]) == []
    assert _pending_plan() == []
    ContentType.objects.clear_cache()
    assert ContentType.objects.get_for_model(Product).pk == product_type_id
    assert Product.objects.get(sku="KEPT-1").pk == product.pk


def test_relabel_leaves_a_shop_app_really_labelled_catalog_alone():
    recorded = MigrationRecorder(connection).migration_qs
    recorded.create(app="catalog", name="0001_the_shops_own")
    ContentType.objects.create(app_label="catalog", model="category")
    _as_before_the_rename()

    legacy_labels_relabel()

    assert recorded.filter(app="catalog").count() == 1
    assert ContentType.objects.filter(app_label="catalog", model="category").exists()


def test_relabel_twice_changes_nothing_the_second_time():
    _as_before_the_rename()
    legacy_labels_relabel()

    assert not legacy_labels_relabel().changed
