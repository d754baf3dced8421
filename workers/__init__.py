"""The Celery app and the demo's server-with-worker command: `celery -A workers worker -Q embed,train`.

The tasks themselves live with the work they do (lifecycle/tasks.py) and are found by autodiscovery.
"""

from workers.celery_app import app

__all__ = ["app"]
