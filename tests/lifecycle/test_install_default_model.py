import io
from io import StringIO

import pytest
from django.core.management import call_command

from catalog.photos import photo_prepare
from catalog.services import product_create
from lifecycle.model_versions import (
    model_version_activate,
    model_version_build,
    model_version_register_checkpoint,
)
from lifecycle.models import ModelVersion, ProductEmbedding
from mlcore.default_model import DEFAULT_MODEL_PATH
from mlcore.inference import Encoder
from tests.conftest import make_photo_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def _install() -> str:
    out = StringIO()
    call_command("install_default_model", "--no-progress", stdout=out)
    return out.getvalue()


def test_installs_embeds_and_activates_the_shipped_model_once():
    product_create(sku="D1", title="Navy Check Shirt", photos=[photo_prepare(io.BytesIO(make_photo_bytes()))])

    assert "is the active model" in _install()
    version = ModelVersion.objects.get(status="active")
    assert version.name.startswith("default-")
    assert version.embedding_dim == Encoder.load(DEFAULT_MODEL_PATH).dim  # joint space + category block
    assert ProductEmbedding.objects.filter(model_version=version).count() == 2

    _install()  # again: nothing new
    assert ModelVersion.objects.count() == 1 and ProductEmbedding.objects.count() == 2


def test_a_model_the_shop_trained_stays_active(tiny_model_path):
    product_create(sku="D2", title="Red Kurta", photos=[photo_prepare(io.BytesIO(make_photo_bytes()))])
    own = model_version_register_checkpoint(path=tiny_model_path, name="retrain-20260101-000000")
    model_version_build(version=own)
    model_version_activate(version=own)

    assert "(kept)" in _install()
    assert ModelVersion.objects.get(status="active").pk == own.pk
