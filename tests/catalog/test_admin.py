"""Photo upload through the real admin, with Django's test client."""

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape

from catalog.models import Product, ProductImage
from catalog.photos import photo_prepare
from catalog.services import product_photo_add
from catalog.validators import SKU_ALLOWED_CHARACTERS
from tests.conftest import make_bomb_png, make_photo_bytes, make_text_bomb_png
from tests.factories import ProductFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _form(upload, **overrides):
    data = {
        "sku": "ADM1",
        "title": "Navy Check Shirt",
        "description": "",
        "is_active": "on",
        "brand": "Roadster",
        "gender": "Men",
        "colour": "Navy Blue",
        "master_category": "Apparel",
        "sub_category": "Topwear",
        "article_type": "Shirts",
        "season": "",
        "usage": "",
        "price": "",
        "currency": "",
        "attributes": "{}",
        "images-TOTAL_FORMS": "1",
        "images-INITIAL_FORMS": "0",
        "images-MIN_NUM_FORMS": "0",
        "images-MAX_NUM_FORMS": "1000",
        "images-0-position": "0",
    }
    if upload is not None:
        data["images-0-image"] = upload
    data.update(overrides)
    return data


def test_valid_upload_creates_the_product_with_its_photo(admin_client, _media_root):
    upload = SimpleUploadedFile("../../etc/passwd.jpg", make_photo_bytes(), content_type="image/jpeg")
    response = admin_client.post(reverse("admin:product_search_catalog_product_add"), _form(upload))

    assert response.status_code == 302, response.content.decode()[:2000]
    product = Product.objects.get(sku="ADM1")
    image = product.images.get()
    assert image.image.name.startswith("products/") and "passwd" not in image.image.name
    assert (Path(_media_root) / image.image.name).is_file()
    assert product.embedding_dirty


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (make_photo_bytes(size=(300, 300))[:300], "damaged"),
        (make_photo_bytes() + b"\0" * (10 * 1024 * 1024 + 1), "larger than the limit"),
        (make_bomb_png(10000, 10000), "decompression bomb"),
        (b"%PDF-1.4 not a photo", "not an image"),
        (make_text_bomb_png(), "Decompressed data too large"),
    ],
    ids=["corrupt", "oversized", "bomb", "non-image", "png-text-bomb"],
)
def test_rejected_upload_is_a_form_error_and_saves_nothing(admin_client, _media_root, content, expected):
    upload = SimpleUploadedFile("photo.jpg", content, content_type="image/jpeg")
    response = admin_client.post(reverse("admin:product_search_catalog_product_add"), _form(upload))

    assert response.status_code == 200
    assert expected in response.content.decode()
    assert not Product.objects.exists()
    assert not ProductImage.objects.exists()
    assert not any(Path(_media_root).rglob("*.*"))


@pytest.mark.parametrize("sku", ["A/B", "A B", "50%", "A?B"])
def test_a_sku_that_cannot_go_into_a_url_is_a_form_error(admin_client, sku):
    upload = SimpleUploadedFile("photo.jpg", make_photo_bytes(), content_type="image/jpeg")
    response = admin_client.post(reverse("admin:product_search_catalog_product_add"), _form(upload, sku=sku))

    assert response.status_code == 200
    assert escape(f"A SKU may contain only {SKU_ALLOWED_CHARACTERS}") in response.content.decode()
    assert not Product.objects.exists()


def test_rejected_photo_on_edit_keeps_the_old_photos(admin_client):
    valid = SimpleUploadedFile("a.jpg", make_photo_bytes(), content_type="image/jpeg")
    admin_client.post(reverse("admin:product_search_catalog_product_add"), _form(valid))
    product = Product.objects.get(sku="ADM1")
    old_image = product.images.get()

    corrupt = SimpleUploadedFile("b.jpg", b"garbage", content_type="image/jpeg")
    data = _form(
        None,
        title="Renamed",
        **{
            "images-TOTAL_FORMS": "2",
            "images-INITIAL_FORMS": "1",
            "images-0-id": str(old_image.pk),
            "images-0-product": str(product.pk),
            "images-1-image": corrupt,
            "images-1-position": "1",
        },
    )
    response = admin_client.post(
        reverse("admin:product_search_catalog_product_change", args=[product.pk]), data
    )

    assert response.status_code == 200 and "not an image" in response.content.decode()
    product.refresh_from_db()
    assert product.title == "Navy Check Shirt"
    assert list(product.images.values_list("pk", flat=True)) == [old_image.pk]


def test_adding_a_second_photo_on_edit(admin_client):
    product = ProductFactory(sku="ED1")
    upload = SimpleUploadedFile("side.png", make_photo_bytes(format="PNG"), content_type="image/png")
    data = _form(upload, sku="ED1", title=product.title)
    response = admin_client.post(
        reverse("admin:product_search_catalog_product_change", args=[product.pk]), data
    )
    assert response.status_code == 302
    assert product.images.get().image.name.endswith(".png")


def test_changelist_shows_thumbnails_filters_and_search(admin_client):
    product = ProductFactory(sku="LIST1", title="Turtle Check Men Navy Blue Shirt")
    ProductFactory(sku="LIST2", title="Red Kurta", colour="Red")
    product_photo_add(product=product, photo=photo_prepare(io.BytesIO(make_photo_bytes())))
    url = reverse("admin:product_search_catalog_product_changelist")

    page = admin_client.get(url).content.decode()
    assert _row(page, "LIST1").count('<img src="/media/products/') == 1
    assert '<img src="/media/' not in _row(page, "LIST2")

    found = admin_client.get(url, {"q": "turtle"}).content.decode()
    assert "LIST1" in found and "LIST2" not in found
    red = admin_client.get(url, {"colour": "Red"}).content.decode()
    assert "LIST2" in red and "LIST1" not in red


def _row(page: str, text: str) -> str:
    """The changelist's table row that contains `text`."""
    return next(row.split("</tr>")[0] for row in page.split("<tr") if text in row)
