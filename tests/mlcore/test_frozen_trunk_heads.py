"""A fully frozen trunk with MLP projection heads: the configuration of the default model."""

import dataclasses
import random

import torch

from mlcore.checkpoint import load_checkpoint, save_checkpoint
from mlcore.config import ModelConfig, TrainingConfig
from mlcore.data import load_catalog
from mlcore.model import create_model
from mlcore.training import ImageBatches, train

HEADS = ModelConfig(
    text_branch="bert",
    image_size=64,
    embed_dim=32,
    image_trainable_blocks=0,
    text_trainable_layers=0,
    projection_hidden_dim=64,
    image_pooling="mean+max",
)


def _cached_image_batches(model, items, augment: bool) -> ImageBatches:
    config = TrainingConfig(augment=augment)
    device = torch.device("cpu")
    return ImageBatches(model, items, config, device, cache=True, rng=random.Random(0), progress=False)


def test_only_the_projection_heads_learn():
    model = create_model(HEADS)
    trainable = {
        name.split(".")[0] + "." + name.split(".")[1]
        for name, p in model.named_parameters()
        if p.requires_grad
    }
    assert trainable == {"image_tower.projection", "text_tower.projection"}
    assert model.image_tower.feature_dim == 2 * 1280
    assert isinstance(model.image_tower.projection, torch.nn.Sequential)


def test_pooled_features_are_computed_once_and_match_the_photo_path(synthetic_catalog):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:8]
    model = create_model(HEADS).eval()
    batches = _cached_image_batches(model, items, augment=True)
    assert batches.features.shape == (8, 2560) and batches.mirrored_features.shape == (8, 2560)
    from mlcore.embedding import encode_photos

    from_photos = encode_photos(model, [item.image for item in items])
    # The cached maps are float16, the photo path float32.
    assert torch.allclose(batches.eval_embeddings(), from_photos, atol=2e-3)


def test_heads_train_and_round_trip(synthetic_catalog, tmp_path):
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
    model = create_model(HEADS).eval()
    folder = save_checkpoint(model, tmp_path / "saved", fp16=False, int8_word_embeddings=False)
    loaded = load_checkpoint(folder, torch.device("cpu"))
    pixels = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(
            model.encode_image(pixels, normalize=True), loaded.encode_image(pixels, normalize=True), atol=1e-5
        )


def test_mirror_averaged_embedding_is_the_same_for_a_map_and_its_mirror():
    model = create_model(dataclasses.replace(HEADS, image_mirror_average=True))
    tower = model.image_tower
    prefix_map = torch.randn(3, 192, 2, 2)
    with torch.no_grad():
        tower.eval()
        averaged = tower.forward_tail(prefix_map)
        # Invariant to mirroring: the photo and its mirror image are one product.
        assert torch.allclose(averaged, tower.forward_tail(prefix_map.flip(-1)), atol=1e-6)
        # And it is the mean of the two views' unit embeddings.
        plain = torch.nn.functional.normalize(tower.project(tower.pooled_features(prefix_map)), dim=-1)
        assert torch.allclose((averaged - plain / 2).norm(dim=-1), torch.full((3,), 0.5), atol=1e-5)
        # Training steps see one view at a time (flip augmentation chooses it).
        tower.train()
        tower.dropout.p = 0.0
        tower.projection.eval()
        assert not torch.allclose(tower.forward_tail(prefix_map), tower.forward_tail(prefix_map.flip(-1)))


def test_mirror_averaged_cached_features_match_the_photo_path(synthetic_catalog):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")[:8]
    model = create_model(dataclasses.replace(HEADS, image_mirror_average=True)).eval()
    # Without flip augmentation the mirrored features are still computed, for the averaged embedding.
    batches = _cached_image_batches(model, items, augment=False)
    assert batches.mirrored_features is not None
    from mlcore.embedding import encode_photos

    from_photos = encode_photos(model, [item.image for item in items])
    assert torch.allclose(batches.eval_embeddings(), from_photos, atol=2e-3)
    unaveraged = create_model(HEADS)
    unaveraged.load_state_dict(model.state_dict())
    assert not torch.allclose(encode_photos(unaveraged.eval(), [item.image for item in items]), from_photos)
