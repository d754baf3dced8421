"""Helpers for the tests that run the project's commands in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def isolated_env(tmp_path) -> dict[str, str]:
    """The environment of a fresh checkout: no DATABASE_URL, no SECRET_KEY, and its own (empty) embedded
    data folder and var/ folder, so nothing a test starts can touch the shared server in .pgdata."""
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "SECRET_KEY"}}
    (tmp_path / "pg").mkdir()
    env.update(
        EMBEDDED_PG_DIR=str(tmp_path / "pg"),
        VAR_DIR=str(tmp_path / "var"),
        DEBUG="1",
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def run_python(args: list[str], *, env: dict[str, str], input: str | None = None):
    return subprocess.run(
        [sys.executable, *args],
        cwd=PROJECT_ROOT,
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
    )
