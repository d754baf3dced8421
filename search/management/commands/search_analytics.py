"""`manage.py search_analytics [--prune]`: write the buffered searches and events to the log now, and
delete those older than PRODUCT_SEARCH_ANALYTICS_RETENTION_DAYS (the worker does both on its own)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from search.analytics import search_analytics_flush, search_analytics_prune


class Command(BaseCommand):
    help = "Flush the search analytics buffer into the log; with --prune, delete past the retention."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--prune", action="store_true", help="also delete searches past the retention")

    def handle(self, *args, prune: bool, **options) -> None:
        report = search_analytics_flush()
        if not report.done:
            raise CommandError(
                "Could not flush: Redis did not answer, or another flush held the lock. Try again."
            )
        self.stdout.write(f"Wrote {report.searches} searches and {report.events} events to the log.")
        if prune:
            pruned = search_analytics_prune()
            self.stdout.write(
                f"Deleted {pruned.searches} searches, {pruned.events} events and "
                f"{pruned.popular_queries} popular queries past the retention."
            )
