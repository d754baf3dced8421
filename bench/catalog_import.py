"""Import time of a whole catalogue (default: the 9,583-product Myntra set), first load and re-import.

python bench/catalog_import.py [--catalog ../shared/datasets/myntra/catalog.jsonl]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import django_setup
from benchmarks_file import markdown_table, write_section

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "myntra" / "catalog.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    parser.add_argument("--keep", action="store_true", help="keep the products (for the search benchmarks)")
    args = parser.parse_args()
    if not args.catalog.is_file():
        raise SystemExit(f"No catalogue at {args.catalog}: pass --catalog PATH")

    django_setup.setup()
    from tqdm import tqdm

    from catalog.importing import catalog_import, catalog_row_count
    from catalog.models import Product

    if not args.keep:
        Product.objects.all().delete()
    rows = catalog_row_count(args.catalog)
    results = []
    for label in ("first import", "re-import (unchanged)"):
        started = time.perf_counter()
        with tqdm(total=rows, unit="row", desc=label) as bar:
            report = catalog_import(path=args.catalog, on_row=lambda: bar.update(1))
        elapsed = time.perf_counter() - started
        results.append(
            [
                label,
                rows,
                report.created,
                report.updated,
                report.unchanged,
                len(report.rejections),
                f"{elapsed:.1f}",
                f"{rows / elapsed:.0f}",
            ]
        )
        print(results[-1])
    table = markdown_table(
        ["run", "rows", "created", "updated", "unchanged", "rejected", "seconds", "rows/s"], results
    )
    write_section(
        "catalog-import",
        f"## Catalogue import\n\n`python bench/catalog_import.py --catalog {args.catalog.name}` "
        f"({rows} rows, embedded PostgreSQL 18, 2 CPU cores; each row is its own transaction and its "
        f"photo is decoded and verified):\n\n{table}\n",
    )


if __name__ == "__main__":
    main()
