"""Django's PostgreSQL backend for the embedded server (`config.embedded_postgres`).

Settings use it only when `DATABASE_URL` is unset. It differs from Django's in two ways:
- a process that finds the server down (a Celery worker, gunicorn, a script calling `django.setup()`)
  gets one line saying how to start it instead of psycopg's connection error;
- `manage.py dbshell` runs the psql bundled with the server, which need not be installed otherwise.
"""
