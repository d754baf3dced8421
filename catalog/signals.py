"""Signals the catalogue sends; the workers app listens (catalog itself knows nothing of Celery)."""

from django.db import transaction
from django.dispatch import Signal

# Sent after the commit of a change that left products marked `embedding_dirty`.
embedding_requested = Signal()


def embedding_request_on_commit() -> None:
    transaction.on_commit(lambda: embedding_requested.send(sender=None))
