"""The plugin's app labels, and moving a database from the labels it had before.

The apps were labelled `catalog`, `lifecycle` and `search`, names a shop's own apps (or django-oscar's
`search`) may already use. They are now `product_search_catalog`, `product_search_lifecycle` and
`product_search`; their tables kept their names (`db_table`), so no data moves. What does carry the
label is Django's bookkeeping: the rows of `django_migrations` (which migrations ran) and of
`django_content_type` (which admin history and permissions point at). A database migrated under the
old labels has them under the old names, and `migrate` would try to create the existing tables again.
`legacy_labels_check` stops `migrate` with the command to run; `legacy_labels_relabel` (that command,
`manage.py product_search_relabel`) renames the rows, once, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.core.checks import Error, Tags, register
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

# Old label -> the label the app has now.
LEGACY_LABELS = {
    "catalog": "product_search_catalog",
    "lifecycle": "product_search_lifecycle",
    "search": "product_search",
}
RELABEL_COMMAND = "python manage.py product_search_relabel"


@dataclass
class RelabelReport:
    # new label -> number of rows renamed
    migrations: dict[str, int] = field(default_factory=dict)
    content_types: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return any(self.migrations.values()) or any(self.content_types.values())


def _plugin_migration_names(new_label: str) -> set[str]:
    """This plugin's migration files for an app: only rows with these names are ours to rename, so a
    shop app that really is labelled `catalog` keeps its own rows."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return {name for label, name in loader.disk_migrations if label == new_label}


def _plugin_model_names(new_label: str) -> set[str]:
    if new_label not in {config.label for config in apps.get_app_configs()}:
        return set()
    return {str(model._meta.model_name) for model in apps.get_app_config(new_label).get_models()}


def legacy_labels_pending(*, using: str = DEFAULT_DB_ALIAS) -> dict[str, int]:
    """Old label -> how many of this plugin's applied migrations are still recorded under it."""
    connection = connections[using]
    if MigrationRecorder.Migration._meta.db_table not in connection.introspection.table_names():
        return {}
    recorded = MigrationRecorder(connection).migration_qs
    pending = {}
    for old_label, new_label in LEGACY_LABELS.items():
        names = _plugin_migration_names(new_label)
        count = recorded.filter(app=old_label, name__in=names).count() if names else 0
        if count:
            pending[old_label] = count
    return pending


@transaction.atomic
def legacy_labels_relabel(*, using: str = DEFAULT_DB_ALIAS) -> RelabelReport:
    """Rename this plugin's rows in django_migrations and django_content_type from the old labels to
    the new ones. Safe to run again: a second run finds nothing to rename."""
    from django.contrib.contenttypes.models import ContentType

    report = RelabelReport()
    recorded = MigrationRecorder(connections[using]).migration_qs
    for old_label, new_label in LEGACY_LABELS.items():
        names = _plugin_migration_names(new_label)
        # A migration recorded under both labels (a `migrate` run half-way under the new one) keeps
        # the new row.
        already = set(recorded.filter(app=new_label, name__in=names).values_list("name", flat=True))
        recorded.filter(app=old_label, name__in=already).delete()
        report.migrations[new_label] = recorded.filter(app=old_label, name__in=names).update(app=new_label)

        models = _plugin_model_names(new_label)
        types = ContentType.objects.using(using)
        taken = set(types.filter(app_label=new_label, model__in=models).values_list("model", flat=True))
        report.content_types[new_label] = types.filter(app_label=old_label, model__in=models - taken).update(
            app_label=new_label
        )
    ContentType.objects.clear_cache()
    return report


@register(Tags.database)
def legacy_labels_check(*, databases: Any = None, **kwargs: Any) -> list[Error]:
    """Run by `migrate` (and `check --database`) before it plans: a database migrated under the old
    labels gets the command that moves it, instead of errors about tables that already exist."""
    errors = []
    for alias in databases or ():
        pending = legacy_labels_pending(using=alias)
        if pending:
            listed = ", ".join(f"{count} under `{label}`" for label, count in sorted(pending.items()))
            errors.append(
                Error(
                    f"Database '{alias}' recorded product-search migrations under the app labels it "
                    f"had before ({listed}).",
                    hint=f"Run `{RELABEL_COMMAND}` once (it renames those rows; no table changes), "
                    "then `migrate`.",
                    id="product_search.E001",
                )
            )
    return errors
