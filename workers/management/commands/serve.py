import os
import signal
import subprocess
import sys
from pathlib import Path

import redis
from django.conf import settings
from django.core.management.base import BaseCommand

GUNICORN_CONFIG = Path(settings.BASE_DIR) / "config" / "gunicorn.conf.py"


class Command(BaseCommand):
    help = (
        "Serve the site with gunicorn (config/gunicorn.conf.py: pre-fork workers sharing the loaded "
        "model) and run a Celery worker beside it. Where no Redis answers, no worker is started and "
        "tasks run in the web process instead; the command says so."
    )

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-worker", action="store_true", help="serve only; a worker runs elsewhere")

    def handle(self, *args, addrport: str, no_worker: bool, **options):
        environment = dict(os.environ, BIND=addrport)
        children: list[subprocess.Popen] = []
        if not no_worker:
            worker = self._start_worker(environment)
            if worker is None:
                environment["CELERY_TASK_ALWAYS_EAGER"] = "1"
            else:
                children.append(worker)
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG)], env=environment
        )
        children.append(server)

        def stop(signum, frame):  # noqa: ARG001
            for child in children:
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            returncode = server.wait()
        finally:
            stop(None, None)
            for child in children:
                child.wait(timeout=60)
        if returncode:
            sys.exit(returncode)

    def _start_worker(self, environment: dict[str, str]) -> subprocess.Popen | None:
        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1).ping()
        except redis.exceptions.RedisError as error:
            self.stdout.write(
                f"Redis is not answering at {settings.REDIS_URL} ({error}): no worker is started and tasks "
                "run in the web process instead (uploads wait for their embedding)."
            )
            return None
        log_path = Path(settings.VAR_DIR) / "worker.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", "embed,train"]
            + ["--concurrency", "1", "-l", "info"],
            stdout=log_path.open("a"),
            stderr=subprocess.STDOUT,
            env=environment,
        )
        self.stdout.write(f"Started a Celery worker (pid {worker.pid}, log {log_path}).")
        return worker
