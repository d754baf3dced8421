"""Retraining on the shop's own catalogue: train, measure, embed, and switch over if better.

The active model serves throughout: the new version is trained and embedded beside it, and
activation is the atomic switch in model_version_activate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.utils import timezone

from catalog.models import Product, ProductImage
from catalog.photos import photo_open
from catalog.product_text import product_text_variants
from catalog.selectors import (
    product_further_photos,
    product_primary_photo_name,
    product_primary_photo_value,
)
from catalog.services import product_photo_colours_record
from lifecycle.activation import activation_decide, activation_noise, activation_scores
from lifecycle.conf import lifecycle_settings
from lifecycle.model_versions import (
    ModelVersionClaimed,
    ModelVersionError,
    model_directory,
    model_version_activate,
    model_version_build,
    model_version_claim,
    model_version_create,
    model_version_fail,
    model_version_prune,
    model_version_set_progress,
)
from lifecycle.models import ModelVersion
from lifecycle.photo_features import DatabaseFeatureStore, photo_features_prune, text_features_prune
from lifecycle.selectors import model_version_get_active
from lifecycle.signals import search_tuning_requested, training_texts_requested
from mlcore.splits import split_skus

logger = logging.getLogger(__name__)


RETRAIN_STARTS = ("active", "scratch")


@dataclass
class RetrainOptions:
    # A catalogue to import first (JSONL/CSV); None trains on the products already in the database.
    catalog: str | None = None
    # splits.json: its `train` products train and its `val` products measure; None holds out a
    # hash-chosen share (PRODUCT_SEARCH_VALIDATION_SHARE) of the products.
    split_file: str | None = None
    # mlcore training mode: "cpu-fast" (frozen trunk prefix, cached) or "full" (GPU).
    mode: str = "cpu-fast"
    # Upper bound on epochs (None: mlcore's default); early stopping on the held-out products.
    epochs: int | None = None
    # Minutes the training may take (None: PRODUCT_SEARCH_RETRAIN_TRAINING_MINUTES; 0: no limit).
    training_minutes: float | None = None
    device: str = "auto"
    # Switch search over when the new model is better; False leaves it `ready`.
    activate: bool = True
    # Switch over even if it is not better.
    force: bool = False
    # "scratch": train new heads with the active model's recipe on its image trunk (whose features of
    # the shop's photos are kept), the text tower from its pretrained weights;
    # "active": fine-tune the active model. Chosen on IndoFashion val (mlcore_train, 8 epochs):
    # fine-tuning the Myntra-trained default reached a lower score and type_p@10 than new heads.
    start: str = "scratch"
    # Train on the queries shoppers clicked a product from too (search analytics, above a minimum
    # count). Off by default: on Luma (bench/click_learning.py) it lifted photo retrieval for those
    # queries and others but lowered text-vector and hybrid search.
    learn_from_clicks: bool = False
    # MiniLM layers trained with new heads (None: the active model's recipe). 0 freezes the text tower:
    # each product text's pooled features are kept (lifecycle.TextFeatures), so training and every later
    # re-embedding run the projection heads alone, at some cost in quality (docs/mlcore.md).
    text_trainable_layers: int | None = None
    # Share of the training pairs that pair a photo with another text of its product (attribute phrase,
    # product text, description sentence) instead of its title (None: PRODUCT_SEARCH_RETRAIN_TEXT_
    # VARIANT_SHARE). Where the shop wrote no colour, the phrase takes the colour read from the photo.
    text_variant_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RetrainOptions:
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclass
class RetrainOutcome:
    version: ModelVersion
    activated: bool
    reason: str


def _is_held_out(sku: str, share: float) -> bool:
    digest = hashlib.sha256(sku.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < share


def retrain_extra_texts(*, skus: list[str]) -> dict[str, list[str]]:
    """Texts that name these products beyond their own (training_texts_requested's receivers: the
    queries shoppers clicked them from), by sku."""
    extra: dict[str, list[str]] = {}
    for _receiver, answer in training_texts_requested.send(sender=RetrainOptions, skus=skus):
        texts = cast(dict[str, list[str]], answer or {})  # the signal's stubs type answers as str
        for sku, more in texts.items():
            known = extra.setdefault(sku, [])
            known += [text for text in dict.fromkeys(more) if text not in known]
    return extra


def retrain_items(
    *, split_file: str | None, learn_from_clicks: bool = False, read_missing_colours: bool = True
) -> tuple[list, list]:
    """(train, held-out) mlcore CatalogItems from the active products that have a photo; with
    `learn_from_clicks`, the train items also carry the queries shoppers clicked them from. With
    `read_missing_colours`, a product without a colour whose photo has none recorded yet gets it read."""
    from mlcore.data import CatalogItem

    photographed = (
        Product.objects.filter(is_active=True)
        .annotate(
            photo=product_primary_photo_name(),
            photo_sha256=product_primary_photo_value("content_sha256"),
            photo_colour=product_primary_photo_value("garment_colour"),
            photo_id=product_primary_photo_value("pk"),
        )
        .exclude(photo=None)
        .order_by("sku")
    )
    media_root = Path(settings.MEDIA_ROOT)
    products = list(photographed)
    further = product_further_photos(products=photographed)
    if read_missing_colours:
        _garment_colours_backfill([product for product in products if not product.colour.strip()])
    items = {
        product.sku: CatalogItem(
            product_id=product.sku,
            title=product.title,
            image=str(media_root / product.photo),
            article_type=product.article_type,
            colour=product.colour,
            gender=product.gender,
            brand=product.brand,
            image_key=product.photo_sha256,
            further_images=tuple(str(media_root / name) for name, _ in further.get(product.sku, ())),
            further_image_keys=tuple(key for _, key in further.get(product.sku, ())),
            texts=product_text_variants(product, photo_colour=product.photo_colour or ""),
        )
        for product in products
    }
    if split_file:
        try:
            train_skus = split_skus(split_file=split_file, split="train")
            held_out_skus = split_skus(split_file=split_file, split="val")
        except ValueError as error:
            raise ModelVersionError(f"{split_file} needs `train` and `val` lists of skus: {error}") from error
        train = [item for sku, item in items.items() if sku in train_skus]
        held_out = [item for sku, item in items.items() if sku in held_out_skus]
    else:
        share = lifecycle_settings.VALIDATION_SHARE
        train = [item for sku, item in items.items() if not _is_held_out(sku, share)]
        held_out = [item for sku, item in items.items() if _is_held_out(sku, share)]
    if learn_from_clicks:
        extra = retrain_extra_texts(skus=[item.product_id for item in train])
        train = [
            dataclasses.replace(
                item,
                clicked_texts=tuple(text for text in extra[item.product_id] if text not in item.texts),
            )
            if item.product_id in extra
            else item
            for item in train
        ]
    if len(train) < 16 or len(held_out) < 8:
        raise ModelVersionError(
            f"Too few products with photos to retrain: {len(train)} to train on and {len(held_out)} held "
            "out (at least 16 and 8). Import a catalogue first (`manage.py import_catalog`)."
        )
    return train, held_out


def _garment_colours_backfill(products: list[Any]) -> None:
    """Read the garment colour of these products' main photos where none is recorded (photos embedded
    before colours were read are never opened again) and record it, setting `photo_colour` on each."""
    from mlcore.photo_colour import read_garment_colour

    unread = {product.photo_id: product for product in products if not product.photo_colour}
    if not unread:
        return
    colours = {}
    for photo in ProductImage.objects.filter(pk__in=unread):
        try:
            colours[photo.pk] = read_garment_colour(photo_open(photo)).name
        except Exception as error:  # noqa: BLE001 - a photo that cannot be read gives no colour
            logger.warning("No garment colour read from photo %s: %s", photo.pk, error)
            continue
        unread[photo.pk].photo_colour = colours[photo.pk]
    product_photo_colours_record(colours=colours)
    logger.info("Read the garment colour of %d photos of products without a colour", len(colours))


def retrain_prepare(*, options: RetrainOptions) -> ModelVersion:
    """Import the catalogue if one is given, and create the version (status training)."""
    if options.catalog:
        from catalog.importing import catalog_import

        report = catalog_import(path=Path(options.catalog))
        logger.info(
            "Imported %d products (%d rejected) before retraining", report.imported, len(report.rejections)
        )
    name = f"retrain-{timezone.now():%Y%m%d-%H%M%S}"
    return model_version_create(name=name, config={"options": options.to_dict()})


def _recall_at_1(report: dict) -> str:
    return f"{report['t2i']['R@1']:.1f} / {report['i2t']['R@1']:.1f}"


def _training_configs(*, active: ModelVersion | None, options: RetrainOptions) -> tuple[Any, Any]:
    """The active model's architecture and recipe (loss, batch size, schedule), with this run's mode
    and device: a shop retrains the model it runs, not mlcore's bare defaults."""
    from mlcore.config import ModelConfig, TrainingConfig

    active_config = active.config if active is not None else {}
    active_model = active_config.get("model")
    model_config = ModelConfig.from_dict(active_model) if active_model else ModelConfig()
    recipe = dict(active_config.get("training") or {})
    recipe.update(mode=options.mode, device=options.device, feature_cache_dir=None, num_threads=None)
    training_config = TrainingConfig.from_dict(recipe)
    if options.epochs:
        training_config.epochs = options.epochs
    minutes = (
        options.training_minutes
        if options.training_minutes is not None
        else lifecycle_settings.RETRAIN_TRAINING_MINUTES
    )
    training_config.time_budget_s = 60.0 * (minutes or 0.0)
    training_config.category_block_weights = list(lifecycle_settings.RETRAIN_CATEGORY_BLOCK_WEIGHTS)
    if options.text_trainable_layers is not None:
        model_config.text_trainable_layers = options.text_trainable_layers
    variant_share = (
        options.text_variant_share
        if options.text_variant_share is not None
        else lifecycle_settings.RETRAIN_TEXT_VARIANT_SHARE
    )
    if variant_share is not None:
        training_config.text_variant_share = float(variant_share)
    return model_config, training_config


