"""A real Celery worker process on the real Redis, against the test database."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
from django.db import connection

from catalog.photos import photo_prepare
from lifecycle.model_versions import (
    model_version_activate,
    model_version_build,
    model_version_register_checkpoint,
)
from tests.conftest import make_photo_bytes

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the test database this process uses, for child processes."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or "/tmp"
    if str(host).startswith("/"):  # a Unix socket folder, as the embedded server uses
        return f"postgresql://{credentials}@/{db['NAME']}?host={host}"
    return f"postgresql://{credentials}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def child_environment(media_root: Path, **extra: str) -> dict[str, str]:
    from django.conf import settings

    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url(),
        "MEDIA_ROOT": str(media_root),
        "TEST_REDIS_URL": settings.REDIS_URL,
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def wait_until(condition, *, timeout: float, interval: float = 0.2, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout}s waiting for {message}")


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path):
        self.env, self.log_path = env, log_path
        self.process: subprocess.Popen | None = None

    def start(
        self, *, wait_ready: bool = True, queues: str = "embed,train", concurrency: int = 1
    ) -> WorkerProcess:
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "workers",
                "worker",
                "-Q",
                queues,
                "--concurrency",
                str(concurrency),
                "-n",
                f"test-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if wait_ready:
            wait_until(
                lambda: "ready." in self.log_path.read_text(), timeout=60, message="the worker to be ready"
            )
        return self

    def kill(self) -> None:
        """SIGKILL the worker and its pool children, as an out-of-memory kill or a pulled plug would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def clean_redis(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def worker(clean_redis, _media_root, tmp_path):
    handle = WorkerProcess(
        child_environment(_media_root, TEST_EMBED_BATCH_SIZE="400"), tmp_path / "worker.log"
    )
    yield handle
    handle.stop()


@pytest.fixture
def active_tiny_version(tiny_model_path):
    version = model_version_register_checkpoint(path=tiny_model_path, name=f"tiny-{uuid.uuid4().hex[:6]}")
    model_version_build(version=version)
    model_version_activate(version=version)
    return version


def prepared_photo(colour: str = "navy"):
    return photo_prepare(io.BytesIO(make_photo_bytes(colour=colour)))
