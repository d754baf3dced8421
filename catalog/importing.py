"""Importing a whole catalogue from JSONL or CSV.

Format: one product per line/row with `sku, title, description, brand, gender, colour,
master_category, sub_category, article_type, season, usage, attributes, image` (as in the Myntra
catalogue), optionally `price`, `currency`, and `images` (a list, for several photos). Image paths are
relative to the catalogue file, or absolute. Rows are upserted by sku, each in its own transaction:
one bad row is reported and skipped, and never undoes the others.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError

from catalog.photos import PhotoRejected, photo_prepare
from catalog.services import UpsertOutcome, product_upsert

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


def _read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """Yield (line number, row or None, parse error or None)."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                yield reader.line_num, dict(row), None
        return
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                yield line_number, None, f"not valid JSON ({error.msg} at column {error.colno})"
                continue
            if not isinstance(row, dict):
                yield line_number, None, "a line must be a JSON object"
                continue
            yield line_number, row, None


def _count_rows(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        lines = sum(1 for line in handle if line.strip())
    return lines - 1 if path.suffix.lower() == ".csv" else lines


def _text(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise RowRejected(f"`{column}` must be text, not {type(value).__name__}")
    return str(value).strip()


def _product_data(row: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {column: _text(row, column) for column in TEXT_COLUMNS}
    if not data["title"]:
        raise RowRejected("missing title")
    attributes = row.get("attributes") or {}
    if isinstance(attributes, str):
        try:
            attributes = json.loads(attributes)
        except json.JSONDecodeError as error:
            raise RowRejected(f"`attributes` is not valid JSON ({error.msg})") from error
    if not isinstance(attributes, dict):
        raise RowRejected("`attributes` must be an object of name: value")
    data["attributes"] = attributes
    price = row.get("price")
    if price in (None, ""):
        data["price"] = None
    else:
        try:
            data["price"] = Decimal(str(price))
        except InvalidOperation as error:
            raise RowRejected(f"`price` is not a number: {price!r}") from error
        if not data["price"].is_finite() or data["price"] < 0:
            raise RowRejected(f"`price` must be a non-negative number: {price!r}")
    if "is_active" in row and row["is_active"] not in (None, ""):
        data["is_active"] = str(row["is_active"]).strip().lower() in {"1", "true", "yes"}
    return data


def _photo_paths(row: dict[str, Any], base: Path) -> list[Path]:
    images = row.get("images")
    if isinstance(images, str):
        images = [part for part in images.split("|") if part.strip()]
    if not images:
        single = row.get("image")
        images = [single] if single else []
    if not isinstance(images, list) or not all(isinstance(item, str) for item in images):
        raise RowRejected("`images` must be a list of paths")
    if not images:
        raise RowRejected("missing photo (`image` column)")
    return [base / item.strip() for item in images]  # an absolute path stays as it is


def _format_validation_error(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in error.message_dict.items())
    return " ".join(error.messages)


def catalog_import(
    *,
    path: Path,
    allowed_skus: set[str] | None = None,
    on_row: Callable[[], None] | None = None,
) -> ImportReport:
    """Upsert every row of the catalogue at `path` (only those in `allowed_skus` when given)."""
    path = Path(path)
    base = path.resolve().parent
    report = ImportReport()
    for line_number, row, parse_error in _read_rows(path):
        if on_row is not None:
            on_row()
        if row is None:
            report.rejections.append(ImportRejection(line_number, None, parse_error or "unreadable row"))
            continue
        sku = _text(row, "sku") if not isinstance(row.get("sku"), (dict, list)) else ""
        if allowed_skus is not None and sku not in allowed_skus:
            report.skipped_by_split += 1
            continue
        try:
            if not sku:
                raise RowRejected("missing sku")
            data = _product_data(row)
            photos = [photo_prepare(photo_path) for photo_path in _photo_paths(row, base)]
            outcome = product_upsert(sku=sku, data=data, photos=photos)
        except PhotoRejected as error:
            reason = f"photo: {' '.join(error.messages)}"
            report.rejections.append(ImportRejection(line_number, sku or None, reason, row))
            continue
        except ValidationError as error:
            report.rejections.append(
                ImportRejection(line_number, sku or None, _format_validation_error(error), row)
            )
            continue
        except RowRejected as error:
            report.rejections.append(ImportRejection(line_number, sku or None, str(error), row))
            continue
        if outcome is UpsertOutcome.CREATED:
            report.created += 1
        elif outcome is UpsertOutcome.UPDATED:
            report.updated += 1
        else:
            report.unchanged += 1
    return report


def catalog_row_count(path: Path) -> int:
    return _count_rows(Path(path))
