from __future__ import annotations

import pytest

from config.startup import command_needs_database
from tests.config.conftest import run_python


@pytest.mark.parametrize(
    "argv",
    [
        ["manage.py"],
        ["manage.py", "help"],
        ["manage.py", "help", "migrate"],
        ["manage.py", "--help"],
        ["manage.py", "-h"],
        ["manage.py", "version"],
        ["manage.py", "--version"],
        ["manage.py", "migrate", "--help"],
        ["manage.py", "import_catalog", "catalog.jsonl", "-h"],
    ],
)
def test_help_and_version_need_no_database(argv):
    assert command_needs_database(argv) is False


@pytest.mark.parametrize(
    "argv",
    [
        ["manage.py", "migrate"],
        ["manage.py", "dbshell"],
        ["manage.py", "runserver", "127.0.0.1:8000"],
        ["manage.py", "import_catalog", "catalog.jsonl"],
        # after `--` the arguments belong to psql, not to Django
        ["manage.py", "dbshell", "--", "--help"],
    ],
)
def test_other_commands_need_the_database(argv):
    assert command_needs_database(argv) is True


@pytest.mark.parametrize("arguments", [["--help"], ["migrate", "--help"], ["version"]])
def test_manage_py_help_starts_no_server_and_writes_nothing(isolated_env, tmp_path, arguments):
    # Given a fresh checkout: an empty embedded data folder, no var/ folder, no DATABASE_URL
    # When manage.py is asked for help
    result = run_python(["manage.py", *arguments], env=isolated_env)

    # Then it answers without creating a cluster, starting a server or writing the demo key
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert list((tmp_path / "pg").iterdir()) == []
    assert not (tmp_path / "var").exists()
