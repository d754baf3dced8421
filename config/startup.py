"""What `manage.py` does before Django runs a command: what importing settings no longer does.

Every command but help and version may need the database (migrate, dbshell, runserver, import_catalog,
shell ...), so it starts the embedded server (unless `DATABASE_URL` is set) and creates the demo secret
key first. `manage.py --help` starts and writes nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

_HELP_OR_VERSION = {"help", "--help", "-h", "version", "--version"}


def command_needs_database(argv: Sequence[str]) -> bool:
    """False for `manage.py`, `manage.py help [cmd]`, `manage.py --version`, `manage.py <cmd> --help`."""
    arguments = list(argv[1:])
    if not arguments or arguments[0] in _HELP_OR_VERSION:
        return False
    options = arguments[1 : arguments.index("--")] if "--" in arguments else arguments[1:]
    return not any(option in _HELP_OR_VERSION - {"help", "version"} for option in options)


def prepare_command(argv: Sequence[str]) -> None:
    """Start the embedded server and create the demo key when the command may need them."""
    if not command_needs_database(argv):
        return
    from config import embedded_postgres, local_state

    local_state.secret_key_ensure()
    try:
        embedded_postgres.start_unless_database_url()
    except embedded_postgres.EmbeddedPostgresError as error:
        sys.exit(str(error))
