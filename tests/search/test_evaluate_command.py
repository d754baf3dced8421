"""`manage.py evaluate`: a model or the search, by query kind, on a catalogue split."""

import json
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from catalog.importing import catalog_import
from lifecycle.model_versions import (
    model_version_activate,
    model_version_build,
    model_version_register_checkpoint,
)
from mlcore.data import load_catalog
from mlcore.inference import Encoder
from tests.mlcore.conftest import synthetic_catalog  # noqa: F401


def _report(*args) -> dict:
    out = StringIO()
    call_command("evaluate", *args, "--json", stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_attribute_queries_through_the_model_rank_the_splits_photos(synthetic_catalog, tiny_model_path):  # noqa: F811
    catalog, splits = synthetic_catalog
    report = _report(
        "--catalog", catalog, "--split-file", splits, "--split", "val", "--model", str(tiny_model_path),
        "--query-kind", "attributes",
    )  # fmt: skip

    # 8 colours x 2 types: one query per (gender, colour, type), one relevant product each.
    assert (report["kind"], report["queries"], report["gallery"]) == ("attributes", 16, 16)
    items = load_catalog(catalog, splits, "val")
    encoder = Encoder.load(tiny_model_path, device="cpu")
    photos = encoder.encode_images([item.image for item in items])
    hits = 0
    for item in items:
        query = encoder.encode_texts([f"Men {item.colour} {item.article_type}"])[0]
        top = np.argsort(-(photos @ query), kind="stable")[:10]
        hits += item in [items[index] for index in top]
    assert report["R@10"] == pytest.approx(hits / 16)


@pytest.mark.django_db(transaction=True)
def test_title_queries_through_search_use_the_active_versions_mode(synthetic_catalog, tiny_model_path):  # noqa: F811
    catalog, splits = synthetic_catalog
    catalog_import(path=catalog)
    version = model_version_register_checkpoint(path=tiny_model_path, name="tiny-eval")
    model_version_build(version=version)
    model_version_activate(version=version)
    version.search_settings = {"DEFAULT_MODE": "hybrid"}
    version.save(update_fields=["search_settings"])

    report = _report("--catalog", catalog, "--split-file", splits, "--split", "test", "--through", "search")

    assert (report["mode"], report["model_version"], report["queries"], report["gallery"]) == (
        "hybrid", "tiny-eval", 16, 16,
    )  # fmt: skip
    # Every title names its own product word for word: hybrid search's full text finds each first.
    assert report["R@1"] == 1.0


def test_through_search_measures_the_active_version_only(synthetic_catalog):  # noqa: F811
    catalog, splits = synthetic_catalog
    with pytest.raises(CommandError, match="leave --model out"):
        call_command(
            "evaluate", "--catalog", catalog, "--split-file", splits, "--through", "search", "--model", "x"
        )
