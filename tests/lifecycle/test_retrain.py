"""`manage.py retrain` and the model lifecycle commands, on the sample catalogue with a small model."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from catalog.importing import catalog_import
from lifecycle.model_versions import model_version_claim, model_version_create, model_version_reap_abandoned
from lifecycle.models import ModelVersion, PhotoFeatures, ProductEmbedding
from lifecycle.retraining import RetrainOptions, retrain_prepare
from lifecycle.tasks import retrain_model
from tests.lifecycle.conftest import ROOT, child_environment, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

SAMPLE = ROOT / "catalog" / "sample_catalog" / "catalog.jsonl"


PRODUCTS = 64
SAMPLE_SKUS = [json.loads(line)["sku"] for line in SAMPLE.read_text().splitlines()[:PRODUCTS]]


@pytest.fixture
def sample_catalogue_with_tiny_model(active_tiny_version, tmp_path, settings):
    """The first 64 sample products (16 look-alike groups), embedded by the active tiny model."""
    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()[:PRODUCTS]]
    for row in rows:
        row["image"] = str(SAMPLE.parent / row["image"])
    subset = tmp_path / "catalog.jsonl"
    subset.write_text("\n".join(json.dumps(row) for row in rows))
    catalog_import(path=subset)
    call_command("embed", "--pending", "--no-progress")
    settings.PRODUCT_SEARCH_MODEL_DIR = str(tmp_path / "models")
    settings.PRODUCT_SEARCH_VALIDATION_SHARE = 0.25
    return active_tiny_version


def _output(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_retrain_trains_measures_embeds_and_switches_over(sample_catalogue_with_tiny_model):
    old = sample_catalogue_with_tiny_model
    # The active model's recipe (here with the category term, fed by the products' article_type)
    # is what the new version trains with.
    old.config = {**old.config, "training": {"loss": "cmpm+0.5*category_nce", "batch_size": 16}}
    old.save(update_fields=["config"])
    output = _output("retrain", "--epochs", "2", "--device", "cpu", "--force")

    new = ModelVersion.objects.exclude(pk=old.pk).get()
    assert new.status == ModelVersion.Status.ACTIVE
    assert f"{new.name} activated after" in output and "not activated" not in output
    assert new.config["training"]["loss"] == "cmpm+0.5*category_nce"
    # Search settings were chosen for the new version on the held-out products, through search.
    assert set(new.search_settings) == {"IMAGE_WEIGHT", "DEFAULT_MODE", "SIMILAR_IMAGE_WEIGHT"}
    assert new.search_settings["DEFAULT_MODE"] in {"vector", "hybrid"}
    assert 0.0 <= new.search_settings["IMAGE_WEIGHT"] <= 1.0
    search = new.metrics["search"]
    assert set(search["by_kind"]) == {"title", "attributes", "description"}
    assert search["active_score"] is not None
    assert search["difference_standard_error"] >= 0  # the gate's noise bar (lifecycle/activation.py)
    chosen = f"{new.search_settings['DEFAULT_MODE']} {new.search_settings['IMAGE_WEIGHT']:.1f}"
    assert search["score"] == pytest.approx(search["grid"][chosen], abs=1e-4)
    assert search["grid"][chosen] == max(
        value for key, value in search["grid"].items() if "similar" not in key
    )
    assert new.config["training"]["batch_size"] == 16
    history = json.loads((Path(new.artifact_path) / "metrics.json").read_text())["history"]
    assert history[0]["train_category_nce_t2i"] > 0
    held_out = new.metrics["held_out"]
    assert set(held_out["t2i"]) >= {"R@1", "R@5", "R@10", "medr", "mAP@10"}
    assert new.metrics["active_on_held_out"]["gallery"] == held_out["gallery"]
    assert ProductEmbedding.objects.filter(model_version=new, kind="text").count() == PRODUCTS
    assert (Path(new.artifact_path) / "config.json").exists()
    # The replaced version stays retired with its vectors, for a rollback.
    old.refresh_from_db()
    assert old.status == ModelVersion.Status.RETIRED

    assert "is active again" in _output("activate_model", "--rollback")
    assert ModelVersion.objects.get(status="active").pk == old.pk
    assert "now the active model" in _output("activate_model", str(new.pk))
    status = json.loads(_output("retrain_status", "--json"))
    assert {row["name"]: row["status"] for row in status}[new.name] == "active"


def test_retrain_runs_on_the_stored_photo_features_without_reading_a_photo(
    sample_catalogue_with_tiny_model, _media_root
):
    # Embedding the catalogue kept every photo's trunk features; with the photo files gone, training,
    # measuring and embedding the new version can only have come from them.
    deleted = [path for path in Path(_media_root).rglob("*.jpg") if path.unlink() is None]
    assert len(deleted) == PhotoFeatures.objects.count() > 0

    output = _output("retrain", "--epochs", "1", "--device", "cpu", "--force")

    new = ModelVersion.objects.exclude(pk=sample_catalogue_with_tiny_model.pk).get()
    assert new.status == ModelVersion.Status.ACTIVE, output
    assert ProductEmbedding.objects.filter(model_version=new, kind="image").count() == len(deleted)
    assert new.metrics["held_out"]["gallery"] > 0


def test_retrain_first_drops_the_features_of_photos_no_product_holds(sample_catalogue_with_tiny_model):
    orphan = PhotoFeatures.objects.order_by("pk").first()
    PhotoFeatures.objects.create(trunk=orphan.trunk, content_sha256="f" * 64, features=orphan.features)
    kept = PhotoFeatures.objects.count() - 1

    output = _output("retrain", "--epochs", "1", "--device", "cpu", "--force")

    assert "Dropped the stored features of 1 photos" in output
    assert PhotoFeatures.objects.count() == kept
    assert not PhotoFeatures.objects.filter(content_sha256="f" * 64).exists()


@pytest.mark.parametrize(("start", "said"), [("active", "fine-tuning the active"), ("scratch", "new heads")])
def test_retrain_fine_tunes_the_active_model_unless_told_to_start_afresh(
    sample_catalogue_with_tiny_model, start, said
):
    output = _output("retrain", "--epochs", "1", "--device", "cpu", "--force", "--start", start)

    assert f"({said}" in output
    new = ModelVersion.objects.exclude(pk=sample_catalogue_with_tiny_model.pk).get()
    assert new.status == ModelVersion.Status.ACTIVE


def test_a_fresh_retrain_trains_its_heads_on_the_active_models_image_trunk(
    sample_catalogue_with_tiny_model, tmp_path, _media_root
):
    # An active model whose trunk is not the pretrained one (as one fine-tuned on fashion photos would
    # be): the new heads must sit on that trunk, whose features of the shop's photos are the ones kept.
    import torch

    from lifecycle.model_versions import (
        model_version_activate,
        model_version_build,
        model_version_register_checkpoint,
    )
    from mlcore.checkpoint import load_checkpoint, save_checkpoint

    tuned = load_checkpoint(sample_catalogue_with_tiny_model.artifact_path)
    with torch.no_grad():
        tuned.image_tower.trunk._conv_stem.weight.mul_(0.5)
    save_checkpoint(tuned, tmp_path / "tuned-trunk", name="tuned-trunk")
    active = model_version_register_checkpoint(path=tmp_path / "tuned-trunk", name="tuned-trunk")
    model_version_build(version=active)
    model_version_activate(version=active)
    # Only the kept features of the active trunk can train the new version now.
    assert [path for path in Path(_media_root).rglob("*.jpg") if path.unlink() is None]

    output = _output("retrain", "--epochs", "1", "--device", "cpu", "--force", "--start", "scratch")

    new = ModelVersion.objects.get(status=ModelVersion.Status.ACTIVE)
    assert new.pk != active.pk, output
    stem = load_checkpoint(new.artifact_path).image_tower.trunk._conv_stem.weight
    assert torch.equal(stem, load_checkpoint(active.artifact_path).image_tower.trunk._conv_stem.weight)


def test_retrain_that_is_not_better_stays_ready(sample_catalogue_with_tiny_model, settings):
    settings.PRODUCT_SEARCH_ACTIVATION_MARGIN = 10_000  # nothing beats the active model by that much
    output = _output("retrain", "--epochs", "1", "--device", "cpu")
    new = ModelVersion.objects.exclude(pk=sample_catalogue_with_tiny_model.pk).get()
    assert new.status == ModelVersion.Status.READY
    assert "not better than the active model" in output and f"{new.name} not activated after" in output
    assert ModelVersion.objects.get(status="active").pk == sample_catalogue_with_tiny_model.pk


def test_a_crashing_retrain_is_marked_failed_and_the_active_model_serves(
    sample_catalogue_with_tiny_model, tmp_path
):
    in_the_way = tmp_path / "models-is-a-file"
    in_the_way.write_text("")
    with (
        override_settings(PRODUCT_SEARCH_MODEL_DIR=str(in_the_way)),
        pytest.raises(CommandError, match="marked failed"),
    ):
        call_command("retrain", "--epochs", "1", "--device", "cpu", stdout=StringIO())

    failed = ModelVersion.objects.get(status=ModelVersion.Status.FAILED)
    assert "FileExistsError" in failed.error or "NotADirectoryError" in failed.error
    assert ModelVersion.objects.get(status="active").pk == sample_catalogue_with_tiny_model.pk


def test_a_killed_retrain_is_marked_failed_and_the_active_model_serves(
    sample_catalogue_with_tiny_model, _media_root, tmp_path
):
    env = child_environment(
        _media_root, TEST_MODEL_DIR=str(tmp_path / "models"), TEST_VALIDATION_SHARE="0.25"
    )
    log = (tmp_path / "retrain.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "retrain", "--epochs", "50", "--device", "cpu"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    # Kill it once it has claimed the version (pid recorded) and finished an epoch. Its epochs take a
    # fraction of a second and early stopping can end training within a few, so this does not wait for
    # one stage (a 0.2 s poll could miss every "train" window); a kill while it measures or embeds the
    # products must be reaped the same way.
    try:
        version = wait_until(
            lambda: ModelVersion.objects.filter(
                status__in=["training", "embedding"], progress__pid__isnull=False, progress__epoch__gte=1
            ).first(),
            timeout=120,
            message=f"the retrain to finish an epoch (its output: {log.name})",
        )
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        log.close()

    assert model_version_reap_abandoned() == [version.name]
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED and "killed or crashed" in version.error
    assert ModelVersion.objects.get(status="active").pk == sample_catalogue_with_tiny_model.pk


@pytest.mark.redis
def test_retrain_async_runs_on_the_train_queue(sample_catalogue_with_tiny_model, worker, tmp_path, settings):
    worker.env.update(TEST_MODEL_DIR=settings.PRODUCT_SEARCH_MODEL_DIR, TEST_VALIDATION_SHARE="0.25")
    # A worker that listens to `train` only: a retrain routed anywhere else would never run.
    worker.start(queues="train")
    output = _output("retrain", "--async", "--epochs", "1", "--device", "cpu", "--force")
    assert "Queued retrain of" in output and "on the `train` queue" in output

    new = wait_until(
        lambda: (
            ModelVersion.objects.filter(status="active")
            .exclude(pk=sample_catalogue_with_tiny_model.pk)
            .first()
        ),
        timeout=240,
        interval=1,
        message="the worker's retrain to activate",
    )
    assert new.metrics["held_out"]["gallery"] > 0
    assert new.progress["stage"] == "ready"


def _task_options(**options) -> dict:
    return {**RetrainOptions(**options).to_dict(), "catalog": None}  # as retrain_request_async sends them


def _finished(worker, task_id: str, times: int = 1):
    """Whether the worker has ended this task `times` times, succeeded or raised."""
    ended = re.compile(rf"retrain_model\[{task_id}\] (succeeded|raised)")
    return lambda: len(ended.findall(worker.log())) >= times


@pytest.mark.redis
def test_a_retrain_message_delivered_twice_trains_the_version_once(
    sample_catalogue_with_tiny_model, worker, settings
):
    # Given two worker processes on `train`, and a version to retrain
    worker.env.update(TEST_MODEL_DIR=settings.PRODUCT_SEARCH_MODEL_DIR, TEST_VALIDATION_SHARE="0.25")
    worker.start(queues="train", concurrency=2)
    version = retrain_prepare(options=RetrainOptions())

    # When its message is delivered twice (the same task id, as Redis redelivers an unacknowledged one)
    task_id = str(uuid.uuid4())
    for _ in range(2):
        retrain_model.apply_async(
            args=[version.pk, _task_options(epochs=1, device="cpu", force=True)], task_id=task_id
        )
    wait_until(_finished(worker, task_id, times=2), timeout=240, interval=1, message="both deliveries")

    # Then one delivery claimed and trained it, and the other found it claimed and did nothing
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.ACTIVE
    assert version.claimed_by.endswith(f"(task {task_id})")
    claimer_pid = version.claimed_by.split(" pid ")[1].split(" ")[0]
    assert str(version.progress["pid"]) == claimer_pid  # the process that trained is the one that claimed
    log = worker.log()
    assert log.count(f"Training {version.name} (") == 1, log
    assert log.count(f"leaves it alone: claimed by {version.claimed_by}") == 1, log
    assert "'reason': 'claimed'" in log


@pytest.mark.redis
def test_a_retrain_message_for_a_claimed_version_leaves_it_or_fails_it_when_its_holder_is_gone(
    worker, settings, tmp_path
):
    worker.env.update(TEST_MODEL_DIR=str(tmp_path / "models"))
    worker.start(queues="train")
    # Given (after the worker's start-up reaping) a version claimed by a process that runs (this one)...
    held = model_version_create(name="retrain-held", config={"options": _task_options()})
    assert model_version_claim(version=held, note="another worker")
    held_before = ModelVersion.objects.get(pk=held.pk)
    # ...and one claimed by a process on this host that has ended, as a worker SIGKILLed mid-retrain
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    orphan = model_version_create(name="retrain-orphan", config={"options": _task_options()})
    ModelVersion.objects.filter(pk=orphan.pk).update(
        claimed_by=f"{socket.gethostname()} pid {ended.pid} (task lost)",
        claimed_at=timezone.now(),
        progress={"pid": ended.pid, "host": socket.gethostname(), "stage": "training", "epoch": 1},
    )

    # When a retrain message for each reaches a real worker
    task_ids = {version.name: str(uuid.uuid4()) for version in (held, orphan)}
    for version in (held, orphan):
        retrain_model.apply_async(args=[version.pk, _task_options(epochs=1)], task_id=task_ids[version.name])
    for task_id in task_ids.values():
        wait_until(_finished(worker, task_id), timeout=60, message=f"retrain_model[{task_id}] to finish")

    # Then neither is trained: the held one is untouched, the orphan is failed with the reason
    log = worker.log()
    assert "Training retrain-" not in log and not (tmp_path / "models").exists()
    held_after = ModelVersion.objects.get(pk=held.pk)
    fields = ("status", "claimed_by", "claimed_at", "progress", "updated_at", "artifact_path", "error")
    assert [getattr(held_after, field) for field in fields] == [
        getattr(held_before, field) for field in fields
    ]
    assert f"for model version retrain-held (training) leaves it alone: claimed by {held.claimed_by}" in log
    orphan.refresh_from_db()
    assert orphan.status == ModelVersion.Status.FAILED
    assert f"(pid {ended.pid}) stopped without finishing" in orphan.error
    assert orphan.progress["stage"] == "training" and orphan.progress["epoch"] == 1  # not trained again
    assert "for model version retrain-orphan finds its holder" in log and "not trained again" in log


def test_embed_and_activate_commands_explain_what_to_do():
    with pytest.raises(CommandError, match="no model version to embed them with"):
        call_command("embed", "--pending", "--no-progress")
    with pytest.raises(CommandError, match="No model version 'v9'"):
        call_command("activate_model", "v9")
    with pytest.raises(CommandError, match="No earlier version"):
        call_command("activate_model", "--rollback")


def test_retrain_trains_on_the_texts_receivers_give_for_its_products(sample_catalogue_with_tiny_model):
    from lifecycle.retraining import retrain_items
    from lifecycle.signals import training_texts_requested

    asked: list[list[str]] = []

    def clicked_queries(sender, skus, **kwargs):
        asked.append(skus)
        return {skus[0]: ["summer kurta", "summer kurta"], "NOT-A-TRAINING-SKU": ["never used"]}

    training_texts_requested.connect(clicked_queries, weak=False, dispatch_uid="test-clicked-queries")
    try:
        plain_train, _ = retrain_items(split_file=None)
        train, held_out = retrain_items(split_file=None, learn_from_clicks=True)
    finally:
        training_texts_requested.disconnect(dispatch_uid="test-clicked-queries")

    assert not asked[1:] and [item.product_id for item in train] == asked[0]  # asked once, for train only
    first = train[0]
    assert first.clicked_texts == ("summer kurta",) and first.texts == plain_train[0].texts
    assert [item.clicked_texts for item in train[1:] + held_out] == [()] * (len(train) - 1 + len(held_out))


def test_retrain_keeps_the_active_models_text_layers_unless_told(active_tiny_version):
    from lifecycle.retraining import _training_configs

    active_tiny_version.config = {**active_tiny_version.config, "model": {"text_trainable_layers": 2}}

    kept, _ = _training_configs(active=active_tiny_version, options=RetrainOptions())
    frozen, _ = _training_configs(active=active_tiny_version, options=RetrainOptions(text_trainable_layers=0))

    assert kept.text_trainable_layers == 2
    assert frozen.text_trainable_layers == 0


def test_retrain_training_has_the_settings_time_budget_unless_told(active_tiny_version, settings):
    from lifecycle.retraining import _training_configs

    settings.PRODUCT_SEARCH_RETRAIN_TRAINING_MINUTES = 4
    _, budgeted = _training_configs(active=active_tiny_version, options=RetrainOptions())
    _, told = _training_configs(active=active_tiny_version, options=RetrainOptions(training_minutes=1.5))
    _, unlimited = _training_configs(active=active_tiny_version, options=RetrainOptions(training_minutes=0))
    settings.PRODUCT_SEARCH_RETRAIN_TRAINING_MINUTES = None
    _, unset = _training_configs(active=active_tiny_version, options=RetrainOptions())

    assert (budgeted.time_budget_s, told.time_budget_s, unlimited.time_budget_s, unset.time_budget_s) == (
        240.0,
        90.0,
        0.0,
        0.0,
    )


def test_retrain_chooses_the_category_block_weight_among_the_settings(active_tiny_version, settings):
    from lifecycle.retraining import _training_configs

    _, shipped = _training_configs(active=active_tiny_version, options=RetrainOptions())
    settings.PRODUCT_SEARCH_RETRAIN_CATEGORY_BLOCK_WEIGHTS = [0.25]
    _, told = _training_configs(active=active_tiny_version, options=RetrainOptions())
    settings.PRODUCT_SEARCH_RETRAIN_CATEGORY_BLOCK_WEIGHTS = []
    _, kept = _training_configs(active=active_tiny_version, options=RetrainOptions())

    assert shipped.category_block_weights == [0.05, 0.1, 0.2, 0.3, 0.4]
    assert told.category_block_weights == [0.25]
    assert kept.category_block_weights == []


def test_retrain_trains_on_every_photo_of_a_product_from_their_stored_features(
    sample_catalogue_with_tiny_model, tmp_path, caplog
):
    from PIL import Image, ImageOps

    from catalog.models import Product
    from lifecycle.retraining import retrain_items

    rows = [json.loads(line) for line in SAMPLE.read_text().splitlines()[:PRODUCTS]]
    # Four products get further photos of their own (their main photo mirrored or greyed: new
    # bytes), the first two of them two each.
    for index, row in enumerate(rows[:4]):
        main = SAMPLE.parent / row["image"]
        further = []
        for view, change in enumerate((ImageOps.mirror, ImageOps.grayscale)[: 2 if index < 2 else 1]):
            path = tmp_path / f"{row['sku']}-{view + 2}.jpg"
            change(Image.open(main).convert("RGB")).save(path)
            further.append(str(path))
        row["image"], row["images"] = str(main), further
    (tmp_path / "more.jsonl").write_text("\n".join(json.dumps(row) for row in rows[:4]))
    catalog_import(path=tmp_path / "more.jsonl")
    call_command("embed", "--pending", "--no-progress")
    stored_features = PhotoFeatures.objects.count()

    train, held_out = retrain_items(split_file=None)

    items = {item.product_id: item for item in train + held_out}
    for index, row in enumerate(rows[:4]):
        photos = list(Product.objects.get(sku=row["sku"]).images.order_by("position"))
        item = items[row["sku"]]
        assert item.image_key == photos[0].content_sha256
        assert item.further_image_keys == tuple(photo.content_sha256 for photo in photos[1:])
        assert len(item.further_images) == (2 if index < 2 else 1)
    assert sum(bool(item.further_images) for item in items.values()) == 4
    further = sum(len(item.further_images) for item in train)
    assert further > 0

    with caplog.at_level("INFO", logger="mlcore_train.feature_cache"):
        _output("retrain", "--epochs", "1", "--device", "cpu", "--force")

    # Embedding kept every photo's trunk features, further ones included: training read the training
    # products' main and further photos from them and computed none.
    assert f": {len(train) + further} photos stored, 0 to compute" in caplog.text
    assert PhotoFeatures.objects.count() == stored_features


def test_retrain_texts_name_the_colour_read_from_the_photo_where_the_shop_wrote_none(
    sample_catalogue_with_tiny_model, tmp_path
):
    from PIL import Image, ImageDraw

    from catalog.models import ProductImage
    from lifecycle.retraining import retrain_items

    shot = Image.new("RGB", (180, 240), (255, 255, 255))
    ImageDraw.Draw(shot).rectangle((50, 60, 130, 220), fill=(200, 30, 40))
    shot.save(tmp_path / "red.jpg")
    rows = [
        {"sku": "NO-COLOUR", "title": "Festive Kurta", "gender": "Women", "article_type": "Kurtas"},
        {
            "sku": "BLACK",
            "title": "Evening Kurta",
            "gender": "Women",
            "article_type": "Kurtas",
            "colour": "Black",
        },
    ]
    (tmp_path / "red.jsonl").write_text("\n".join(json.dumps({**row, "image": "red.jpg"}) for row in rows))
    catalog_import(path=tmp_path / "red.jsonl")
    call_command("embed", "--pending", "--no-progress")

    colours = dict(
        ProductImage.objects.filter(product__sku__in=["NO-COLOUR", "BLACK"]).values_list(
            "product__sku", "garment_colour"
        )
    )
    train, held_out = retrain_items(split_file=None)
    texts = {item.product_id: item.texts for item in train + held_out}

    assert colours == {"NO-COLOUR": "Red", "BLACK": "Red"}
    assert "Women Red Kurtas" in texts["NO-COLOUR"]
    assert "Women Black Kurtas" in texts["BLACK"] and not any("Red" in text for text in texts["BLACK"])


def test_retrain_reads_the_colour_of_photos_embedded_before_colours_were_read(
    sample_catalogue_with_tiny_model,
):
    from catalog.models import Product, ProductImage
    from catalog.product_text import product_attribute_phrase
    from lifecycle.retraining import retrain_items

    Product.objects.filter(sku__in=SAMPLE_SKUS[:3]).update(colour="")
    ProductImage.objects.update(garment_colour="")

    train, held_out = retrain_items(split_file=None)

    recorded = dict(
        ProductImage.objects.exclude(garment_colour="").values_list("product__sku", "garment_colour")
    )
    assert sorted(recorded) == sorted(SAMPLE_SKUS[:3])  # only where the shop wrote no colour
    items = {item.product_id: item for item in train + held_out}
    for product in Product.objects.filter(sku__in=recorded):
        phrase = product_attribute_phrase(
            gender=product.gender,
            colour=recorded[product.sku],
            article_type=product.article_type,
            attributes=product.attributes,
        )
        assert recorded[product.sku] in phrase
        assert phrase in items[product.sku].texts


def test_retrain_text_variant_share_comes_from_the_settings_unless_told(active_tiny_version, settings):
    from lifecycle.retraining import _training_configs

    active_tiny_version.config = {**active_tiny_version.config, "training": {"text_variant_share": 0.1}}
    settings.PRODUCT_SEARCH_RETRAIN_TEXT_VARIANT_SHARE = None
    _, recipe = _training_configs(active=active_tiny_version, options=RetrainOptions())
    settings.PRODUCT_SEARCH_RETRAIN_TEXT_VARIANT_SHARE = 0.3
    _, configured = _training_configs(active=active_tiny_version, options=RetrainOptions())
    _, told = _training_configs(active=active_tiny_version, options=RetrainOptions(text_variant_share=0.0))

    assert (recipe.text_variant_share, configured.text_variant_share, told.text_variant_share) == (
        0.1,
        0.3,
        0.0,
    )
