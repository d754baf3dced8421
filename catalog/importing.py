"""Importing a whole catalogue from JSONL or CSV.

Format: one product per line/row with `sku, title, description, brand, gender, colour,
master_category, sub_category, article_type, season, usage, attributes, image` (as in the Myntra
catalogue), optionally `price`, `currency`, and `images` (a list, or paths joined by `|`: further photos
after `image`, which stays the primary one, or all of them without `image`). Image paths are
relative to the catalogue file, or absolute. Rows are upserted by sku in batches (BATCH_SIZE rows, one
transaction and a few queries each): one bad row is reported and skipped, and never undoes the others
(a batch that fails as a whole is written again row by row, so that only the bad row is refused).

Photos are decoded, checked and re-encoded in worker processes (catalog.photos.photo_prepare_file),
a batch's photos sent to them before the batch before it is written. A photo whose file hashes to the
source hash stored with the product's photo (ProductImage.source_sha256) is unchanged: it is kept as
it is, without decoding it again.

Nothing in one row stops the import: a line that is not UTF-8, a NUL character (PostgreSQL stores
none), a sku that cannot go into a URL, a photo Pillow cannot read, even an unexpected error, is a
rejected row with its line number and the reason. Only the database going away stops it
(`CatalogImportAborted`, naming the first line of the first batch not written): then no later row
could be stored either.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.files.storage import FileSystemStorage, storages
from django.db import DatabaseError, InterfaceError, OperationalError

from catalog.models import Product
from catalog.photos import (
    PhotoLimits,
    PhotoRefused,
    PhotoRejected,
    PreparedPhoto,
    photo_delete_stored,
    photo_limits,
    photo_prepare_and_store_files,
    photo_prepare_files,
    photo_read_checked,
    photo_source_sha256,
)
from catalog.selectors import product_photo_names_referenced, product_photo_sources
from catalog.services import ProductUpsert, UpsertOutcome, product_upsert_many
from mlcore.data import photo_paths

logger = logging.getLogger(__name__)

# Rows per transaction: enough that a batch's few queries cost little per row, few enough that a
# batch's prepared photos sit in memory without trouble.
BATCH_SIZE = 500

TEXT_COLUMNS = (
    "title",
    "description",
    "brand",
    "gender",
    "colour",
    "master_category",
    "sub_category",
    "article_type",
    "season",
    "usage",
    "currency",
)


class RowRejected(Exception):
    pass


class CatalogImportAborted(Exception):
    """The database stopped answering mid-import; `report` holds what was done before `line`."""

    def __init__(self, message: str, *, line: int, report: ImportReport) -> None:
        super().__init__(message)
        self.line = line
        self.report = report


@dataclass(frozen=True)
class ImportRejection:
    line: int
    sku: str | None
    reason: str
    row: dict[str, Any] | None = None


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_by_split: int = 0
    rejections: list[ImportRejection] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged


@dataclass(frozen=True)
class _SourceRow:
    line: int
    # The row as read; for a line that is not UTF-8, read with its bad bytes replaced (to name its sku).
    row: dict[str, Any] | None
    # Why the line cannot be imported at all (not UTF-8, not JSON, ...), or None.
    error: str | None = None


def _not_utf8(raw: bytes, error: UnicodeDecodeError) -> str:
    return (
        f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at byte {error.start + 1} of the line); "
        "save the file as UTF-8"
    )


def _decoded_lines(handle: IO[bytes], bad_lines: dict[int, str]) -> Iterator[str]:
    """The file's lines as text, decoded one by one: a line that is not UTF-8 is noted in `bad_lines`
    (by line number) and given with its bad bytes replaced, so that the lines after it still read."""
    for number, raw in enumerate(handle, start=1):
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)  # as spreadsheets save "CSV UTF-8"
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as error:
            bad_lines[number] = _not_utf8(raw, error)
            yield raw.decode("utf-8", errors="replace")


def _read_jsonl(path: Path) -> Iterator[_SourceRow]:
    bad_lines: dict[int, str] = {}
    with path.open("rb") as handle:
        for line_number, line in enumerate(_decoded_lines(handle, bad_lines), start=1):
            if not line.strip():
                continue
            not_utf8 = bad_lines.get(line_number)
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                reason = f"not valid JSON ({error.msg} at column {error.colno})"
                yield _SourceRow(line_number, None, not_utf8 or reason)
                continue
            except (ValueError, RecursionError) as error:  # nesting too deep, a number too long
                yield _SourceRow(line_number, None, not_utf8 or f"not valid JSON ({error})")
                continue
            if not isinstance(row, dict):
                yield _SourceRow(line_number, None, not_utf8 or "a line must be a JSON object")
                continue
            yield _SourceRow(line_number, row, not_utf8)


def _read_csv(path: Path) -> Iterator[_SourceRow]:
    bad_lines: dict[int, str] = {}
    with path.open("rb") as handle:
        reader = csv.DictReader(_decoded_lines(handle, bad_lines))
        try:
            reader.fieldnames  # noqa: B018 - reads the header line
        except csv.Error as error:
            yield _SourceRow(reader.line_num, None, f"not valid CSV ({error})")
            return
        if 1 in bad_lines:
            yield _SourceRow(1, None, f"header: {bad_lines[1]}; its columns may not be recognised")
        last_line = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield _SourceRow(reader.line_num, None, f"not valid CSV ({error})")
                last_line = reader.line_num
                continue
            # A quoted field may span lines: the row is bad if any of its lines is.
            bad = [number for number in range(last_line + 1, reader.line_num + 1) if number in bad_lines]
            last_line = reader.line_num
            if bad:
                yield _SourceRow(bad[0], dict(row), bad_lines[bad[0]])
            else:
                yield _SourceRow(reader.line_num, dict(row))


def _read_rows(path: Path) -> Iterator[_SourceRow]:
    return _read_csv(path) if path.suffix.lower() == ".csv" else _read_jsonl(path)


def _count_rows(path: Path) -> int:
    # Bytes, not text: counting must not fail on the lines the import will reject.
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    return lines - 1 if path.suffix.lower() == ".csv" else lines


def _shown(text: str) -> str:
    """Text for a report or a terminal: control characters (a NUL) escaped."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _plain_text(value: Any) -> bool:
    return isinstance(value, str) and value.isascii() and "\x00" not in value


