"""Import speed of a whole catalogue (default: the 9,583-product Myntra set) against raw baselines.

python bench/catalog_import.py [--catalog ../shared/datasets/myntra/catalog.jsonl] [--database NAME]
    [--media-root FOLDER]

Runs, in one process and one sitting so that the ratios hold on a shared machine:
- the import itself: first import (every photo decoded, checked, re-encoded and stored), re-import of
  the unchanged catalogue, re-import with 1% of rows changed (half a new title, half a new photo);
- baselines: COPY of the same rows' text into a scratch table (the database's own floor), reading and
  hashing every photo file (what an unchanged re-import must do at least), and the decode + check +
  re-encode of one photo in one process (what bounds a first import: rows/s at most CPUs / that time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import django_setup
from benchmarks_file import markdown_table, write_section

DEFAULT_CATALOG = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "myntra" / "catalog.jsonl"
BENCH_MEDIA = django_setup.ROOT / "var" / "bench-media"
# Rows changed in the third run: one in this many.
CHANGED_ONE_IN = 100
PHOTOS_TIMED = 500


def _rows(catalog: Path) -> list[dict]:
    with catalog.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _changed_copy(rows: list[dict], catalog: Path, folder: Path) -> tuple[Path, int]:
    """The catalogue with one row in CHANGED_ONE_IN changed (alternately its title, its photo), image
    paths made absolute so that the copy can live elsewhere."""
    base = catalog.resolve().parent
    changed = 0
    lines = []
    for index, row in enumerate(rows):
        row = dict(row, image=str(base / row["image"]))
        if index % CHANGED_ONE_IN == 0:
            changed += 1
            if (index // CHANGED_ONE_IN) % 2 == 0:
                row["title"] = row["title"] + " (new season)"
            else:
                row["image"] = str(base / rows[index + 1 if index + 1 < len(rows) else 0]["image"])
        lines.append(json.dumps(row))
    path = folder / "catalog-changed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, changed


TEXT_COLUMNS = ["sku", "title", "description", "brand", "gender", "colour", "master_category"]
TEXT_COLUMNS += ["sub_category", "article_type", "season", "usage"]


def _copy_baseline(rows: list[dict], *, like_products: bool) -> float:
    """Seconds to COPY the rows' product columns into a scratch table, in a transaction rolled back.

    `like_products`: the table is a copy of catalog_product with its indexes and its generated
    full-text column (what writing these rows costs the database itself); else plain text columns.
    """
    from django.db import connection, transaction

    columns = list(TEXT_COLUMNS)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if like_products:
            cursor.execute(
                "CREATE TEMP TABLE bench_import_copy (LIKE catalog_product INCLUDING ALL) ON COMMIT DROP"
            )
            extra = ["currency", "is_active", "source", "embedding_dirty", "created_at", "updated_at"]
            extra_values = ["", True, "", True, "now", "now"]
        else:
            definitions = ", ".join(f"{name} text NOT NULL" for name in columns)
            cursor.execute(
                f"CREATE TEMP TABLE bench_import_copy ({definitions}, attributes jsonb) ON COMMIT DROP"
            )
            extra, extra_values = [], []
        names = ", ".join([*columns, "attributes", *extra])
        with cursor.copy(f"COPY bench_import_copy ({names}) FROM STDIN") as copy:
            for row in rows:
                values = [str(row.get(name) or "") for name in columns]
                copy.write_row([*values, json.dumps(row.get("attributes") or {}), *extra_values])
        transaction.set_rollback(True)
    return time.perf_counter() - started


def _hash_baseline(rows: list[dict], base: Path) -> float:
    started = time.perf_counter()
    for row in rows:
        hashlib.sha256((base / row["image"]).read_bytes()).hexdigest()
    return time.perf_counter() - started


def _photo_seconds(rows: list[dict], base: Path) -> tuple[float, int]:
    """(median seconds to read, decode, check and re-encode one photo in this process, mean bytes of
    the re-encoded photos)."""
    from catalog.photos import photo_limits, photo_prepare_file

    limits = photo_limits()
    times, sizes = [], []
    for row in rows[:PHOTOS_TIMED]:
        started = time.perf_counter()
        prepared = photo_prepare_file(str(base / row["image"]), limits)
        times.append(time.perf_counter() - started)
        sizes.append(len(getattr(prepared, "content", b"")))
    return statistics.median(times), int(statistics.mean(sizes))


def _file_baseline(folder: Path, *, count: int, size: int) -> float:
    """Seconds to create `count` files of `size` bytes in `folder` (open, write, close): what storing
    the photos costs the filesystem at least."""
    probe = folder / "bench-file-probe"
    probe.mkdir(parents=True, exist_ok=True)
    content = os.urandom(size)
    started = time.perf_counter()
    for number in range(count):
        with open(probe / f"{number}.jpg", "xb") as handle:
            handle.write(content)
    elapsed = time.perf_counter() - started
    shutil.rmtree(probe)
    return elapsed


class CpuClock:
    """CPU seconds spent by this process, its reaped children (the photo workers) and its database
    backend (read from /proc when the server runs on this machine): what the import costs, whatever
    else the machine's CPUs are busy with."""

    def __init__(self) -> None:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self.backend_stat = Path(f"/proc/{cursor.fetchone()[0]}/stat")

    def _backend(self) -> float | None:
        try:
            fields = self.backend_stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def read(self) -> tuple[float, float | None]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime, self._backend()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    parser.add_argument("--database", default=django_setup.BENCH_DATABASE)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the products (for the search benchmarks)")
    parser.add_argument(
        "--media-root",
        type=Path,
        default=BENCH_MEDIA,
        help="the photos' folder, a scratch one: its products/ is emptied first",
    )
    args = parser.parse_args()
    if not args.catalog.is_file():
        raise SystemExit(f"No catalogue at {args.catalog}: pass --catalog PATH")

    os.environ["MEDIA_ROOT"] = str(args.media_root.resolve())
    django_setup.setup(database=args.database)
    from django.conf import settings
    from tqdm import tqdm

    from catalog.importing import BATCH_SIZE, catalog_import, catalog_row_count
    from catalog.models import Product

    batch_size = args.batch_size or BATCH_SIZE
    Product.objects.all().delete()
    media_root = Path(settings.MEDIA_ROOT)
    shutil.rmtree(media_root / "products", ignore_errors=True)  # the photos of earlier runs
    rows = _rows(args.catalog)
    base = args.catalog.resolve().parent
    count = catalog_row_count(args.catalog)
    cpus = os.cpu_count() or 1

    load_before = os.getloadavg()[0]
    copy_s = _copy_baseline(rows, like_products=False)
    copy_products_s = _copy_baseline(rows, like_products=True)
    hash_s = _hash_baseline(rows, base)
    photo_s, photo_bytes = _photo_seconds(rows, base)
    files_s = _file_baseline(media_root, count=count, size=photo_bytes)
    baselines = [
        ["COPY of the rows' text into a scratch table", f"{copy_s:.2f}", f"{count / copy_s:.0f}"],
        [
            "COPY into a copy of catalog_product (its indexes, its generated full-text column)",
            f"{copy_products_s:.2f}",
            f"{count / copy_products_s:.0f}",
        ],
        ["read + sha256 of every photo file", f"{hash_s:.2f}", f"{count / hash_s:.0f}"],
        [
            f"decode + check + re-encode one photo, one process (median of {PHOTOS_TIMED})",
            f"{photo_s * 1000:.2f} ms",
            f"{1 / photo_s:.0f} (x {cpus} CPUs: {cpus / photo_s:.0f})",
        ],
        [
            f"create a file of the stored photos' mean size ({photo_bytes / 1024:.1f} KiB) per row in the "
            "media folder",
            f"{files_s:.2f}",
            f"{count / files_s:.0f}",
        ],
    ]
    for line in baselines:
        print(line)

    with tempfile.TemporaryDirectory() as folder:
        changed_catalog, changed = _changed_copy(rows, args.catalog, Path(folder))
        runs = [
            ("first import", args.catalog),
            ("re-import (unchanged)", args.catalog),
            (f"re-import ({changed} rows changed)", changed_catalog),
        ]
        results = []
        clock = CpuClock()
        for label, catalog in runs:
            cpu_before, backend_before = clock.read()
            started = time.perf_counter()
            with tqdm(total=count, unit="row", desc=label) as bar:
                report = catalog_import(path=catalog, on_row=lambda: bar.update(1), batch_size=batch_size)
            elapsed = time.perf_counter() - started
            cpu_after, backend_after = clock.read()
            cpu = cpu_after - cpu_before
            if backend_before is not None and backend_after is not None:
                cpu += backend_after - backend_before
            results.append(
                [
                    label,
                    count,
                    report.created,
                    report.updated,
                    report.unchanged,
                    len(report.rejections),
                    f"{elapsed:.1f}",
                    f"{count / elapsed:.0f}",
                    f"{copy_products_s / elapsed:.2f}",
                    f"{cpu * 1000 / count:.2f}",
                    f"{cpus * count / cpu:.0f}",
                ]
            )
            print(results[-1])
        if args.keep:
            catalog_import(path=args.catalog, batch_size=batch_size)  # the catalogue as it is, untimed
    if not args.keep:
        Product.objects.all().delete()
    load_after = os.getloadavg()[0]

    table = markdown_table(
        [
            "run",
            "rows",
            "created",
            "updated",
            "unchanged",
            "rejected",
            "seconds",
            "rows/s",
            "x COPY into catalog_product",
            "CPU ms/row",
            f"CPU bound on {cpus} idle CPUs, rows/s",
        ],
        results,
    )
    baseline_table = markdown_table(["baseline (same run)", "seconds", "rows/s"], baselines)
    write_section(
        "catalog-import",
        f"## Catalogue import\n\n`python bench/catalog_import.py --catalog {args.catalog.name}"
        f"{'' if media_root.resolve() == BENCH_MEDIA.resolve() else f' --media-root {media_root}'}` "
        f"({count} rows, photos stored in `{media_root}`, embedded PostgreSQL 18, {cpus} CPU cores shared "
        "with other work: load average "
        f"{load_before:.1f} at the start, {load_after:.1f} at the end; batches of "
        f"{batch_size} rows, one transaction each; new or changed photos decoded, checked and re-encoded "
        f"and stored in {cpus} worker processes; a photo whose file hash matches the stored source hash "
        f"is not decoded again):\n\n{table}\n\n{baseline_table}\n\n"
        "`CPU ms/row` adds the CPU time of the importing process, its photo workers and its database "
        "backend; `CPU bound` is the CPUs divided by it: the rate if the import had the machine's CPUs to "
        "itself and kept them all busy, an upper bound, not a measurement. A first import decodes and "
        "re-encodes every photo: it cannot beat the photo row of the baselines times the CPUs, and the "
        "database's work (the COPY into catalog_product row), the file stores and the row checks share "
        "those CPUs. An unchanged re-import reads and hashes the files and compares each batch with a "
        "few queries; it decodes nothing.\n",
    )


if __name__ == "__main__":
    main()
