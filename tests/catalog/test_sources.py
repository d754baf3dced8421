"""The catalogue fed from a host's own model (catalog/sources.py). Django's auth Group stands in for
the host model here; the host-project test (packaging/host_project_test.sh) does it with a shop's own."""

import logging

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from catalog.models import Product
from catalog.sources import (
    ProductSource,
    ProductSourceError,
    product_source_register,
    product_source_sync,
    product_source_unregister,
)
from tests.conftest import make_photo_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def _group_to_product(group):
    if group.name.startswith("hidden"):
        return None
    return {
        "title": group.name,
        "colour": "Navy",
        "attributes": {"fit": "slim"},
        "photos": [make_photo_bytes(colour="navy")],
    }


@pytest.fixture
def group_source():
    source = product_source_register(model=Group, to_product=_group_to_product, sku=lambda g: f"G-{g.pk}")
    yield source
    product_source_unregister(model=Group)


def test_a_save_upserts_its_product_with_photos_on_commit(group_source):
    group = Group.objects.create(name="Navy Slim Shirt")

    product = Product.objects.get(sku=f"G-{group.pk}")
    assert (product.title, product.colour, product.attributes) == ("Navy Slim Shirt", "Navy", {"fit": "slim"})
    assert product.images.count() == 1 and product.is_active and product.embedding_dirty
    assert product.source == "auth.group"

    Product.objects.filter(pk=product.pk).update(embedding_dirty=False)
    group.name = "Navy Slim Oxford Shirt"
    group.save()

    product.refresh_from_db()
    assert product.title == "Navy Slim Oxford Shirt" and product.embedding_dirty


def test_a_delete_or_a_none_mapping_deactivates(group_source):
    kept, hidden = Group.objects.create(name="Red Dress"), Group.objects.create(name="Blue Jeans")
    sku = f"G-{kept.pk}"

    kept.delete()
    hidden.name = "hidden: off sale"
    hidden.save()

    assert not Product.objects.get(sku=sku).is_active
    assert not Product.objects.get(sku=f"G-{hidden.pk}").is_active


def test_a_bad_mapping_fails_loudly_in_the_service_and_never_fails_the_shops_save(group_source, caplog):
    product_source_unregister(model=Group)
    product_source_register(model=Group, to_product=lambda g: {"title": g.name, "size": "M"})

    with caplog.at_level(logging.ERROR, logger="catalog.sources"):
        group = Group.objects.create(name="Green Scarf")

    assert Group.objects.filter(pk=group.pk).exists()
    assert not Product.objects.exists()
    assert "sync_catalog" in caplog.text
    with pytest.raises(ProductSourceError, match="size"):
        product_source_sync(source=ProductSource(Group, lambda g: {"size": "M"}, str), instance=group)


def test_sync_catalog_resyncs_everything_and_deactivates_the_gone(group_source):
    product_source_unregister(model=Group)
    first, second = Group.objects.create(name="Black Belt"), Group.objects.create(name="Brown Belt")
    assert not Product.objects.exists()  # not registered while they were saved
    product_source_register(model=Group, to_product=_group_to_product, sku=lambda g: f"G-{g.pk}")

    call_command("sync_catalog", "--no-progress")

    assert set(Product.objects.values_list("sku", flat=True)) == {f"G-{first.pk}", f"G-{second.pk}"}
    product_source_unregister(model=Group)
    second_sku = f"G-{second.pk}"
    second.delete()  # unregistered: nobody deactivates it now, the resync must
    product_source_register(model=Group, to_product=_group_to_product, sku=lambda g: f"G-{g.pk}")

    call_command("sync_catalog", "--no-progress")

    assert Product.objects.get(sku=f"G-{first.pk}").is_active
    assert not Product.objects.get(sku=second_sku).is_active


def test_sync_catalog_without_a_registered_model_says_how_to_register():
    with pytest.raises(CommandError, match="product_source_register"):
        call_command("sync_catalog", "--no-progress")


def test_sync_catalog_reports_the_instances_it_could_not_bring_over(group_source):
    product_source_unregister(model=Group)
    Group.objects.create(name="")  # no title
    Group.objects.create(name="Yellow Cap")
    product_source_register(model=Group, to_product=_group_to_product)

    with pytest.raises(CommandError, match="1 instances could not be synced"):
        call_command("sync_catalog", "--no-progress")

    assert list(Product.objects.values_list("title", flat=True)) == ["Yellow Cap"]
