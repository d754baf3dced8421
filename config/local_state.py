"""A checkout's own state under `var/` (`VAR_DIR`), and the demo's secret key kept there.

In debug without `SECRET_KEY`, every process of one checkout (runserver, the Celery worker, the tests)
signs sessions with one random key, `var/secret_key`, so that no two demo installs share a key.
Settings only read it: `manage.py` creates it (`secret_key_ensure`) before any command that needs it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def var_dir() -> Path:
    return Path(os.environ.get("VAR_DIR", PROJECT_ROOT / "var"))


def _secret_key_file() -> Path:
    return var_dir() / "secret_key"


def secret_key_read() -> str | None:
    """The checkout's key, or None before `manage.py` first created it."""
    try:
        return _secret_key_file().read_text().strip() or None
    except FileNotFoundError:
        return None


def secret_key_ensure() -> None:
    """Create the checkout's key unless it exists (or `SECRET_KEY` makes it unneeded)."""
    if os.environ.get("SECRET_KEY") or secret_key_read() is not None:
        return
    key_file = _secret_key_file()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_text(secrets.token_urlsafe(50))
