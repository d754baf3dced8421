"""Fine-tuning a trained model on another shop: its towers carry over, its categories become the shop's."""

import dataclasses

import torch

from mlcore.checkpoint import load_checkpoint, save_checkpoint
from mlcore.config import ModelConfig, TrainingConfig
from mlcore.data import category_names, load_catalog
from mlcore.model import create_model
from mlcore_train.trainer import seed_everything, train
from mlcore_train.warm_start import model_to_fine_tune

CONFIG = ModelConfig(image_size=64, embed_dim=32, image_trainable_blocks=0, category_block_weight=0.3)


def _saved(tmp_path, items, category_names_: list[str]):
    seed_everything(1)
    model = create_model(dataclasses.replace(CONFIG, category_names=category_names_)).eval()
    return model, save_checkpoint(model, tmp_path / "trained", fp16=False, int8_word_embeddings=False)


def test_the_towers_carry_over_and_new_article_types_get_a_head_of_their_own(synthetic_catalog, tmp_path):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")
    saved, folder = _saved(tmp_path, items, ["kurtas", "sarees"])

    model = model_to_fine_tune(folder, items)

    assert model.config.category_names == category_names(items)
    assert model.category_head.class_weights.shape == (len(category_names(items)), CONFIG.embed_dim)
    pixels = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(saved.image_tower(pixels), model.image_tower(pixels), atol=1e-5)


def test_a_head_that_knows_every_type_of_the_shop_is_kept(synthetic_catalog, tmp_path):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")
    known = sorted({*category_names(items), "sarees"})
    saved, folder = _saved(tmp_path, items, known)

    model = model_to_fine_tune(folder, items)

    assert model.config.category_names == known
    assert torch.equal(model.category_head.class_weights, saved.category_head.class_weights)


def test_training_goes_on_from_the_saved_weights(synthetic_catalog, tmp_path):
    catalog, splits = synthetic_catalog
    items = load_catalog(catalog, splits, "train")
    saved, folder = _saved(tmp_path, items, ["kurtas"])
    recipe = TrainingConfig(
        epochs=1, batch_size=8, loss="infonce", augment=False, early_stopping_patience=0, learning_rate=1e-7
    )

    train(
        items,
        items,
        tmp_path / "tuned",
        None,
        recipe,
        model=model_to_fine_tune(folder, items),
        show_progress=False,
    )
    train(items, items, tmp_path / "fresh", saved.config, recipe, show_progress=False)

    pixels = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        reference = saved.encode_image(pixels)
        tuned = load_checkpoint(tmp_path / "tuned").encode_image(pixels)
        fresh = load_checkpoint(tmp_path / "fresh").encode_image(pixels)
    # The saved model's projection, barely moved (float16 weights), not a new one.
    assert (tuned - reference).abs().max() < 0.05 * reference.abs().max()
    assert (fresh - reference).abs().max() > 0.2 * reference.abs().max()