def _train(
    *,
    version: ModelVersion,
    active: ModelVersion | None,
    options: RetrainOptions,
    train_items: list,
    held_out: list,
    log: Callable[[str], None],
    show_progress: bool,
) -> Any:
    from mlcore_train.trainer import train

    model_config, training_config = _training_configs(active=active, options=options)
    if options.start not in RETRAIN_STARTS:
        raise ValueError(f"unknown retrain start {options.start!r}; choose one of {RETRAIN_STARTS}")
    model = None
    if options.start == "active" and active is not None:
        from mlcore_train.warm_start import model_to_fine_tune

        model = model_to_fine_tune(active.artifact_path, train_items)
        model_config = model.config
    elif active is not None:
        from mlcore_train.warm_start import new_heads_on_trunk

        model = new_heads_on_trunk(active.artifact_path, model_config, train_items)
    output = model_directory() / version.name
    start = f"fine-tuning the active {active.name}" if options.start == "active" and active else "new heads"
    log(
        f"Training {version.name} ({start}) on {len(train_items)} products, {len(held_out)} held out "
        f"-> {output}"
    )
    model_version_set_progress(
        version=version, stage="training", train=len(train_items), held_out=len(held_out)
    )

    def on_training(stage: str, epoch: int, total: int, metrics: dict) -> None:
        model_version_set_progress(version=version, stage=stage, epoch=epoch, epochs=total, metrics=metrics)
        if stage == "validate":
            log(f"  epoch {epoch}/{total}: {json.dumps({k: round(v, 2) for k, v in metrics.items()})}")

    return train(
        train_items,
        held_out,
        output,
        model_config=model_config,
        training_config=training_config,
        model=model,
        progress_callback=on_training,
        show_progress=show_progress,
        feature_store=DatabaseFeatureStore(),
    )


