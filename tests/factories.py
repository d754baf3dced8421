from __future__ import annotations

import factory

from catalog.models import Product
from lifecycle.models import ModelVersion


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    sku = factory.Sequence(lambda n: f"SKU{n:05d}")
    title = factory.Sequence(lambda n: f"Roadster Men Navy Blue Check Shirt {n}")
    brand = "Roadster"
    gender = "Men"
    colour = "Navy Blue"
    master_category = "Apparel"
    sub_category = "Topwear"
    article_type = "Shirts"


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    name = factory.Sequence(lambda n: f"v{n}")
    status = ModelVersion.Status.READY
    embedding_dim = 64
