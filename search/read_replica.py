"""Search reads from a streaming read replica when there is one, it answers, and it is not too far behind.

The replica is the database alias `PRODUCT_SEARCH_REPLICA_ALIAS` ("replica"; config/settings.py adds
it when `DATABASE_REPLICA_URL` is set, with `SearchReadRouter`). Without that alias nothing here
changes anything: every read and write goes to `default`.

- `search_read(selector, **kwargs)`: how the API runs a search read (search, photo search, similar
  products, product detail, suggestions). The selector runs in a context where raw SQL through
  `search_connection()` and ORM reads through `SearchReadRouter` go to the replica if `replica_state()`
  says it is usable, else to the primary. Should the replica fail during the call (it went down
  since it was last checked, or cancelled a query in conflict with recovery), the call runs again, once,
  on the primary: a read has nothing to undo, and the shopper gets an answer, not a 503.
- `replica_state()`: reachable, a standby, and behind the primary by at most
  `PRODUCT_SEARCH_REPLICA_MAX_LAG_SECONDS`. Measured by this process at most every
  `PRODUCT_SEARCH_REPLICA_CHECK_SECONDS` (one query on each server), so the check is not on every
  search's path; a replica that cannot be reached is tried again after
  `PRODUCT_SEARCH_REPLICA_RETRY_SECONDS`, so a dead one costs a connection timeout that often, not
  on every search.

Lag: when the replica has replayed the primary's current WAL position (read on the primary first,
then the replica's replay position), it is 0. Otherwise it is the age of the last transaction the
replica replayed (`now() - pg_last_xact_replay_timestamp()`): the replica shows the data as of that
commit at least, so that bounds how stale it is (an idle primary whose only news is a checkpoint record
can make it look older than it is, for one check period: search then reads from the primary, which is
always correct). Unknown (no transaction replayed since the replica started) counts as too far.

Everything else stays on the primary: the admin, writes (the router never sends one to the replica,
even of an object read from it), embedding, retraining and its tuning, analytics, and `manage.py
evaluate`, which call the selectors or the ranking without `search_read`.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from search.conf import search_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The alias the search running in this context reads from; None outside search_read.
_reading_from: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "search_reading_from", default=None
)


def replica_alias() -> str | None:
    """The configured replica alias when it is one of the project's databases, else None."""
    alias = search_settings.REPLICA_ALIAS
    if not alias or alias == DEFAULT_DB_ALIAS or alias not in connections:
        return None
    return alias


def search_read_alias() -> str:
    """The alias this search reads from: set by search_read, `default` outside it."""
    return _reading_from.get() or DEFAULT_DB_ALIAS


def search_connection() -> BaseDatabaseWrapper:
    """The connection search's raw SQL goes through: the replica inside a search_read that chose it."""
    return connections[search_read_alias()]


@dataclass(frozen=True)
class ReplicaState:
    usable: bool
    reason: str
    lag_seconds: float | None  # None: not measured (unreachable, or not a standby)
    checked_at: float  # time.monotonic()


_states: dict[str, ReplicaState] = {}
_states_lock = threading.Lock()
_checking: set[str] = set()


def replica_state_forget() -> None:
    """Drop this process's measurements of the replicas (tests; a changed configuration)."""
    with _states_lock:
        _states.clear()


def _measure(alias: str) -> ReplicaState:
    now = time.monotonic()
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        # The primary's WAL position (its replay position, should `default` itself be a standby).
        cursor.execute(
            "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END"
        )
        primary_lsn = cursor.fetchone()[0]
    replica = connections[alias]
    try:
        with replica.cursor() as cursor:
            cursor.execute(
                "SELECT pg_is_in_recovery(),"
                " pg_wal_lsn_diff(%s::pg_lsn, pg_last_wal_replay_lsn()),"
                " extract(epoch FROM now() - pg_last_xact_replay_timestamp())",
                [str(primary_lsn) if primary_lsn is not None else None],
            )
            in_recovery, behind_bytes, replay_age = cursor.fetchone()
    except (OperationalError, InterfaceError) as error:
        _close_quietly(replica)
        return ReplicaState(False, f"unreachable: {error}".strip(), None, now)
    if not in_recovery:
        # Promoted, or the URL names a server that is no standby: its data may have parted from the
        # primary's, so search does not read it.
        return ReplicaState(False, "not a standby (pg_is_in_recovery() is false)", None, now)
    if behind_bytes is not None and behind_bytes <= 0:
        lag = 0.0
    else:
        lag = math.inf if replay_age is None else max(float(replay_age), 0.0)
    max_lag = float(search_settings.REPLICA_MAX_LAG_SECONDS)
    if lag > max_lag:
        return ReplicaState(False, f"{lag:.1f} s behind the primary (at most {max_lag:g} s)", lag, now)
    return ReplicaState(True, "streaming" if lag == 0 else f"{lag:.1f} s behind", lag, now)


