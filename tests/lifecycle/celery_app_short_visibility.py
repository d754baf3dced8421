"""A host's Celery app that shortens the broker's visibility timeout to kombu's default hour, below a
retrain's time limit: a worker of it must refuse to start (tests/lifecycle/test_task_timing.py)."""

from workers.celery_app import app

app.conf.broker_transport_options = {**app.conf.broker_transport_options, "visibility_timeout": 3600}

__all__ = ["app"]
