"""Starting a training run from a trained model instead of the pretrained trunk alone.

A shop's retrain fine-tunes the model that serves it (what it learnt on other catalogues carries over)
rather than learning its heads again from a few hundred products.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from mlcore.checkpoint import load_checkpoint
from mlcore.config import ModelConfig
from mlcore.data import CatalogItem, category_names
from mlcore.model import CategoryHead, DualEncoder, create_model


def model_to_fine_tune(folder: str | Path, train_items: list[CatalogItem]) -> DualEncoder:
    """The model saved in `folder`, to train further on `train_items`: its towers as they are, and its
    category head kept when the items' article types are all among its categories, else a fresh head
    over the items' types (the category block keeps its weight; only its classes are the shop's)."""
    model = load_checkpoint(folder, device="cpu")
    if model.category_head is None:
        return model
    names = category_names(train_items)
    if not set(names) <= set(model.config.category_names):
        model.config = replace(model.config, category_names=names)
        model.category_head = CategoryHead(len(names), model.config.embed_dim)
    return model


def new_heads_on_trunk(
    folder: str | Path, model_config: ModelConfig, train_items: list[CatalogItem]
) -> DualEncoder:
    """A new model of `model_config` (pretrained text tower, fresh projection and category heads over the
    items' article types) on the image trunk saved in `folder`, whose architecture `model_config` shares.
    The shop's kept photo features were computed by that trunk, so training reads them instead of every
    photo, and whatever the trunk learnt on fashion photos carries into the shop's model."""
    if model_config.category_block_weight > 0:
        model_config = replace(model_config, category_names=category_names(train_items))
    model = create_model(model_config)
    saved = load_checkpoint(folder, device="cpu")
    model.image_tower.trunk.load_state_dict(saved.image_tower.trunk.state_dict())
    return model
