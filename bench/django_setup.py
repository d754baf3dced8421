"""Django for the benchmarks: its own database and media folder, so the demo's stay untouched."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DATABASE = "product_search_bench"


def setup(*, database: str = BENCH_DATABASE, migrate: bool = True) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("MEDIA_ROOT", str(ROOT / "var" / "bench-media"))
    if not os.environ.get("DATABASE_URL"):
        import psycopg

        from config import embedded_postgres

        server_url = embedded_postgres.url() or embedded_postgres.start()
        admin_url = server_url.replace(f"/{embedded_postgres.DATABASE_NAME}?", "/postgres?")
        with psycopg.connect(admin_url, autocommit=True) as connection:
            if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
                connection.execute(f'CREATE DATABASE "{database}" TEMPLATE template1')
        os.environ["DATABASE_URL"] = server_url.replace(
            f"/{embedded_postgres.DATABASE_NAME}?", f"/{database}?"
        )
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
