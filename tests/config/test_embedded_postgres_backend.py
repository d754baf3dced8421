from __future__ import annotations

import os

import pytest

from config import embedded_postgres
from config.embedded_postgres_backend.client import DatabaseClient
from tests.config.conftest import run_python

CONNECT = "import django; django.setup(); from django.db import connection; connection.ensure_connection()"


def test_a_process_finding_the_server_down_gets_one_line_saying_what_to_run(isolated_env, tmp_path):
    # Given a checkout whose embedded server is not running (its own, empty data folder)
    # When a process that is no command (a worker, wsgi, a script) connects
    result = run_python(["-c", CONNECT], env=isolated_env)

    # Then it fails with the command to run, not psycopg's connection error, and starts nothing
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line == (
        "config.embedded_postgres_backend.base.EmbeddedServerNotRunning: The embedded PostgreSQL server "
        f"(data folder {tmp_path / 'pg'}) is not running: start it with `make db` or "
        "`python -m config.embedded_postgres start` (or set DATABASE_URL)."
    )
    assert "psycopg" not in result.stderr
    assert list((tmp_path / "pg").iterdir()) == []


def test_dbshell_runs_the_psql_bundled_with_the_server():
    args, _ = DatabaseClient.settings_to_cmd_args_env(
        {"NAME": "shop", "USER": "postgres", "HOST": "/sockets", "PORT": "5432", "OPTIONS": {}}, []
    )

    assert args == [
        str(embedded_postgres.bin_dir() / "psql"),
        "-U",
        "postgres",
        "-h",
        "/sockets",
        "-p",
        "5432",
        "shop",
    ]
    assert os.access(args[0], os.X_OK)


@pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="dbshell on the embedded server only")
def test_dbshell_answers_a_query_on_the_embedded_server():
    # The shared server in .pgdata (started by the test run; dbshell would start it too)
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}

    result = run_python(["manage.py", "dbshell"], env=env, input="select 40 + 2 as answer;\n")

    assert result.returncode == 0, result.stderr
    assert "answer" in result.stdout and "42" in result.stdout
