"""Bring every product of the host shop's registered models over again (catalog/sources.py)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.sources import product_sources, product_sources_count, product_sources_sync_all

SHOWN_FAILURES = 20


class Command(BaseCommand):
    help = (
        "Upsert a product for every instance of the models registered with "
        "catalog.sources.product_source_register, and deactivate those whose instance is gone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-progress", action="store_true")
        parser.add_argument(
            "--allow-failures", action="store_true", help="exit 0 even when some instances failed"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not product_sources():
            raise CommandError(
                "No product model is registered: call catalog.sources.product_source_register(model=..., "
                "to_product=...) in your app's AppConfig.ready() (docs/integration.md)."
            )
        total = product_sources_count()
        with tqdm(total=total, unit="product", desc="Syncing", disable=options["no_progress"]) as bar:
            reports = product_sources_sync_all(on_instance=lambda source: bar.update(1))
        failed = 0
        for report in reports:
            outcomes = (
                ", ".join(f"{count} {name}" for name, count in sorted(report.outcomes.items())) or "none"
            )
            self.stdout.write(
                f"{report.source}: {outcomes}; {report.deactivated_gone} deactivated (instance gone); "
                f"{len(report.failures)} failed"
            )
            for pk, reason in report.failures[:SHOWN_FAILURES]:
                self.stderr.write(f"  {report.source} pk={pk}: {reason}")
            failed += len(report.failures)
        if failed and not options["allow_failures"]:
            raise CommandError(f"{failed} instances could not be synced (listed above); the others were.")
        self.stdout.write(
            "Changed products are embedded by the worker, or run `python manage.py embed --pending`."
        )
