"""Search fixtures: an active model version whose vectors the test chooses, so rankings are exact."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from django.core.cache import cache
from django.db import connection

from catalog.models import Product, ProductImage
from lifecycle.models import ModelVersion, ProductEmbedding
from lifecycle.vector_indexes import vector_index_create
from tests.factories import ModelVersionFactory, ProductFactory

DIM = 8


def unit(*components: float) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(components)] = components
    return vector / np.linalg.norm(vector)


def basis(index: int) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[index] = 1
    return vector


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    settings.PRODUCT_SEARCH_THROTTLE_ANON_RATE = None
    cache.clear()


@pytest.fixture(autouse=True)
def _no_cached_rules_or_suggestions():
    """Each process keeps the merchandising rules and the suggestion vocabulary for a few seconds; a
    test's rolled-back rows must not outlive it there."""
    from search.merchandising import merchandising_rules_forget
    from search.suggestions import suggestion_vocabulary_forget

    merchandising_rules_forget()
    suggestion_vocabulary_forget()
    yield
    merchandising_rules_forget()
    suggestion_vocabulary_forget()


def index_build(version: ModelVersion) -> None:
    """The version's HNSW indexes, as model_version_build leaves them (checks first run deferred FKs)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    vector_index_create(version=version)


def add_product(
    version: ModelVersion,
    *,
    sku: str,
    image: np.ndarray | list[np.ndarray] | None,
    text: np.ndarray,
    **fields,
) -> Product:
    """A product with one photo row per image vector (no file needed) and its stored vectors."""
    product = ProductFactory(sku=sku, **fields)
    images = [] if image is None else (image if isinstance(image, list) else [image])
    for position, vector in enumerate(images):
        photo = ProductImage.objects.create(
            product=product,
            image=f"products/{sku}-{position}.jpg",
            position=position,
            width=1,
            height=1,
            content_sha256="0" * 64,
        )
        ProductEmbedding.objects.create(
            model_version=version, product=product, image=photo, kind="image", embedding=vector
        )
    ProductEmbedding.objects.create(model_version=version, product=product, kind="text", embedding=text)
    return product


@dataclass
class QueryVector:
    """What the mocked encoder returns for the next query."""

    vector: np.ndarray


@pytest.fixture
def query_vector(monkeypatch) -> QueryVector:
    chosen = QueryVector(basis(0))
    monkeypatch.setattr("search.selectors.query_encode_text", lambda *, version, text: chosen.vector)
    monkeypatch.setattr("search.selectors.query_encode_photo", lambda *, version, photo: chosen.vector)
    return chosen


@pytest.fixture
def active_version(db) -> ModelVersion:
    return ModelVersionFactory(status=ModelVersion.Status.ACTIVE, embedding_dim=DIM, name="chosen-vectors")


@pytest.fixture
def small_catalog(active_version, query_vector, settings):
    """Five products whose fused scores for the query e0 (photo weight 0.6) are known exactly:

    N1 1.0 (photo e0, text e0) > N2 0.6*0.707 (photo e0+e1) > N3 0.4*0.707 (text e0+e1) > R4 = R5 0.
    """
    settings.PRODUCT_SEARCH_IMAGE_WEIGHT = 0.6
    settings.PRODUCT_SEARCH_SIMILAR_IMAGE_WEIGHT = 0.6
    products = {
        "N1": add_product(
            active_version, sku="N1", image=basis(0), text=basis(0), price=500, colour="Navy Blue"
        ),
        "N2": add_product(
            active_version, sku="N2", image=unit(1, 1), text=basis(1), price=1500, colour="Navy Blue"
        ),
        "N3": add_product(
            active_version,
            sku="N3",
            image=basis(1),
            text=unit(1, 1),
            price=900,
            colour="Blue",
            gender="Women",
            article_type="Tops",
            brand="Mango",
        ),
        "R4": add_product(
            active_version,
            sku="R4",
            image=basis(2),
            text=basis(2),
            price=300,
            colour="Red",
            gender="Women",
            article_type="Tops",
            brand="Mango",
        ),
        "R5": add_product(active_version, sku="R5", image=basis(3), text=basis(3), price=None, colour="Red"),
    }
    index_build(active_version)
    return products
