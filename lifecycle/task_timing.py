"""How long each Celery task may run, and the broker setting that must outlast it.

Every task is acknowledged late (when it ends), so a worker killed mid-task does not lose it. The
Redis broker, though, hands an unacknowledged message to another worker once its
`visibility_timeout` has passed, whether or not the first worker is still running it. So the
visibility timeout must exceed the longest task's hard `time_limit`, with a margin for the time a
message may wait in a worker before it starts; otherwise a long retrain is trained twice.

The limits are named here, in one place: the tasks (lifecycle/tasks.py) take theirs from here, and
the Celery app (workers/celery_app.py) derives the visibility timeout from the longest. A worker
checks the two against each other when it starts (`worker_init`) and refuses to start when they
disagree, which catches a host's own Celery app or transport options too.

This module imports nothing of Django: the Celery app reads it before Django is set up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from celery import Celery
from celery.signals import worker_init

logger = logging.getLogger(__name__)

# lifecycle.tasks.embed_pending: bounded batches of changed products.
EMBED_PENDING_SOFT_TIME_LIMIT_S = 1800
EMBED_PENDING_TIME_LIMIT_S = 1900
# lifecycle.tasks.retrain_model: train, measure, embed the catalogue, tune search.
RETRAIN_SOFT_TIME_LIMIT_S = 6 * 3600
RETRAIN_TIME_LIMIT_S = 6 * 3600 + 300

LONGEST_TIME_LIMIT_S = max(EMBED_PENDING_TIME_LIMIT_S, RETRAIN_TIME_LIMIT_S)

# How much longer than a task's hard time limit its message stays invisible to other workers: the
# time it may wait in a worker's prefetch before it starts, and clock skew between hosts.
VISIBILITY_MARGIN_S = 1800


def visibility_timeout_for(longest_time_limit_s: float) -> int:
    """The broker visibility timeout that outlasts a task of this hard time limit."""
    return int(longest_time_limit_s + VISIBILITY_MARGIN_S)


def visibility_timeout_problems(
    *, visibility_timeout: float, time_limits: Mapping[str, float | None]
) -> list[str]:
    """What would let the broker redeliver a message its first worker is still running: one line per
    task (name -> hard time limit in seconds, None for none), empty when every task is covered."""
    problems = []
    for name, limit in sorted(time_limits.items()):
        if limit is None:
            problems.append(
                f"{name} has no time_limit, so no visibility timeout can outlast it: give the task a "
                "time_limit (lifecycle/task_timing.py), or set task_time_limit."
            )
        elif visibility_timeout < limit + VISIBILITY_MARGIN_S:
            problems.append(
                f"{name} may run {limit:g} s (its time_limit), but the broker redelivers an unacknowledged "
                f"message after {visibility_timeout:g} s (visibility_timeout). It must be at least "
                f"{limit + VISIBILITY_MARGIN_S:g} s (the time limit and {VISIBILITY_MARGIN_S} s for a "
                "message waiting in a worker), or a second worker may run the task while the first still "
                "does."
            )
    return problems


def broker_visibility_timeout(app: Celery) -> float | None:
    """The visibility timeout this app's broker connection uses, or None for a transport that does
    not redeliver unacknowledged messages on a timer (RabbitMQ redelivers when the consumer is gone)."""
    connection = app.connection_for_read()
    default = getattr(getattr(connection.transport, "Channel", None), "visibility_timeout", None)
    if default is None:
        return None
    return float(connection.transport_options.get("visibility_timeout", default))


def registered_task_time_limits(app: Celery, *, default_time_limit: float | None) -> dict[str, float | None]:
    """The hard time limit of every registered task the broker could redeliver while it runs: those
    acknowledged late. Celery's own `celery.*` tasks (chords, groups) are left out: they do no work."""
    return {
        name: task.time_limit if task.time_limit is not None else default_time_limit
        for name, task in app.tasks.items()
        if not name.startswith("celery.") and task.acks_late
    }


def worker_timing_problems(app: Celery, *, default_time_limit: float | None = None) -> list[str]:
    """visibility_timeout_problems for this app's broker and registered tasks, ending with the fix;
    [] when every task is covered, or the broker has no visibility timeout."""
    visibility_timeout = broker_visibility_timeout(app)
    if visibility_timeout is None:
        return []
    if default_time_limit is None:
        default_time_limit = app.conf.task_time_limit
    time_limits = registered_task_time_limits(app, default_time_limit=default_time_limit)
    problems = visibility_timeout_problems(visibility_timeout=visibility_timeout, time_limits=time_limits)
    if problems:
        longest = max((limit for limit in time_limits.values() if limit), default=LONGEST_TIME_LIMIT_S)
        problems.append(
            "Fix: broker_transport_options = {..., 'visibility_timeout': "
            f"{visibility_timeout_for(longest)}}} in the Celery app (workers/celery_app.py derives it "
            "from lifecycle/task_timing.py)."
        )
    return problems


@worker_init.connect(dispatch_uid="lifecycle-task-timing-check")
def _refuse_to_start_when_the_broker_could_duplicate_work(sender: Any = None, **kwargs: Any) -> None:
    """At worker start (tasks registered, nothing consumed yet): stop with the reason rather than run a
    retrain twice. Celery logs and swallows an Exception from a signal handler; SystemExit stops it."""
    problems = worker_timing_problems(sender.app, default_time_limit=getattr(sender, "time_limit", None))
    if problems:
        message = "Refusing to start this worker: the broker could hand a running task to a second worker.\n"
        message += "\n".join(f"- {problem}" for problem in problems)
        logger.critical(message)
        raise SystemExit(message)
