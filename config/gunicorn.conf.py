"""gunicorn settings for `make serve` (`manage.py serve`): a pre-fork server sized to the machine.

- `preload_app`: the master imports Django and loads the active model before it forks, so the workers
  share the model's memory pages instead of each loading a copy (`when_ready`).
- `gthread` workers: each worker runs WEB_THREADS requests at once; a thread keeps one database
  connection, so the server never holds more than WEB_WORKERS x WEB_THREADS (checked against the
  database's max_connections at start).
- Torch runs its intra-op threads per worker so that all workers together use the machine's cores
  once, not once each.
Environment: BIND (default 127.0.0.1:8000), WEB_WORKERS (default: the CPU count, at least 2),
WEB_THREADS (default 4), WEB_TIMEOUT seconds (default 60).
"""

from __future__ import annotations

import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_WORKERS") or max(2, os.cpu_count() or 1))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
preload_app = True
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Uploads are limited by Django (DATA_UPLOAD_MAX_MEMORY_SIZE, the photo size limit); these bound
# what reaches it.
limit_request_line = 8190
limit_request_fields = 100
accesslog = os.environ.get("ACCESS_LOG", "-") or None  # empty: no access log
wsgi_app = "config.wsgi:application"
# One machine may run several servers (tests, benchmarks, the demo): no shared control socket path.
control_socket_disable = True


def when_ready(server) -> None:  # noqa: ANN001 (gunicorn's Arbiter)
    from config.serving import serving_prepare

    for line in serving_prepare(workers=workers, threads=threads):
        server.log.info(line)


def post_fork(server, worker) -> None:  # noqa: ANN001
    from config.serving import serving_worker_start

    serving_worker_start(workers=workers)