def _close_quietly(connection: BaseDatabaseWrapper) -> None:
    if connection.in_atomic_block:
        return
    with contextlib.suppress(DatabaseError):
        connection.close()


def _stale(state: ReplicaState, now: float) -> bool:
    unreachable = state.lag_seconds is None and state.reason.startswith("unreachable")
    interval = search_settings.REPLICA_RETRY_SECONDS if unreachable else search_settings.REPLICA_CHECK_SECONDS
    return now - state.checked_at >= float(interval)


def replica_state(alias: str, *, fresh: bool = False) -> ReplicaState:
    """The replica's state as this process last measured it, measured again when older than the check
    interval (or when `fresh`). While one thread measures, the others go on with the last measurement."""
    with _states_lock:
        state = _states.get(alias)
        must_measure = fresh or state is None or _stale(state, time.monotonic())
        if must_measure and not fresh and state is not None and alias in _checking:
            return state
        if must_measure:
            _checking.add(alias)
    if not must_measure:
        assert state is not None
        return state
    try:
        measured = _measure(alias)
    finally:
        with _states_lock:
            _checking.discard(alias)
    with _states_lock:
        previous = _states.get(alias)
        _states[alias] = measured
    if previous is None or previous.usable != measured.usable:
        if measured.usable:
            logger.info("Search reads from the replica %r (%s)", alias, measured.reason)
        else:
            logger.warning(
                "Search reads from the primary: the replica %r is not usable (%s)", alias, measured.reason
            )
    return measured


def search_read(selector: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`selector(*args, **kwargs)` with its reads on the replica when it is usable, else on the primary.

    If the replica fails during the call, its connection is closed, its state measured again, and the
    call runs once more on the primary. Nested calls read where the outermost one chose."""
    if _reading_from.get() is not None:
        return selector(*args, **kwargs)
    alias = replica_alias()
    if alias is None or not replica_state(alias).usable:
        return _run_reading_from(DEFAULT_DB_ALIAS, selector, *args, **kwargs)
    try:
        return _run_reading_from(alias, selector, *args, **kwargs)
    except (OperationalError, InterfaceError) as error:
        _close_quietly(connections[alias])
        state = replica_state(alias, fresh=True)
        logger.warning(
            "A search read failed on the replica %r (%s); answered from the primary (replica now: %s)",
            alias,
            error,
            state.reason,
        )
    return _run_reading_from(DEFAULT_DB_ALIAS, selector, *args, **kwargs)


def _run_reading_from(alias: str, selector: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    token = _reading_from.set(alias)
    try:
        return selector(*args, **kwargs)
    finally:
        _reading_from.reset(token)


class SearchReadRouter:
    """ORM reads inside search_read go where it chose; every write goes to the primary.

    Outside search_read it has no opinion (Django's default: `default`), except that an object read from
    the replica is never written back there."""

    def db_for_read(self, model: type, **hints: Any) -> str | None:
        return _reading_from.get()

    def db_for_write(self, model: type, **hints: Any) -> str | None:
        instance = hints.get("instance")
        alias = replica_alias()
        if _reading_from.get() is not None or (
            alias is not None and instance is not None and instance._state.db == alias
        ):
            return DEFAULT_DB_ALIAS
        return None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        same_data = {DEFAULT_DB_ALIAS, replica_alias()}
        if obj1._state.db in same_data and obj2._state.db in same_data:
            return True
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        # A standby is a copy of the primary: migrations reach it through the WAL, never directly.
        if db == search_settings.REPLICA_ALIAS and db != DEFAULT_DB_ALIAS:
            return False
        return None
