"""Move a database migrated under the plugin's old app labels (`catalog`, `lifecycle`, `search`) to
its current ones: catalog/app_labels.py. Run once before `migrate`; running it again changes nothing."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DEFAULT_DB_ALIAS

from catalog.app_labels import LEGACY_LABELS, legacy_labels_relabel


class Command(BaseCommand):
    help = "Rename the plugin's rows in django_migrations and django_content_type to its current app labels."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        report = legacy_labels_relabel(using=options["database"])
        if not report.changed:
            self.stdout.write("Nothing to rename: no product-search rows under the old app labels.")
            return
        for old_label, new_label in LEGACY_LABELS.items():
            migrations = report.migrations.get(new_label, 0)
            content_types = report.content_types.get(new_label, 0)
            if migrations or content_types:
                self.stdout.write(
                    f"{old_label} -> {new_label}: {migrations} migration records, "
                    f"{content_types} content types"
                )
        self.stdout.write(self.style.SUCCESS("Done: run `python manage.py migrate` next."))
