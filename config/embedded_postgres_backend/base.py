"""The embedded server's database backend: Django's PostgreSQL one, with a clear error when it is down."""

from __future__ import annotations

from django.db import OperationalError
from django.db.backends.postgresql import base

from config import embedded_postgres
from config.embedded_postgres_backend.client import DatabaseClient


class EmbeddedServerNotRunning(OperationalError):
    """The embedded server is down. Commands start it (`manage.py`, `make db`); other processes do not."""


class DatabaseWrapper(base.DatabaseWrapper):
    client_class = DatabaseClient

    def get_new_connection(self, conn_params):
        try:
            return super().get_new_connection(conn_params)
        except base.Database.OperationalError:
            if embedded_postgres.url() is not None:
                raise  # the server is up: the failure is something else, show it as it is
            # `from None`: the psycopg error only repeats that there is no socket.
            raise EmbeddedServerNotRunning(embedded_postgres.not_running_message()) from None
