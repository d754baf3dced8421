"""Small tables search reads on every query (the spelling vocabulary, synonyms), kept in each process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from search.read_replica import search_connection

T = TypeVar("T")


class CheckedCache(Generic[T]):
    """A value built from the database and kept by this process, rebuilt when its source changed. The
    source's generation (a cheap query) is read at most once per `check_seconds()`."""

    def __init__(
        self,
        *,
        build: Callable[[], T],
        generation: Callable[[], tuple],
        check_seconds: Callable[[], float],
    ) -> None:
        self._build = build
        self._generation_of_source = generation
        self._check_seconds = check_seconds
        self._lock = threading.Lock()
        self._value: T | None = None
        self._generation: tuple | None = None
        self._checked_at = 0.0

    def get(self) -> T:
        with self._lock:
            now = time.monotonic()
            if self._value is not None and now - self._checked_at < self._check_seconds():
                return self._value
            generation = self._generation_of_source()
            if self._value is None or generation != self._generation:
                self._value = self._build()
                self._generation = generation
            self._checked_at = now
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None
            self._generation = None


def table_generation(table: str, *, where: str = "TRUE") -> tuple:
    """(rows, latest updated_at) of a table's rows: changes whenever a row is added, changed or removed."""
    with search_connection().cursor() as cursor:
        cursor.execute(f"SELECT count(*), max(updated_at) FROM {table} WHERE {where}")  # noqa: S608
        return tuple(cursor.fetchone())
