"""Several workers: an `embed` worker and the (GPU) `train` worker, two real Celery processes on the
real Redis, share the embedding of the dirty products, and no product is embedded twice."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
from django.db import connection

from catalog.models import Product
from catalog.services import product_create
from lifecycle.model_versions import model_version_build, model_version_register_checkpoint
from lifecycle.models import ModelVersion, ProductEmbedding
from tests.lifecycle.conftest import (
    WorkerProcess,
    child_environment,
    database_url,
    prepared_photo,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

PRODUCTS = 24
BATCH = 4
EMBEDDED = re.compile(r"Embedded (\d+) products")


@pytest.fixture
def two_workers(clean_redis, _media_root, tmp_path):
    environment = child_environment(_media_root, TEST_EMBED_BATCH_SIZE=str(BATCH))
    workers = {
        queue: WorkerProcess(environment, tmp_path / f"{queue}-worker.log") for queue in ("embed", "train")
    }
    yield workers
    for worker in workers.values():
        worker.stop()


def _backends_waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def _all_embedded(versions: list[ModelVersion]) -> bool:
    if Product.objects.filter(embedding_dirty=True).exists():
        return False
    texts = ProductEmbedding.objects.filter(model_version__in=versions, kind="text").count()
    return texts == PRODUCTS * len(versions)


def test_an_embed_and_a_train_worker_share_the_dirty_products(
    two_workers, active_tiny_version, tiny_frozen_trunk_model_path, settings
):
    # Given two live versions (the active one and a retrained one, ready), each run sent to both
    # queues, and a worker on each queue
    ready = model_version_register_checkpoint(
        path=tiny_frozen_trunk_model_path, name=f"tiny-frozen-{uuid.uuid4().hex[:6]}"
    )
    model_version_build(version=ready)
    versions = [active_tiny_version, ready]
    settings.PRODUCT_SEARCH_EMBED_QUEUES = ["embed", "train"]
    two_workers["embed"].start(queues="embed")
    two_workers["train"].start(queues="train")

    # When products change while the test holds the versions' rows: a batch's vectors reference its
    # version, so a worker's commit waits at that lock (deferred foreign-key check), holding its batch
    with psycopg.connect(database_url()) as holder:
        holder.execute(
            "SELECT id FROM catalog_modelversion WHERE id = ANY(%s) FOR UPDATE", ([v.pk for v in versions],)
        )
        for index in range(PRODUCTS):
            product_create(
                sku=f"S{index:03d}",
                title=f"shirt {index}",
                photos=[prepared_photo(f"#{index * 10:02x}40{255 - index * 10:02x}")],
            )
        # Then both workers each claimed a batch of their own at the same time (SKIP LOCKED)
        wait_until(
            lambda: _backends_waiting_for_a_lock() == 2,
            timeout=90,
            message="both workers to hold a batch at once",
        )
        holder.rollback()

    # And together they embed every product, once for each version
    wait_until(lambda: _all_embedded(versions), timeout=120, message="the workers to drain the products")
    for version in versions:
        rows = ProductEmbedding.objects.filter(model_version=version)
        assert rows.filter(kind="text").count() == PRODUCTS
        assert rows.filter(kind="image").count() == PRODUCTS
        assert rows.values("product_id", "kind").distinct().count() == 2 * PRODUCTS

    # And each did part of the work, none of it twice: the products their runs report add up exactly
    done = {
        queue: sum(int(count) for count in EMBEDDED.findall(worker.log()))
        for queue, worker in two_workers.items()
    }
    assert done["embed"] > 0 and done["train"] > 0, done
    assert done["embed"] + done["train"] == PRODUCTS, done
    assert "from queue train" in two_workers["train"].log()
