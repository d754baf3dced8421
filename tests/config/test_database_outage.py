"""PostgreSQL stopped under a running server: requests answer 503 with Retry-After, and once it is back
they succeed again with no restart. Real processes: a throwaway embedded server and `manage.py serve`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.config.conftest import PROJECT_ROOT, run_python


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _wait_for(url: str, accept, deadline_s: float) -> tuple[int, dict[str, str], bytes]:
    deadline = time.monotonic() + deadline_s
    last: tuple[int, dict[str, str], bytes] | Exception = RuntimeError("no answer")
    while time.monotonic() < deadline:
        try:
            last = _get(url)
            if accept(last[0]):
                return last
        except OSError as error:  # not listening yet
            last = error
        time.sleep(0.3)
    raise AssertionError(f"{url} never answered as expected; last: {last!r}")


def _manage(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_python(["manage.py", *args], env=env)


@pytest.fixture
def server_folder():
    """The throwaway server's data folder, where the `pgserver` user that pg_ctl runs as can reach it
    (pytest's own temporary folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="product-search-outage-"))
    folder.chmod(0o755)
    yield folder / "pg"
    shutil.rmtree(folder, ignore_errors=True)


def test_database_stopped_during_traffic_gives_503_then_recovers_without_restart(isolated_env, server_folder):
    env = {**isolated_env, "EMBEDDED_PG_DIR": str(server_folder), "DEBUG": "0"}
    env.update(SECRET_KEY="outage-test-" + "k" * 40, WEB_WORKERS="1", WEB_THREADS="2")
    migrated = _manage(["migrate", "--noinput"], env)
    assert migrated.returncode == 0, migrated.stderr
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--no-worker", f"127.0.0.1:{port}"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    product = f"http://127.0.0.1:{port}/api/v1/products/NO-SUCH-SKU/"
    try:
        status, _, body = _wait_for(product, lambda code: code == 404, deadline_s=90)
        assert b"NO-SUCH-SKU" in body  # the database answered: no such product

        stopped = run_python(["-m", "config.embedded_postgres", "stop"], env=env)
        assert stopped.returncode == 0, stopped.stderr
        status, headers, body = _get(product)
        assert status == 503
        assert int(headers["Retry-After"]) > 0
        assert b"database_unavailable" in body
        page_status, _, _ = _get(f"http://127.0.0.1:{port}/")
        assert page_status in {200, 503}  # the storefront page itself reads no table

        started = run_python(["-m", "config.embedded_postgres", "start"], env=env)
        assert started.returncode == 0, started.stderr
        _wait_for(product, lambda code: code == 404, deadline_s=30)
        assert server.poll() is None  # the same server process, never restarted
    finally:
        server.terminate()
        server.wait(timeout=60)
        run_python(["-m", "config.embedded_postgres", "stop"], env=env)
