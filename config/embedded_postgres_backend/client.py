"""`manage.py dbshell` with the psql bundled with the embedded server."""

from __future__ import annotations

from django.db.backends.postgresql import client

from config import embedded_postgres


class DatabaseClient(client.DatabaseClient):
    @classmethod
    def settings_to_cmd_args_env(cls, settings_dict, parameters):
        args, env = super().settings_to_cmd_args_env(settings_dict, parameters)
        # The server's own psql: a system one may be missing, or older than the server.
        args[0] = str(embedded_postgres.bin_dir() / cls.executable_name)
        return args, env
