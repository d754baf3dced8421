"""POST /api/v1/search/image/: a photo ranks product photos, one result per product; 413, 415, 400."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from catalog.photos import photo_prepare
from catalog.services import product_create
from lifecycle.model_versions import (
    model_version_activate,
    model_version_build,
    model_version_register_checkpoint,
)
from tests.conftest import make_photo_bytes, make_text_bomb_png

URL = "/api/v1/search/image/"


def upload(content: bytes, name: str = "query.jpg", data: dict | None = None, query: str = ""):
    photo = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return APIClient().post(URL + query, {"photo": photo, **(data or {})}, format="multipart")


@pytest.mark.django_db
def test_a_photo_ranks_product_photos(small_catalog):
    response = upload(make_photo_bytes())
    assert response.status_code == 200, response.json()
    results = response.json()["results"]
    # Photo vectors only: N1 (e0) 1.0, N2 (e0+e1) 0.707, then N3, R4, R5 at 0, by id.
    assert [result["sku"] for result in results] == ["N1", "N2", "N3", "R4", "R5"]
    assert [result["score"] for result in results[:2]] == pytest.approx([1.0, 0.7071], abs=2e-3)


@pytest.mark.django_db
def test_filters_and_limit_apply_to_photo_search(small_catalog):
    response = upload(make_photo_bytes(), data={"colour": ["Red", "Blue"], "limit": "2"})
    assert [result["sku"] for result in response.json()["results"]] == ["N3", "R4"]
    response = upload(make_photo_bytes(), query="?gender=Women")
    assert [result["sku"] for result in response.json()["results"]] == ["N3", "R4"]


@pytest.mark.django_db
def test_a_photo_over_the_limit_is_413(small_catalog):
    response = upload(b"\xff\xd8" + b"\0" * (10 * 1024 * 1024 + 100 * 1024))
    assert response.status_code == 413
    assert "larger than the limit of 10 MB" in response.json()["detail"]


@pytest.mark.django_db
def test_a_photo_just_over_a_configured_limit_is_413(small_catalog, settings):
    settings.PRODUCT_SEARCH_MAX_IMAGE_BYTES = 1000
    response = upload(make_photo_bytes(size=(400, 400)))
    assert response.status_code == 413 and "Resize or compress it" in response.json()["detail"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content, name",
    [(b"just some text, not a photo", "notes.txt"), (make_photo_bytes(format="GIF"), "anim.gif")],
)
def test_a_file_that_is_not_an_accepted_image_is_415(small_catalog, content, name):
    response = upload(content, name=name)
    assert response.status_code == 415
    assert "JPEG, PNG or WebP" in response.json()["detail"]


@pytest.mark.django_db
def test_a_damaged_photo_is_400_saying_so(small_catalog):
    response = upload(make_photo_bytes(size=(300, 300))[:400])
    assert response.status_code == 400 and "damaged" in response.json()["photo"][0]


@pytest.mark.django_db
@pytest.mark.parametrize("after_pixels", [False, True], ids=["before-pixels", "after-pixels"])
def test_a_png_whose_text_chunk_inflates_too_far_is_400_not_a_server_error(small_catalog, after_pixels):
    response = upload(make_text_bomb_png(after_pixels=after_pixels), name="crafted.png")
    assert response.status_code == 400
    message = response.json()["photo"][0]
    assert message.startswith("The photo file is damaged and cannot be decoded (Decompressed data too large")


@pytest.mark.django_db
def test_a_one_value_parameter_in_the_form_and_the_query_is_400(small_catalog):
    response = upload(make_photo_bytes(), data={"limit": "2"}, query="?limit=3")
    assert response.status_code == 400 and response.json()["limit"][0].startswith("`limit` was given 2 times")
    # Filters add up wherever they come from.
    response = upload(make_photo_bytes(), data={"colour": "Red"}, query="?colour=Blue")
    assert [result["sku"] for result in response.json()["results"]] == ["N3", "R4", "R5"]


@pytest.mark.django_db
def test_two_photos_are_400(small_catalog):
    photos = [SimpleUploadedFile(f"{n}.jpg", make_photo_bytes(), content_type="image/jpeg") for n in (1, 2)]
    response = APIClient().post(URL, {"photo": photos}, format="multipart")
    assert response.status_code == 400 and response.json()["photo"] == ["Attach one photo; 2 were sent."]


@pytest.mark.django_db
def test_a_missing_photo_or_an_unknown_field_is_400(small_catalog):
    response = APIClient().post(URL, {"colour": "Red"}, format="multipart")
    assert response.status_code == 400 and "multipart field `photo`" in response.json()["photo"][0]
    response = upload(make_photo_bytes(), data={"colr": "Red"})
    assert response.status_code == 400 and "Unknown parameter" in response.json()["colr"][0]
    response = upload(make_photo_bytes(), data={"limit": "500"})
    assert response.status_code == 400 and "limit" in response.json()


@pytest.mark.django_db
def test_no_active_model_is_503(db):
    response = upload(make_photo_bytes())
    assert response.status_code == 503 and "no active model" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_with_a_real_model_a_photo_finds_its_own_product_first(tiny_model_path):
    """The whole path with a real (tiny, untrained) model: encode, rank in pgvector, one row a product."""
    colours = ["navy", "red", "green", "yellow"]
    for colour in colours:
        product_create(
            sku=colour.upper(),
            title=f"{colour} shirt",
            photos=[photo_prepare(io.BytesIO(make_photo_bytes(colour=colour, size=(64, 64))))],
        )
    version = model_version_register_checkpoint(path=tiny_model_path, name="tiny-search")
    model_version_build(version=version)
    model_version_activate(version=version)

    response = upload(make_photo_bytes(colour="red", size=(64, 64)))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["model_version"]["name"] == "tiny-search"
    assert sorted(result["sku"] for result in body["results"]) == sorted(c.upper() for c in colours)
    assert body["results"][0]["sku"] == "RED" and body["results"][0]["score"] == pytest.approx(1.0, abs=1e-2)