def _check_storable(value: Any, where: str) -> None:
    """PostgreSQL text cannot hold NUL, and UTF-8 cannot hold a lone surrogate (from a JSON `\\ud800`):
    either would fail the row's INSERT with a database error, so the row is rejected first."""
    if isinstance(value, dict):
        for name, item in value.items():
            if _plain_text(name) and _plain_text(item):
                continue  # the common case, without building the names of places to report
            _check_storable(name, f"{where} name {str(name)!r}")
            _check_storable(item, f"{where} {str(name)!r}")
    elif isinstance(value, list):
        for item in value:
            _check_storable(item, where)
    elif isinstance(value, str):
        if "\x00" in value:
            raise RowRejected(
                f"{where} contains a NUL character (\\x00), which the database cannot store; remove it"
            )
        if value.isascii():
            return
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise RowRejected(
                f"{where} contains an unpaired surrogate ({_shown(value[error.start])}), "
                "which is not valid Unicode; fix the text"
            ) from error


def _text(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise RowRejected(f"`{column}` must be text, not {type(value).__name__}")
    text = str(value).strip()
    _check_storable(text, f"`{column}`")
    return text


def _sku(row: dict[str, Any]) -> str:
    sku = _text(row, "sku")
    if not sku:
        raise RowRejected("missing sku")
    try:
        # The model field's own checks (length, characters a URL can carry), before the sku is
        # used in any query.
        Product._meta.get_field("sku").clean(sku, None)
    except ValidationError as error:
        raise RowRejected(f"sku: {' '.join(error.messages)}") from error
    return sku


def _sku_as_given(row: dict[str, Any] | None) -> str | None:
    """The row's sku for the report, valid or not (None when it has none)."""
    value = row.get("sku") if row is not None else None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        return None
    return _shown(str(value).strip()) or None


def _product_data(row: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {column: _text(row, column) for column in TEXT_COLUMNS}
    if not data["title"]:
        raise RowRejected("missing title")
    attributes = row.get("attributes") or {}
    if isinstance(attributes, str):
        try:
            attributes = json.loads(attributes)
        except (ValueError, RecursionError) as error:
            reason = error.msg if isinstance(error, json.JSONDecodeError) else str(error)
            raise RowRejected(f"`attributes` is not valid JSON ({reason})") from error
    if not isinstance(attributes, dict):
        raise RowRejected("`attributes` must be an object of name: value")
    _check_storable(attributes, "attribute")
    data["attributes"] = attributes
    price = row.get("price")
    if price in (None, ""):
        data["price"] = None
    else:
        try:
            data["price"] = Decimal(str(price))
        except InvalidOperation as error:
            raise RowRejected(f"`price` is not a number: {str(price)!r}") from error
        if not data["price"].is_finite() or data["price"] < 0:
            raise RowRejected(f"`price` must be a non-negative number: {str(price)!r}")
    if "is_active" in row and row["is_active"] not in (None, ""):
        data["is_active"] = str(row["is_active"]).strip().lower() in {"1", "true", "yes"}
    return data


def _photo_paths(row: dict[str, Any], base: Path) -> list[Path]:
    images = row.get("images")
    listed = isinstance(images, list) and all(isinstance(item, str) for item in images)
    if not (images is None or isinstance(images, str) or listed):
        raise RowRejected("`images` must be a list of paths")
    main = row.get("image")
    if main is not None and not isinstance(main, str):
        raise RowRejected("`image` must be a path")
    images = photo_paths(main, images)
    if not images:
        raise RowRejected("missing photo (`image` column)")
    _check_storable(images, "photo path")
    return [base / item for item in images]  # an absolute path stays as it is


def _format_validation_error(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in error.message_dict.items())
    return " ".join(error.messages)


def _rejection_reason(error: Exception) -> str:
    if isinstance(error, PhotoRejected):
        return f"photo: {' '.join(error.messages)}"
    if isinstance(error, ValidationError):
        return _format_validation_error(error)
    if isinstance(error, RowRejected):
        return str(error)
    if isinstance(error, DatabaseError):
        return f"the database refused the row ({type(error).__name__}: {_shown(str(error).strip())})"
    return f"unexpected error ({type(error).__name__}: {_shown(str(error))}); the row was skipped"


@dataclass
class _PendingRow:
    """A row that read and parsed well, waiting in a batch for its photos and its write."""

    line: int
    row: dict[str, Any]
    sku: str
    data: dict[str, Any]
    paths: list[Path]
    # Source hashes of its photos when the product exists with exactly these (photos kept as they are).
    kept_sources: list[str] | None = None
    photos: list[PreparedPhoto] = field(default_factory=list)


class _PhotoPreparer:
    """Decodes, checks and re-encodes photos: in worker processes when a batch has enough of them to be
    worth it, else here, when their results are asked for."""

    # Below this many photos in a batch, feeding processes costs more than it saves.
    MIN_PHOTOS_FOR_WORKERS = 16

    def __init__(self, *, workers: int, limits: PhotoLimits) -> None:
        # A daemonic process (a Celery prefork worker) may not start processes of its own.
        self.workers = 1 if multiprocessing.current_process().daemon else workers
        self.limits = limits
        self._pool: ProcessPoolExecutor | None = None
        # Workers forked from this process share its Django setup and can write the photos to local
        # storage themselves; other start methods begin without it, and a remote storage's client is
        # not known to survive a fork.
        self.store_in_workers = multiprocessing.get_start_method() == "fork" and isinstance(
            storages["default"], FileSystemStorage
        )

    def submit(self, paths: list[str]) -> _PhotoJob:
        if self.workers < 2 or len(paths) < self.MIN_PHOTOS_FOR_WORKERS:
            return _PhotoJob(self, [paths], None)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers)
        # A few chunks per worker: few messages between processes, and no worker left idle long.
        size = -(-len(paths) // (self.workers * 4))
        chunks = [paths[start : start + size] for start in range(0, len(paths), size)]
        prepare = photo_prepare_and_store_files if self.store_in_workers else photo_prepare_files
        try:
            futures = [self._pool.submit(prepare, chunk, self.limits) for chunk in chunks]
        except BrokenProcessPool:  # a worker died since the last batch was sent
            self.pool_broken()
            return _PhotoJob(self, [paths], None)
        return _PhotoJob(self, chunks, futures)

    def pool_broken(self) -> None:
        # A worker died (killed for memory, most likely): the remaining photos are prepared here.
        if self.workers > 1:
            logger.warning("A photo worker process died; preparing the remaining photos in this process")
        self.close()
        self.workers = 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


@dataclass
class _PhotoJob:
    preparer: _PhotoPreparer
    chunks: list[list[str]]
    futures: list[Future[list[PreparedPhoto | PhotoRefused]]] | None

    def results(self) -> list[PreparedPhoto | PhotoRefused]:
        """Each photo's result, in the order given (waits for the workers)."""
        results: list[PreparedPhoto | PhotoRefused] = []
        for index, chunk in enumerate(self.chunks):
            if self.futures is not None:
                try:
                    results.extend(self.futures[index].result())
                    continue
                except (BrokenProcessPool, CancelledError):  # cancelled: by the shutdown of a broken pool
                    self.preparer.pool_broken()
            results.extend(photo_prepare_files(chunk, self.preparer.limits))
        return results


@dataclass
class _StartedBatch:
    """A batch whose photos are being prepared, waiting for its write."""

    rows: list[_PendingRow]
    # The rows refused so far in this batch's stretch of lines (reported in line order with the rest).
    rejections: list[ImportRejection]
    to_prepare: list[tuple[_PendingRow, str]] = field(default_factory=list)
    job: _PhotoJob | None = None
    # Photos the workers stored for this batch: those no product takes are deleted once it is written.
    stored_names: list[str] = field(default_factory=list)

    @property
    def skus(self) -> set[str]:
        return {pending.sku for pending in self.rows}


def _aborted(error: Exception, *, line: int, report: ImportReport) -> CatalogImportAborted:
    return CatalogImportAborted(
        f"The database stopped answering at line {line} ({type(error).__name__}: "
        f"{' '.join(str(error).split())}). The rows before it were imported; start the database "
        "(`make db`) and import again (re-importing is safe).",
        line=line,
        report=report,
    )


class _BatchImporter:
    """Imports a catalogue batch by batch, keeping a report. A batch is started (its photos sent to the
    workers) before the one before it is written, so that the workers decode while this process writes."""

    def __init__(self, *, path: Path, preparer: _PhotoPreparer, report: ImportReport) -> None:
        self.path = path
        self.preparer = preparer
        self.report = report

    def start(
        self, rows: list[_PendingRow], rejected: list[ImportRejection], *, in_flight: set[str]
    ) -> _StartedBatch:
        """Hash the photo files of products that exist; send the photos of every other row to be
        prepared. `in_flight`: skus of a batch not written yet, whose photos in the database may be
        about to change (their photos are prepared, not compared)."""
        batch = _StartedBatch(rows, list(rejected))
        if not rows:
            return batch
        stored = product_photo_sources(skus=[pending.sku for pending in rows])
        limits = self.preparer.limits
        for pending in rows:
            known = stored.get(pending.sku)
            if known and all(known) and pending.sku not in in_flight:
                try:
                    sources = [
                        photo_source_sha256(photo_read_checked(path, limits)) for path in pending.paths
                    ]
                except PhotoRejected as error:
                    self._reject(batch, pending, error)
                    continue
                if sources == known:
                    pending.kept_sources = sources
                    continue
            batch.to_prepare.extend((pending, str(path)) for path in pending.paths)
        batch.job = self.preparer.submit([path for _, path in batch.to_prepare])
        return batch

    def finish(self, batch: _StartedBatch) -> None:
        """Wait for the batch's photos (a bad one rejects its row) and write its rows."""
        if batch.job is not None:
            refused: set[int] = set()
            for (pending, _), result in zip(batch.to_prepare, batch.job.results(), strict=True):
                if isinstance(result, PreparedPhoto) and result.stored_name:
                    batch.stored_names.append(result.stored_name)
                if pending.line in refused:
                    continue
                if isinstance(result, PhotoRefused):
                    refused.add(pending.line)
                    batch.rejections.append(
                        ImportRejection(pending.line, pending.sku, f"photo: {result.message}", pending.row)
                    )
                else:
                    pending.photos.append(result)
        refused = {rejection.line for rejection in batch.rejections}
        try:
            self._upsert(batch, [pending for pending in batch.rows if pending.line not in refused])
        finally:
            self._discard_unused_photos(batch)
        self.report.rejections.extend(sorted(batch.rejections, key=_line))

    def _discard_unused_photos(self, batch: _StartedBatch) -> None:
        """Delete the photos the workers stored for rows that were refused, or whose product kept
        photos of the same content. When the database cannot say which were taken, they stay: stored
        files that no photo names are harmless, and deleting a taken one is not."""
        if not batch.stored_names:
            return
        try:
            taken = product_photo_names_referenced(skus=list(batch.skus), names=batch.stored_names)
        except DatabaseError:
            logger.warning("Could not check which of %d stored photos were taken", len(batch.stored_names))
            return
        for name in batch.stored_names:
            if name not in taken:
                photo_delete_stored(name)

    def abort(
        self, error: Exception, *, batch: _StartedBatch, line: int | None = None
    ) -> CatalogImportAborted:
        """The import stops at `line` (default: the batch's first): what it reports is what was written."""
        if line is None:
            line = batch.rows[0].line if batch.rows else max((r.line for r in batch.rejections), default=0)
        self.report.rejections.extend(sorted((r for r in batch.rejections if r.line < line), key=_line))
        return _aborted(error, line=line, report=self.report)

    def _reject(self, batch: _StartedBatch, pending: _PendingRow, error: Exception) -> None:
        if not isinstance(error, (RowRejected, ValidationError, DatabaseError)):
            logger.exception("Unexpected error importing line %d of %s", pending.line, self.path)
        batch.rejections.append(
            ImportRejection(pending.line, pending.sku, _rejection_reason(error), pending.row)
        )

    def _upsert(self, batch: _StartedBatch, ready: list[_PendingRow]) -> None:
        if not ready:
            return
        items = [_upsert_item(pending) for pending in ready]
        try:
            outcomes = product_upsert_many(items=items)
        except (OperationalError, InterfaceError) as error:
            raise self.abort(error, batch=batch) from error
        except Exception:  # noqa: BLE001 - the batch failed as a whole: find the row(s) that did it
            logger.info("A batch of %d rows failed; importing its rows one by one", len(ready))
            for pending, item in zip(ready, items, strict=True):
                try:
                    [outcome] = product_upsert_many(items=[item])
                except (OperationalError, InterfaceError) as error:
                    # The rows before it were committed one by one.
                    raise self.abort(error, batch=batch, line=pending.line) from error
                except Exception as error:  # noqa: BLE001 - one bad row never stops the import
                    self._reject(batch, pending, error)
                    continue
                self._count(batch, pending, outcome)
            return
        for pending, outcome in zip(ready, outcomes, strict=True):
            self._count(batch, pending, outcome)

    def _count(
        self, batch: _StartedBatch, pending: _PendingRow, outcome: UpsertOutcome | ValidationError
    ) -> None:
        if isinstance(outcome, ValidationError):
            self._reject(batch, pending, outcome)
        elif outcome is UpsertOutcome.CREATED:
            self.report.created += 1
        elif outcome is UpsertOutcome.UPDATED:
            self.report.updated += 1
        else:
            self.report.unchanged += 1


def _line(rejection: ImportRejection) -> int:
    return rejection.line


def _upsert_item(pending: _PendingRow) -> ProductUpsert:
    if pending.kept_sources is not None:
        return ProductUpsert(
            sku=pending.sku, data=pending.data, photos=None, photo_sources=pending.kept_sources
        )
    return ProductUpsert(sku=pending.sku, data=pending.data, photos=pending.photos)


def _parsed(row: dict[str, Any], sku: str, base: Path, line: int) -> _PendingRow:
    """Raises RowRejected for a row that cannot be imported as it is."""
    return _PendingRow(line=line, row=row, sku=sku, data=_product_data(row), paths=_photo_paths(row, base))


def catalog_import(
    *,
    path: Path,
    allowed_skus: set[str] | None = None,
    on_row: Callable[[], None] | None = None,
    batch_size: int = BATCH_SIZE,
    workers: int | None = None,
) -> ImportReport:
    """Upsert every row of the catalogue at `path` (only those in `allowed_skus` when given).

    Rows are written `batch_size` at a time, each batch in one transaction; photos are prepared in
    `workers` processes (default: one per CPU; 1: in this process). Raises CatalogImportAborted when
    the database cannot be reached; every other problem with a row is a rejection in the report.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    path = Path(path)
    base = path.resolve().parent
    report = ImportReport()
    preparer = _PhotoPreparer(workers=workers or os.cpu_count() or 1, limits=photo_limits())
    importer = _BatchImporter(path=path, preparer=preparer, report=report)
    rows: list[_PendingRow] = []
    rejected: list[ImportRejection] = []
    skus: set[str] = set()  # of `rows`
    waiting: _StartedBatch | None = None  # started, not yet written

    def next_batch() -> None:
        nonlocal rows, rejected, skus, waiting
        try:
            started = importer.start(rows, rejected, in_flight=waiting.skus if waiting else set())
        except (OperationalError, InterfaceError) as error:
            raise importer.abort(error, batch=waiting or _StartedBatch(rows, rejected)) from error
        if waiting is not None:
            importer.finish(waiting)
        waiting, rows, rejected, skus = started, [], [], set()

    try:
        for source in _read_rows(path):
            if on_row is not None:
                on_row()
            row = source.row
            shown_sku = _sku_as_given(row)
            if row is None or source.error is not None:
                reason = source.error or "unreadable row"
                rejected.append(ImportRejection(source.line, shown_sku, reason, row))
                continue
            try:
                sku = _sku(row)
            except RowRejected as error:
                # A split lists valid skus only: a row outside it is skipped, whatever its sku.
                if allowed_skus is not None and (shown_sku or "") not in allowed_skus:
                    report.skipped_by_split += 1
                    continue
                rejected.append(ImportRejection(source.line, shown_sku, str(error), row))
                continue
            if allowed_skus is not None and sku not in allowed_skus:
                report.skipped_by_split += 1
                continue
            try:
                pending = _parsed(row, sku, base, source.line)
            except RowRejected as error:
                rejected.append(ImportRejection(source.line, sku, str(error), row))
                continue
            if sku in skus:
                # A sku given twice: the later row must see what the earlier one wrote, as row by row.
                next_batch()
            rows.append(pending)
            skus.add(sku)
            if len(rows) >= batch_size:
                next_batch()
        next_batch()
        if waiting is not None:
            importer.finish(waiting)
    finally:
        preparer.close()
    return report


def catalog_row_count(path: Path) -> int:
    return _count_rows(Path(path))
