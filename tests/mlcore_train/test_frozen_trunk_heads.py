"""A fully frozen trunk with MLP projection heads (the default model's configuration): how it trains."""

import dataclasses
import random

import torch

from mlcore.checkpoint import load_checkpoint, save_checkpoint
from mlcore.config import TrainingConfig
from mlcore.data import load_catalog
from mlcore.embedding import encode_photos, encode_titles
from mlcore.model import create_model
from mlcore_train.feature_sources import ImageFeatureSource
from mlcore_train.trainer import seed_everything, train
from tests.mlcore.test_frozen_trunk_heads import HEADS


def _cached_image_features(model, items, augment: bool) -> ImageFeatureSource:
    config = TrainingConfig(augment=augment)
    device = torch.device("cpu")
    return ImageFeatureSource(model, items, config, device, cache=True, rng=random.Random(0), progress=False)


def test_pooled_features_are_computed_once_and_match_the_photo_path(synthetic_catalog):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:8]
    model = create_model(HEADS).eval()
    batches = _cached_image_features(model, items, augment=True)
    assert batches.features.shape == (8, 2560) and batches.mirrored_features.shape == (8, 2560)
    from_photos = encode_photos(model, [item.image for item in items])
    # The cached maps are float16, the photo path float32.
    assert torch.allclose(batches.eval_embeddings(), from_photos, atol=2e-3)


def test_trained_heads_round_trip_through_a_checkpoint(synthetic_catalog, tmp_path):
    # Given the heads trained to perfect recall on 16 pairs
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")
    no_dropout = dataclasses.replace(HEADS, projection_dropout=0.0)
    result = train(
        items,
        items,
        tmp_path / "model",
        no_dropout,
        TrainingConfig(
            epochs=30,
            batch_size=16,
            learning_rate=3e-3,
            loss="infonce",
            early_stopping_patience=0,
            warmup_fraction=0.0,
            augment=False,
        ),
        show_progress=False,
    )
    assert result.best_val_metrics["t2i"]["R@1"] == 100.0
    trained = load_checkpoint(result.output_dir, torch.device("cpu"))
    # (training seeds torch before creating the model, so this is the model it started from)
    seed_everything(0)
    untrained = create_model(no_dropout).eval()
    pixels = torch.rand(2, 3, 64, 64)
    titles = [item.title for item in items[:4]]
    with torch.no_grad():
        assert not torch.allclose(
            trained.encode_image(pixels, normalize=True), untrained.encode_image(pixels, normalize=True)
        )
    # When the trained model is saved and loaded again
    folder = save_checkpoint(trained, tmp_path / "saved", fp16=False, int8_word_embeddings=False)
    loaded = load_checkpoint(folder, torch.device("cpu"))
    # Then it encodes photos and titles as the trained model does
    with torch.no_grad():
        assert torch.allclose(
            trained.encode_image(pixels, normalize=True),
            loaded.encode_image(pixels, normalize=True),
            atol=1e-5,
        )
    assert torch.allclose(encode_titles(trained, titles), encode_titles(loaded, titles), atol=1e-5)
    photos = [item.image for item in items[:4]]
    assert torch.allclose(encode_photos(trained, photos), encode_photos(loaded, photos), atol=1e-5)


def test_mirror_averaged_cached_features_match_the_photo_path(synthetic_catalog):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:8]
    model = create_model(dataclasses.replace(HEADS, image_mirror_average=True)).eval()
    # Without flip augmentation the mirrored features are still computed, for the averaged embedding.
    batches = _cached_image_features(model, items, augment=False)
    assert batches.mirrored_features is not None
    from_photos = encode_photos(model, [item.image for item in items])
    assert torch.allclose(batches.eval_embeddings(), from_photos, atol=2e-3)
    unaveraged = create_model(HEADS)
    unaveraged.load_state_dict(model.state_dict())
    assert not torch.allclose(encode_photos(unaveraged.eval(), [item.image for item in items]), from_photos)
