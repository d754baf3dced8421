import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.importing import CatalogImportAborted, ImportReport, catalog_import, catalog_row_count
from mlcore.splits import split_skus

# Shipped inside the package, so that a shop that installed the wheel can try search at once.
SAMPLE_CATALOG = Path(__file__).resolve().parents[2] / "sample_catalog" / "catalog.jsonl"


class Command(BaseCommand):
    help = "Import (upsert by sku) a JSONL or CSV product catalogue with its photos."

    def add_arguments(self, parser):
        parser.add_argument(
            "path", type=Path, nargs="?", help="catalog.jsonl or .csv; image paths relative to it"
        )
        parser.add_argument(
            "--sample", action="store_true", help="the 240-product sample catalogue shipped with the plugin"
        )
        parser.add_argument("--report", type=Path, help="write rejected rows to this JSONL file")
        parser.add_argument(
            "--allow-rejects", action="store_true", help="exit 0 even if some rows were rejected"
        )
        parser.add_argument("--split-file", type=Path, help="splits.json to import one split from")
        parser.add_argument("--split", help="the split to import (with --split-file)")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        if options["sample"] == bool(options["path"]):
            raise CommandError(
                "Give the catalogue file, or --sample for the shipped sample catalogue (not both)"
            )
        path: Path = SAMPLE_CATALOG if options["sample"] else options["path"]
        if not path.is_file():
            raise CommandError(f"No catalogue file at {path}")
        if bool(options["split_file"]) != bool(options["split"]):
            raise CommandError("--split-file and --split go together")
        allowed = None
        if options["split_file"]:
            try:
                allowed = split_skus(split_file=options["split_file"], split=options["split"])
            except (OSError, ValueError) as error:
                raise CommandError(str(error)) from error

        started = time.perf_counter()
        total = catalog_row_count(path)
        with tqdm(
            total=total, unit="row", desc="Importing", disable=options["no_progress"], file=self.stderr
        ) as bar:
            try:
                report = catalog_import(path=path, allowed_skus=allowed, on_row=lambda: bar.update(1))
            except CatalogImportAborted as aborted:
                # What was done before the outage is still worth showing; the error is one line.
                self._write_report(aborted.report, options, elapsed=time.perf_counter() - started)
                raise CommandError(str(aborted)) from aborted
        self._write_report(report, options, elapsed=time.perf_counter() - started)
        if report.rejections and not options["allow_rejects"]:
            raise CommandError(
                f"{len(report.rejections)} rows were rejected (see above). Fix them and import again "
                "(re-importing is safe), or pass --allow-rejects."
            )

    def _write_report(self, report: ImportReport, options: dict, *, elapsed: float) -> None:
        allowed = bool(options["split_file"])
        self.stdout.write(
            f"Imported {report.imported} products in {elapsed:.1f}s: {report.created} created, "
            f"{report.updated} updated, {report.unchanged} unchanged"
            + (f", {report.skipped_by_split} outside split {options['split']!r}" if allowed else "")
            + f", {len(report.rejections)} rejected."
        )
        for rejection in report.rejections:
            self.stdout.write(f"  line {rejection.line} (sku {rejection.sku or '?'}): {rejection.reason}")
        if options["report"] and report.rejections:
            with options["report"].open("w", encoding="utf-8") as handle:
                for rejection in report.rejections:
                    handle.write(
                        json.dumps(
                            {
                                "line": rejection.line,
                                "sku": rejection.sku,
                                "reason": rejection.reason,
                                "row": rejection.row,
                            },
                            default=str,
                        )
                        + "\n"
                    )
            self.stdout.write(f"Rejected rows written to {options['report']}")
