"""What the application server does once before it forks, and in each worker after.

Called from config/gunicorn.conf.py; plain functions so that tests run them without gunicorn.
"""

from __future__ import annotations

import os

from django.db import connection, connections

# Connections the server leaves to others: the Celery worker, `manage.py` commands, psql, a backup.
RESERVED_CONNECTIONS = 10


class ServerTooLargeForDatabase(RuntimeError):
    pass


def serving_connection_budget_check(*, workers: int, threads: int) -> str:
    """Refuse a server that could open more connections than the database accepts."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        max_connections = int(cursor.fetchone()[0])
    needed = workers * threads
    if needed + RESERVED_CONNECTIONS > max_connections:
        raise ServerTooLargeForDatabase(
            f"{workers} workers x {threads} threads may hold {needed} database connections, but the "
            f"server accepts {max_connections} and {RESERVED_CONNECTIONS} are kept for workers and "
            "commands: lower WEB_WORKERS or WEB_THREADS, or raise max_connections."
        )
    return f"Database connections: at most {needed} of {max_connections} (workers x threads)."


def serving_model_preload() -> str:
    """Load the active version's encoder in the master, so that forked workers share it."""
    import numpy as np

    from lifecycle.encoders import encoder_for_version
    from lifecycle.fields import halfvec_literal
    from lifecycle.selectors import model_version_get_active

    version = model_version_get_active()
    if version is None:
        return "No active model yet: search answers 503 until one is activated."
    encoder_for_version(version)
    halfvec_literal(np.zeros(1, dtype=np.float32))  # builds the table query vectors are written through
    return f"Loaded the active model {version.name} before forking the workers."


def serving_prepare(*, workers: int, threads: int) -> list[str]:
    lines = [serving_connection_budget_check(workers=workers, threads=threads)]
    try:
        lines.append(serving_model_preload())
    finally:
        # A connection opened here would be shared by every forked worker: close it first.
        connections.close_all()
    return lines


def serving_worker_start(*, workers: int) -> None:
    """Split the cores among the workers for torch's intra-op threads."""
    import torch

    cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, cores // max(1, workers)))
