"""config/embedded_replica.py: a real streaming replica of the embedded PostgreSQL, on this machine."""

from __future__ import annotations

import os

import psycopg
import pytest
from django.db import connection

from config import embedded_replica
from config.embedded_postgres import EmbeddedPostgresError
from tests.config.conftest import run_python
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _on_replica(sql: str, params=()):
    with psycopg.connect(embedded_replica.url(connection.settings_dict["NAME"]), autocommit=True) as replica:
        return replica.execute(sql, params).fetchall()


def _system_identifier(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as server:
        return server.execute("SELECT system_identifier FROM pg_control_system()").fetchone()[0]


def test_the_replica_is_a_hot_standby_streaming_from_the_primary(embedded_replica):
    status = embedded_replica.replication_status()
    assert status.in_recovery and status.receiving

    with connection.cursor() as cursor:
        cursor.execute("SELECT application_name, state FROM pg_stat_replication")
        assert (embedded_replica.APPLICATION_NAME, "streaming") in cursor.fetchall()
    # A copy of this very cluster, not another one
    assert _system_identifier(embedded_replica.url("postgres")) == _system_identifier(
        embedded_replica._primary_url()
    )


def test_a_write_on_the_primary_is_replayed_and_the_replica_refuses_writes(embedded_replica):
    ProductFactory(sku="R1", title="Navy Shirt")

    embedded_replica.wait_for_catch_up()

    assert _on_replica("SELECT sku, title FROM catalog_product") == [("R1", "Navy Shirt")]
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        _on_replica("UPDATE catalog_product SET title = 'x'")


def test_a_stopped_replica_starts_again_from_its_copy_and_catches_up(embedded_replica):
    # Given a replica that was stopped
    version_file = embedded_replica.data_dir() / "PG_VERSION"
    copied = version_file.stat().st_ino
    assert embedded_replica.stop() is True
    assert embedded_replica.stop() is False and not embedded_replica.is_running()

    # When the primary changes meanwhile, and the replica starts again
    ProductFactory(sku="R2", title="Red Shirt")
    embedded_replica.start()
    embedded_replica.wait_for_catch_up()

    # Then it is the same copy (no second base backup), and it has what it missed
    assert version_file.stat().st_ino == copied
    assert _on_replica("SELECT sku FROM catalog_product") == [("R2",)]
    assert embedded_replica.replication_status().in_recovery


def test_the_command_line_reports_the_running_replica(embedded_replica):
    # The fixture's EMBEDDED_PG_REPLICA_DIR is in this process's environment, so the child's too
    result = run_python(["-m", "config.embedded_replica", "status"], env=dict(os.environ))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"running: {embedded_replica.url()}")
    assert "in recovery: True, streaming: True" in result.stdout
    url = run_python(["-m", "config.embedded_replica", "url"], env=dict(os.environ)).stdout.strip()
    assert url == f"postgresql://postgres@/product_search?host={embedded_replica.data_dir()}&port=5433"


def test_a_folder_holding_another_cluster_is_not_taken_for_a_replica(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBEDDED_PG_REPLICA_DIR", str(tmp_path))
    (tmp_path / "PG_VERSION").write_text("18\n")

    with pytest.raises(EmbeddedPostgresError, match="not a standby"):
        embedded_replica.start()


def test_a_folder_with_files_gets_no_base_backup(monkeypatch, tmp_path, embedded_replica):
    monkeypatch.setenv("EMBEDDED_PG_REPLICA_DIR", str(tmp_path))
    (tmp_path / "notes.txt").write_text("mine\n")

    with pytest.raises(EmbeddedPostgresError, match="not empty"):
        embedded_replica.start()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
