"""Embedding through the real worker process and the real Redis, including its faults."""

import pytest
from django.db import connection
from django.test import override_settings

from catalog.models import Product
from catalog.services import product_create
from lifecycle.models import ProductEmbedding
from tests.lifecycle.conftest import prepared_photo, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

COLOURS = ["navy", "red", "green", "white", "black", "yellow"]


def _embedded(version, count):
    texts = ProductEmbedding.objects.filter(model_version=version, kind="text").count()
    return texts == count and not Product.objects.filter(embedding_dirty=True).exists()


def test_an_uploaded_product_is_embedded_by_the_worker(worker, active_tiny_version):
    worker.start()
    product = product_create(sku="W1", title="Navy Check Shirt", photos=[prepared_photo()])

    wait_until(lambda: _embedded(active_tiny_version, 1), timeout=60, message="the worker to embed W1")
    rows = ProductEmbedding.objects.filter(model_version=active_tiny_version, product=product)
    assert sorted(rows.values_list("kind", flat=True)) == ["image", "text"]
    assert "Embedded 1 products" in worker.log()


def _worker_holds_product_locks() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
            "AND l.relation = 'catalog_product'::regclass AND l.mode = 'RowShareLock'"
        )
        return cursor.fetchone()[0] > 0


def test_a_worker_killed_mid_batch_loses_nothing(worker, active_tiny_version, clean_redis):
    # Given 120 changed products queued for one batch, and no worker yet
    for index in range(120):
        product_create(
            sku=f"K{index:03d}",
            title=f"{COLOURS[index % 6]} shirt {index}",
            photos=[prepared_photo(COLOURS[index % 6])],
        )
    assert Product.objects.filter(embedding_dirty=True).count() == 120

    # When the worker is SIGKILLed while it holds the batch's rows
    worker.start(wait_ready=False)
    wait_until(
        _worker_holds_product_locks, timeout=90, interval=0.01, message="the worker to start the batch"
    )
    worker.kill()

    # Then nothing of the batch was half-written
    assert (
        ProductEmbedding.objects.filter(
            model_version=active_tiny_version, product__sku__startswith="K"
        ).count()
        == 0
    )
    assert Product.objects.filter(embedding_dirty=True).count() == 120

    # And after a restart every product ends embedded exactly once
    worker.start()
    wait_until(
        lambda: _embedded(active_tiny_version, 120), timeout=120, message="the restarted worker to catch up"
    )
    rows = ProductEmbedding.objects.filter(model_version=active_tiny_version, product__sku__startswith="K")
    assert rows.filter(kind="text").count() == 120 and rows.filter(kind="image").count() == 120
    assert rows.values("product_id", "kind").distinct().count() == 240


def test_redis_down_at_upload_saves_the_product_and_a_worker_catches_up(worker, active_tiny_version, caplog):
    # Given Redis does not answer when the product is uploaded
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0", CELERY_BROKER_URL="redis://127.0.0.1:1/0"):
        product = product_create(sku="R1", title="Red Kurta", photos=[prepared_photo("red")])
    assert "Could not queue the embedding task" in caplog.text
    assert Product.objects.get(pk=product.pk).embedding_dirty

    # When a worker starts once Redis is back, it embeds what was missed
    worker.start()
    wait_until(lambda: _embedded(active_tiny_version, 1), timeout=60, message="the catch-up embedding")


def test_a_corrupt_photo_fails_alone_in_the_workers_batch(worker, active_tiny_version, _media_root):
    products = [
        product_create(sku=f"C{index}", title=f"{colour} tee", photos=[prepared_photo(colour)])
        for index, colour in enumerate(COLOURS[:4])
    ]
    broken = products[2].images.get()
    (_media_root / broken.image.name).write_bytes(b"\xff\xd8 not really a jpeg")

    worker.start()
    wait_until(lambda: _embedded(active_tiny_version, 4), timeout=60, message="the batch")
    photos = ProductEmbedding.objects.filter(model_version=active_tiny_version, kind="image")
    assert sorted(photos.values_list("product__sku", flat=True)) == ["C0", "C1", "C3"]
    assert f"Photo {broken.pk} of product {products[2].pk} cannot be embedded" in worker.log()
