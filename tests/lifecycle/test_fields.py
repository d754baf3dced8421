"""The halfvec column: vectors written through the lookup table read back as pgvector would store them."""

import numpy as np
import pytest
from pgvector import HalfVector

from catalog.services import product_create
from lifecycle.fields import halfvec_literal
from lifecycle.models import ModelVersion, ProductEmbedding


def test_literal_is_what_pgvector_writes():
    vectors = np.random.default_rng(0).normal(size=(50, 131)).astype(np.float32)
    vectors[0, :4] = [0.0, -0.0, 1e-8, 65504.0]  # zero, negative zero, below half's range, its largest
    for vector in vectors:
        assert halfvec_literal(vector) == HalfVector._to_db(vector)


@pytest.mark.django_db
def test_vector_round_trips_through_the_database():
    product = product_create(sku="V1", title="Blue Shirt")
    version = ModelVersion.objects.create(name="fields", embedding_dim=3)
    vector = np.array([0.1, -0.25, 0.333333], dtype=np.float32)
    row = ProductEmbedding.objects.create(
        model_version=version, product=product, kind="text", embedding=vector
    )
    stored = ProductEmbedding.objects.get(pk=row.pk).embedding
    assert np.array_equal(np.asarray(stored, dtype=np.float16), vector.astype(np.float16))
    # Values that are not a NumPy vector still take pgvector's own path.
    ProductEmbedding.objects.filter(pk=row.pk).update(embedding=[1.0, 2.0, 3.0])
    assert ProductEmbedding.objects.get(pk=row.pk).embedding == [1.0, 2.0, 3.0]
