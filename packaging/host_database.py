"""Create or drop the host-project test's own database on the project's PostgreSQL (the embedded
server, or DATABASE_URL's), and print its connection as SHOP_DB_* shell assignments.

Run with the project's virtualenv: `python packaging/host_database.py create|drop NAME`.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _connection() -> dict[str, str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        import dj_database_url

        parsed = dj_database_url.parse(url)
        host = parsed.get("HOST") or parsed.get("OPTIONS", {}).get("host", "")
        return {
            "HOST": str(host),
            "PORT": str(parsed.get("PORT") or ""),
            "USER": str(parsed.get("USER") or ""),
            "PASSWORD": str(parsed.get("PASSWORD") or ""),
            "NAME": str(parsed["NAME"]),
        }
    from config import embedded_postgres

    embedded_postgres.start()
    settings = embedded_postgres.connection_settings()
    return {**settings, "PASSWORD": ""}


def main(action: str, name: str) -> None:
    import psycopg

    if not name.replace("_", "").isalnum():
        raise SystemExit(f"database name {name!r}: letters, digits and _ only")
    connection = _connection()
    admin = psycopg.connect(
        host=connection["HOST"],
        port=connection["PORT"] or None,
        user=connection["USER"] or None,
        password=connection["PASSWORD"] or None,
        dbname=connection["NAME"],
        autocommit=True,
    )
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if action == "create":
            admin.execute(f'CREATE DATABASE "{name}"')
    if action == "create":
        for key in ("HOST", "PORT", "USER", "PASSWORD"):
            print(f"export SHOP_DB_{key}={shlex.quote(connection[key])}")
        print(f"export SHOP_DB_NAME={shlex.quote(name)}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in {"create", "drop"}:
        raise SystemExit("usage: host_database.py create|drop NAME")
    main(sys.argv[1], sys.argv[2])
