"""Celery workers: `celery -A workers worker -Q embed,train`."""

from workers.celery_app import app

__all__ = ["app"]
