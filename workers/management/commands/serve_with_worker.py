import atexit
import subprocess
import sys
from pathlib import Path

import redis
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Serve the site and run a Celery worker beside it (the demo). Where no Redis answers, tasks "
        "run in-process instead, and the command says so."
    )

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport: str, **options):
        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1).ping()
        except redis.exceptions.RedisError as error:
            settings.CELERY_TASK_ALWAYS_EAGER = True
            self.stdout.write(
                f"Redis is not answering at {settings.REDIS_URL} ({error}): no worker is started and tasks "
                "run in the web process instead (uploads wait for their embedding)."
            )
        else:
            log_path = Path(settings.VAR_DIR) / "worker.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "workers",
                    "worker",
                    "-Q",
                    "embed,train",
                    "--concurrency",
                    "1",
                    "-l",
                    "info",
                ],
                stdout=log_path.open("a"),
                stderr=subprocess.STDOUT,
            )
            atexit.register(worker.terminate)
            self.stdout.write(f"Started a Celery worker (pid {worker.pid}, log {log_path}).")
        self._load_active_model()
        call_command("runserver", addrport, use_reloader=False)

    def _load_active_model(self) -> None:
        """Load the encoder before the first request instead of during it (several seconds on a CPU)."""
        from lifecycle.encoders import encoder_for_version
        from lifecycle.selectors import model_version_get_active

        version = model_version_get_active()
        if version is not None:
            encoder_for_version(version)
            self.stdout.write(f"Loaded the active model {version.name}.")