def _measure(
    *, version: ModelVersion, active: ModelVersion | None, result: Any, held_out: list, device: str
) -> tuple[dict, dict | None]:
    """Both models on the same held-out products; the new one's files and figures go on its version."""
    from lifecycle.encoders import encoder_for_version
    from mlcore.checkpoint import retrieval_dim_of
    from mlcore.evaluation import evaluate

    model_version_set_progress(version=version, stage="measuring")
    store = DatabaseFeatureStore()
    new_report = evaluate(str(result.output_dir), held_out, device=device, feature_store=store)
    active_report = (
        evaluate(encoder_for_version(active), held_out, feature_store=store) if active is not None else None
    )
    payload = json.loads((Path(result.output_dir) / "config.json").read_text())
    version.artifact_path = str(Path(result.output_dir).resolve())
    version.embedding_dim = retrieval_dim_of(payload)
    version.config = {**version.config, **payload}
    version.metrics = {
        "held_out": new_report,
        "active_on_held_out": active_report,
        "active_version": active.name if active else None,
        "best_epoch": result.best_epoch,
        "training_seconds": round(result.wall_time_s, 1),
    }
    version.save(update_fields=["artifact_path", "embedding_dim", "config", "metrics", "updated_at"])
    return new_report, active_report


def _tune_search(
    *, version: ModelVersion, active: ModelVersion | None, held_out: list, log: Callable[[str], None]
) -> dict | None:
    """Search settings for the new version, chosen on the held-out products by whoever serves search
    (the search app, through `search_tuning_requested`), kept on the version; None without a listener."""
    model_version_set_progress(version=version, stage="tuning search")
    skus = [item.product_id for item in held_out]
    product_ids = list(Product.objects.filter(sku__in=skus).values_list("pk", flat=True))
    responses = search_tuning_requested.send(
        sender=ModelVersion, version=version, active=active, product_ids=product_ids
    )
    report = cast(dict | None, next((response for _, response in responses if response), None))
    model_version_set_progress(version=version, stage="ready")
    if report is None:
        return None
    version.search_settings = report["settings"]
    version.metrics = {**version.metrics, "search": report}
    version.save(update_fields=["search_settings", "metrics", "updated_at"])
    log(f"Search settings chosen on the held-out products: {report['settings']}")
    if report.get("active_score") is not None:
        scores = f"new {report['score']:.3f}, active {report['active_score']:.3f}"
        log(f"Search mAP@10 on the shop's queries: {scores}")
    return report


