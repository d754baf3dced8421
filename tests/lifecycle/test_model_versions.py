"""Claiming a version to train it: one claimer wins, the claim is never taken over."""

import os
import socket
import threading

import pytest
from django.db import connection

from lifecycle.model_versions import (
    ModelVersionClaimed,
    model_version_claim,
    model_version_claimed_elsewhere,
    model_version_create,
)
from lifecycle.models import ModelVersion
from lifecycle.retraining import RetrainOptions, retrain_run

pytestmark = pytest.mark.django_db(transaction=True)


def test_of_two_processes_claiming_one_version_at_once_exactly_one_wins():
    version = model_version_create(name="retrain-race")
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def claim(note: str) -> None:
        # Each thread has its own database connection, as two worker processes would.
        copy = ModelVersion.objects.get(pk=version.pk)
        barrier.wait()
        try:
            results.append(model_version_claim(version=copy, note=note))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(f"task {index}",)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False, True]
    version.refresh_from_db()
    assert version.claimed_at is not None
    assert version.claimed_by in {
        f"{socket.gethostname()} pid {os.getpid()} (task {index})" for index in range(2)
    }
    assert version.progress["pid"] == os.getpid() and version.progress["host"] == socket.gethostname()


def test_a_claim_is_not_taken_over_and_a_version_past_training_is_not_claimed():
    claimed = model_version_create(name="retrain-claimed")
    assert model_version_claim(version=claimed, note="task first")
    stamp = ModelVersion.objects.get(pk=claimed.pk).claimed_at

    again = ModelVersion.objects.get(pk=claimed.pk)
    assert not model_version_claim(version=again, note="task second")
    again.refresh_from_db()
    assert again.claimed_by.endswith("(task first)") and again.claimed_at == stamp

    for status in (ModelVersion.Status.FAILED, ModelVersion.Status.READY):
        other = model_version_create(name=f"retrain-{status}", status=status)
        assert not model_version_claim(version=other)
        other.refresh_from_db()
        assert other.claimed_at is None
    trained = model_version_create(name="retrain-trained", artifact_path="/models/retrain-trained")
    assert not model_version_claim(version=trained)


def test_claimed_elsewhere_tells_this_process_from_another():
    version = model_version_create(name="retrain-mine")
    assert not model_version_claimed_elsewhere(version=version)  # nobody holds it
    assert model_version_claim(version=version, note="task 1")
    assert not model_version_claimed_elsewhere(version=version)
    version.claimed_by = f"{socket.gethostname()} pid {os.getpid()}1 (task 1)"  # a pid that only starts alike
    assert model_version_claimed_elsewhere(version=version)
    version.claimed_by = f"other-host pid {os.getpid()}"
    assert model_version_claimed_elsewhere(version=version)


def test_retrain_run_on_a_claimed_version_raises_and_touches_nothing():
    version = model_version_create(name="retrain-held")
    assert model_version_claim(version=version, note="task first")
    before = ModelVersion.objects.get(pk=version.pk)

    with pytest.raises(ModelVersionClaimed, match="claimed by .*task first"):
        retrain_run(
            version=ModelVersion.objects.get(pk=version.pk), options=RetrainOptions(), claim_note="later"
        )

    after = ModelVersion.objects.get(pk=version.pk)
    assert (after.status, after.progress, after.claimed_by, after.claimed_at, after.updated_at) == (
        before.status,
        before.progress,
        before.claimed_by,
        before.claimed_at,
        before.updated_at,
    )
