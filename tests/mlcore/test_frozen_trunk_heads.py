"""A fully frozen trunk with MLP projection heads (the default model's configuration): what the model does."""

import dataclasses

import torch

from mlcore.config import ModelConfig
from mlcore.model import create_model

HEADS = ModelConfig(
    text_branch="bert",
    image_size=64,
    embed_dim=32,
    image_trainable_blocks=0,
    text_trainable_layers=0,
    projection_hidden_dim=64,
    image_pooling="mean+max",
)


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
