"""The broker's visibility timeout outlasts every task's time limit: derived so, and checked when a
worker starts."""

import subprocess
import sys
import uuid
from types import SimpleNamespace

import pytest
from celery import Celery

from lifecycle.task_timing import (
    RETRAIN_TIME_LIMIT_S,
    VISIBILITY_MARGIN_S,
    _refuse_to_start_when_the_broker_could_duplicate_work,
    broker_visibility_timeout,
    registered_task_time_limits,
    visibility_timeout_for,
    visibility_timeout_problems,
    worker_timing_problems,
)
from tests.lifecycle.conftest import ROOT, child_environment
from workers.celery_app import app


def _host_app(*, broker: str = "redis://127.0.0.1:1/0", visibility_timeout: int | None = None) -> Celery:
    """A host shop's own Celery app: our tasks (shared) and one of its own."""
    host = Celery(f"host-{uuid.uuid4().hex[:6]}", broker=broker, set_as_current=False)
    host.conf.task_acks_late = True
    if visibility_timeout is not None:
        host.conf.broker_transport_options = {"visibility_timeout": visibility_timeout}

    @host.task(name="host.export_feed", time_limit=7200, shared=False)
    def export_feed() -> None: ...

    @host.task(name="host.ping", acks_late=False, shared=False)
    def ping() -> None: ...  # acknowledged on receipt: never redelivered while it runs

    return host


def test_the_shipped_app_outlasts_its_longest_task_the_retrain():
    limits = registered_task_time_limits(app, default_time_limit=None)

    assert {"lifecycle.tasks.embed_pending", "lifecycle.tasks.retrain_model"} <= set(limits)
    assert max(limits.values()) == limits["lifecycle.tasks.retrain_model"] == RETRAIN_TIME_LIMIT_S
    assert broker_visibility_timeout(app) == visibility_timeout_for(RETRAIN_TIME_LIMIT_S)
    assert visibility_timeout_for(RETRAIN_TIME_LIMIT_S) == RETRAIN_TIME_LIMIT_S + VISIBILITY_MARGIN_S
    assert worker_timing_problems(app) == []


def test_a_visibility_timeout_must_exceed_each_time_limit_by_the_margin():
    limits = {"short": 1000, "long": 20_000}

    problems = visibility_timeout_problems(
        visibility_timeout=20_000 + VISIBILITY_MARGIN_S - 1, time_limits=limits
    )
    assert len(problems) == 1 and problems[0].startswith("long may run 20000 s")
    assert (
        visibility_timeout_problems(visibility_timeout=20_000 + VISIBILITY_MARGIN_S, time_limits=limits) == []
    )


def test_a_task_without_a_time_limit_is_a_problem_whatever_the_timeout():
    problems = visibility_timeout_problems(visibility_timeout=10**9, time_limits={"endless": None})
    assert problems == [
        "endless has no time_limit, so no visibility timeout can outlast it: give the task a time_limit "
        "(lifecycle/task_timing.py), or set task_time_limit."
    ]


def test_a_host_app_with_kombus_default_hour_is_told_what_to_set():
    host = _host_app()  # no transport options: Redis redelivers after kombu's default 3600 s

    problems = worker_timing_problems(host)

    assert broker_visibility_timeout(host) == 3600
    named = [problem.split(" ")[0] for problem in problems[:-1]]
    # Its own long task and ours (an embedding run too: 1900 s + the margin is over the hour); not the
    # task acknowledged on receipt, nor Celery's built-ins.
    assert named == ["host.export_feed", "lifecycle.tasks.embed_pending", "lifecycle.tasks.retrain_model"]
    fix = f"'visibility_timeout': {visibility_timeout_for(RETRAIN_TIME_LIMIT_S)}}}"
    assert problems[-1].startswith("Fix: broker_transport_options = {...") and fix in problems[-1]

    assert (
        worker_timing_problems(_host_app(visibility_timeout=visibility_timeout_for(RETRAIN_TIME_LIMIT_S)))
        == []
    )


def test_the_worker_default_time_limit_covers_a_task_without_its_own():
    host = _host_app(visibility_timeout=visibility_timeout_for(RETRAIN_TIME_LIMIT_S))

    @host.task(name="host.unbounded", shared=False)
    def unbounded() -> None: ...

    assert [problem.split(" ")[0] for problem in worker_timing_problems(host)[:-1]] == ["host.unbounded"]
    assert worker_timing_problems(host, default_time_limit=600) == []


def test_a_broker_without_a_visibility_timeout_is_not_checked():
    host = _host_app(broker="amqp://guest@127.0.0.1:1//")
    assert broker_visibility_timeout(host) is None
    assert worker_timing_problems(host) == []


def test_the_start_up_check_stops_the_worker_with_the_reason():
    host = _host_app(visibility_timeout=3600)
    with pytest.raises(
        SystemExit, match=r"Refusing to start this worker(.|\n)*lifecycle.tasks.retrain_model may run"
    ):
        _refuse_to_start_when_the_broker_could_duplicate_work(
            sender=SimpleNamespace(app=host, time_limit=None)
        )
    _refuse_to_start_when_the_broker_could_duplicate_work(sender=SimpleNamespace(app=app, time_limit=None))


@pytest.mark.django_db
def test_a_real_worker_with_a_short_visibility_timeout_refuses_to_start(_media_root, tmp_path):
    # A host's app that sets the visibility timeout back to an hour (celery_app_short_visibility.py)
    command = [sys.executable, "-m", "celery", "-A", "tests.lifecycle.celery_app_short_visibility", "worker"]
    command += ["-Q", "train", "--concurrency", "1", "-n", f"test-{uuid.uuid4().hex[:8]}@%h", "-l", "info"]
    # An unreachable broker: the check comes before any connection, and nothing could be consumed anyway.
    env = child_environment(_media_root, TEST_REDIS_URL="redis://127.0.0.1:1/0")

    finished = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    output = finished.stdout + finished.stderr
    assert finished.returncode != 0, output
    assert "Refusing to start this worker" in output
    assert "lifecycle.tasks.retrain_model may run 21900 s" in output and "after 3600 s" in output
    assert " ready." not in output
