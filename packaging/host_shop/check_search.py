"""Run inside the host project (`DJANGO_SETTINGS_MODULE=shop.settings python check_search.py`) after the
documented steps: the plugin's search answers under the shop's prefix, and a product of the shop's own
model appears in search after a save and leaves it after a delete."""

import os
import sys
from pathlib import Path

import django

django.setup()

from django.core.files import File  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

setup_test_environment()  # the test client's host name, and nothing else

from boutique.models import Garment  # noqa: E402

client = Client()
API = "/product-search/api/v1/search/"


def search(query: str) -> list[dict]:
    response = client.get(API, {"q": query, "limit": 10})
    if response.status_code != 200:
        sys.exit(f"FAIL: {API}?q={query} answered {response.status_code}: {response.content[:300]!r}")
    return response.json()["results"]


def check(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"FAIL: {message}")
    print(f"ok: {message}")


if sys.argv[1:] == ["after-sync"]:
    # Saved with bulk_create (no signals) before `sync_catalog` ran: only the resync brought it over.
    check(
        search("ochre mohair scarf")[0]["sku"] == "BTQ-SCARF-2", "sync_catalog brought over a silent insert"
    )
    print("host-project sync checks passed")
    sys.exit(0)

storefront = client.get("/product-search/")
check(
    storefront.status_code == 200 and b'data-api="/product-search/api/v1/"' in storefront.content,
    "the storefront answers under /product-search/ and calls the API there",
)
sample_hits = search("navy blue shirt")
check(len(sample_hits) > 0, f"the sample catalogue answers 'navy blue shirt' ({len(sample_hits)} results)")

photo = Path(os.environ["HOST_TEST_PHOTO"])
with photo.open("rb") as handle:
    garment = Garment(
        code="BTQ-RAIN-1",
        name="Lavender Quilted Raincoat",
        description="A light quilted raincoat with a hood. Machine wash.",
        colour="Lavender",
        gender="Women",
        kind="Raincoats",
        fabric="recycled nylon",
        price="89.00",
    )
    garment.photo.save(photo.name, File(handle), save=False)
    garment.save()

hits = search("lavender quilted raincoat")
check(
    bool(hits) and hits[0]["sku"] == "BTQ-RAIN-1",
    f"the shop's garment is the first result after its save (got {[hit['sku'] for hit in hits[:3]]})",
)
photo_search = client.post("/product-search/api/v1/search/image/", {"photo": photo.open("rb")})
photo_skus = [hit["sku"] for hit in photo_search.json()["results"]] if photo_search.status_code == 200 else []
check("BTQ-RAIN-1" in photo_skus[:5], f"its photo finds it (top 5: {photo_skus[:5]})")

garment.on_sale = False
garment.save()
check(
    "BTQ-RAIN-1" not in [hit["sku"] for hit in search("lavender quilted raincoat")],
    "taken off sale, it leaves search",
)
garment.on_sale = True
garment.save()
check(search("lavender quilted raincoat")[0]["sku"] == "BTQ-RAIN-1", "back on sale, it is found again")
garment.delete()
check(
    "BTQ-RAIN-1" not in [hit["sku"] for hit in search("lavender quilted raincoat")],
    "deleted, it leaves search",
)
Garment.objects.bulk_create(
    [Garment(code="BTQ-SCARF-2", name="Ochre Mohair Scarf", colour="Ochre", kind="Scarves")]
)
print("host-project search checks passed")