def retrain_run(
    *,
    version: ModelVersion,
    options: RetrainOptions,
    log: Callable[[str], None] = logger.info,
    show_progress: bool = False,
    claim_note: str = "",
) -> RetrainOutcome:
    """Train, measure against the active model on the same held-out products, embed, maybe activate.

    It first claims the version (model_version_claim, with `claim_note` beside this host and pid):
    ModelVersionClaimed, with the version untouched, when another process claimed it first or it is
    no longer `training`. After that any failure marks the version failed with the error and
    re-raises; the active model is untouched.
    """
    if not model_version_claim(version=version, note=claim_note):
        version.refresh_from_db()
        raise ModelVersionClaimed(version)
    try:
        # Features of photos no product holds any more (replaced, deleted) are never read again.
        dropped_features = photo_features_prune()
        if dropped_features:
            log(f"Dropped the stored features of {dropped_features} photos no product holds any more.")
        dropped_texts = text_features_prune()
        if dropped_texts:
            log(f"Dropped the stored features of {dropped_texts} texts no product has any more.")
        active = model_version_get_active()
        _, training_config = _training_configs(active=active, options=options)
        # The colours are only read into texts a retrain trains on besides titles.
        train_items, held_out = retrain_items(
            split_file=options.split_file,
            learn_from_clicks=options.learn_from_clicks,
            read_missing_colours=training_config.text_variant_share > 0,
        )
        result = _train(
            version=version,
            active=active,
            options=options,
            train_items=train_items,
            held_out=held_out,
            log=log,
            show_progress=show_progress,
        )
        new_report, active_report = _measure(
            version=version, active=active, result=result, held_out=held_out, device=options.device
        )
        log(f"Held-out R@1 (t2i / i2t): new {_recall_at_1(new_report)}")
        if active is not None and active_report is not None:
            log(f"Held-out R@1 (t2i / i2t): active {active.name} {_recall_at_1(active_report)}")
        log("Embedding the catalogue with the new model (the active one keeps serving)...")
        model_version_build(version=version)
        search_report = _tune_search(version=version, active=active, held_out=held_out, log=log)
    except Exception as error:
        model_version_fail(version=version, error=f"{type(error).__name__}: {error}")
        raise

    version.refresh_from_db()
    new_score, active_score, score_name = activation_scores(
        new_report=new_report, active_report=active_report, search_report=search_report
    )
    decision = activation_decide(
        new_score=new_score,
        active_score=active_score,
        active_name=active.name if active is not None else None,
        margin=lifecycle_settings.ACTIVATION_MARGIN,
        activate=options.activate,
        force=options.force,
        score_name=score_name,
        noise=activation_noise(search_report=search_report, z=lifecycle_settings.ACTIVATION_NOISE_Z),
    )
    if not decision.activate:
        reason = decision.reason
        if options.activate:
            reason += f". Kept `ready`; `manage.py activate_model {version.pk}` switches anyway."
        return RetrainOutcome(version, False, reason)
    model_version_activate(version=version)
    pruned = model_version_prune()
    reason = decision.reason
    if pruned:
        reason += f"; deleted the vectors of {', '.join(pruned)}"
    return RetrainOutcome(version, True, reason)
