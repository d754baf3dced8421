"""The model versions' admin page, and the embedding status it adds to the catalogue's."""

import pytest
from django.urls import reverse

from lifecycle.embedding_pipeline import embedding_process_pending
from lifecycle.model_versions import (
    model_version_activate,
    model_version_build,
    model_version_register_checkpoint,
)
from lifecycle.models import ModelVersion
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _row(page: str, text: str) -> str:
    """The changelist's table row that contains `text`."""
    return next(row.split("</tr>")[0] for row in page.split("<tr") if text in row)


def test_model_version_page_shows_status_progress_metrics_and_activates(admin_client, tiny_model_path):
    ProductFactory(sku="MV1")
    version = model_version_register_checkpoint(path=tiny_model_path, name="tiny-admin")
    model_version_build(version=version)
    report = {"R@1": 51.0, "R@5": 80.0, "R@10": 91.0, "medr": 1.0, "meanr": 3.0, "mAP@10": 60.0}
    ModelVersion.objects.filter(pk=version.pk).update(metrics={"held_out": {"t2i": report, "i2t": report}})

    listing = admin_client.get(
        reverse("admin:product_search_lifecycle_modelversion_changelist")
    ).content.decode()
    row = _row(listing, "tiny-admin")
    assert '<td class="field-status">Ready</td>' in row
    assert "51.0 / 91.0" in row and "ready, 1/1 embedded" in row
    detail = admin_client.get(
        reverse("admin:product_search_lifecycle_modelversion_change", args=[version.pk])
    ).content.decode()
    assert "<th>mAP@10</th>" in detail and "<td>60.0</td>" in detail

    response = admin_client.post(
        reverse("admin:product_search_lifecycle_modelversion_changelist"),
        {"action": "activate_selected", "_selected_action": [version.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert "Tiny-admin is now the active model" in page
    assert ModelVersion.objects.get(pk=version.pk).status == "active"


def test_product_changelist_shows_and_filters_the_embedding_status(admin_client, tiny_model_path):
    embedded = ProductFactory(sku="EMB1")
    version = model_version_register_checkpoint(path=tiny_model_path, name="tiny-status")
    model_version_build(version=version)
    model_version_activate(version=version)
    embedding_process_pending()
    ProductFactory(sku="WAIT1")  # created after the embedding: still pending
    url = reverse("admin:product_search_catalog_product_changelist")

    page = admin_client.get(url).content.decode()
    assert '<td class="field-embedding_status">embedded</td>' in _row(page, embedded.sku)
    assert '<td class="field-embedding_status">pending</td>' in _row(page, "WAIT1")
    pending = admin_client.get(url, {"embedding": "pending"}).content.decode()
    assert "WAIT1" in pending and "EMB1" not in pending
    done = admin_client.get(url, {"embedding": "embedded"}).content.decode()
    assert "EMB1" in done and "WAIT1" not in done
