"""Shapes and finiteness for every registered (backbone, text branch) combination, on tiny inputs."""

import pytest
import torch

from mlcore.config import ModelConfig
from mlcore.model import create_model, registered_combinations
from mlcore.text_tower import minilm_folder

# Large random-init trunks are slow on a 2-core CPU; lite0, b0 and b7 (with one text branch) always run.
ALWAYS_RUN = {
    ("efficientnet-lite0", "bilstm"),
    ("efficientnet-lite0", "bert"),
    ("efficientnet-b0", "bilstm"),
    ("efficientnet-b0", "bert"),
    ("efficientnet-b7", "bilstm"),
}


def combinations():
    return [
        pytest.param(
            backbone,
            branch,
            marks=() if (backbone, branch) in ALWAYS_RUN else pytest.mark.large_backbone,
            id=f"{backbone}-{branch}",
        )
        for backbone, branch in registered_combinations()
    ]


@pytest.mark.parametrize("backbone,branch", combinations())
def test_every_combination_embeds_tiny_inputs_without_nans(backbone, branch):
    config = ModelConfig(
        image_backbone=backbone, text_branch=branch, image_size=32, embed_dim=16, lstm_hidden_size=8
    )
    model = create_model(config, pretrained=False, tokenizer_file=str(minilm_folder() / "tokenizer.json"))
    tokens = model.tokenizer(["Acme Men Red Tshirts", "blue shoes"])
    with torch.no_grad():
        images, texts = model(torch.randn(2, 3, 32, 32), tokens.token_ids, tokens.attention_mask)
        normalised = model.encode_text(tokens.token_ids, tokens.attention_mask, normalize=True)
    assert images.shape == (2, 16) and texts.shape == (2, 16)
    assert torch.isfinite(images).all() and torch.isfinite(texts).all()
    assert torch.allclose(normalised.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_random_init_b_backbones_warn_loudly():
    with pytest.warns(UserWarning, match="RANDOM"):
        create_model(
            ModelConfig(
                image_backbone="efficientnet-b0", image_size=32, text_branch="bilstm", lstm_hidden_size=8
            ),
            pretrained=True,
        )


def test_unknown_names_fail_with_the_valid_choices():
    with pytest.raises(ValueError, match="efficientnet-lite0"):
        create_model(ModelConfig(image_backbone="resnet50"))
    with pytest.raises(ValueError, match="bilstm"):
        create_model(ModelConfig(text_branch="gru"))


def test_only_the_tail_of_the_image_trunk_and_last_bert_layers_are_trainable():
    model = create_model(
        ModelConfig(image_size=32, text_branch="bert", text_trainable_layers=2, image_trainable_blocks=1)
    )
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert "image_tower.trunk._blocks.15._expand_conv.weight" in trainable
    assert "image_tower.trunk._blocks.14._expand_conv.weight" not in trainable
    assert "image_tower.trunk._conv_stem.weight" not in trainable
    assert any(name.startswith("text_tower.encoder.encoder.layer.5.") for name in trainable)
    assert not any(name.startswith("text_tower.encoder.encoder.layer.3.") for name in trainable)
    assert "text_tower.encoder.embeddings.word_embeddings.weight" not in trainable


def test_prefix_then_tail_equals_the_whole_image_tower():
    model = create_model(ModelConfig(image_size=64, text_branch="bilstm", lstm_hidden_size=8)).eval()
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        whole = model.image_tower(pixels)
        split = model.image_tower.forward_tail(model.image_tower.forward_prefix(pixels))
    assert torch.allclose(whole, split, atol=1e-5)


def test_the_category_block_mixes_the_cosine_with_the_category_agreement():
    import numpy as np

    config = ModelConfig(
        image_size=64,
        embed_dim=8,
        text_branch="bilstm",
        lstm_hidden_size=8,
        category_block_weight=0.25,
        category_names=["shirts", "shoes", "watches"],
    )
    model = create_model(
        config, pretrained=False, tokenizer_file=str(minilm_folder() / "tokenizer.json")
    ).eval()
    features = torch.randn(5, 8)
    vectors = model.retrieval_embedding(features)
    assert vectors.shape == (5, 8 + 3) and config.retrieval_dim == 11
    # Unit length, and the cosine is (1 - w) cos(e1, e2) + w * sum(sqrt(p1 * p2)).
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(5), atol=1e-5)
    unit = torch.nn.functional.normalize(features, dim=-1).numpy()
    probabilities = torch.softmax(model.category_head(torch.from_numpy(unit)), dim=-1).detach().numpy()
    expected = 0.75 * unit @ unit.T + 0.25 * np.sqrt(probabilities) @ np.sqrt(probabilities).T
    assert np.allclose(vectors.detach().numpy() @ vectors.detach().numpy().T, expected, atol=1e-5)


def test_a_category_block_needs_category_names_and_a_weight_below_one():
    with pytest.raises(ValueError, match="needs category_names"):
        create_model(ModelConfig(text_branch="bilstm", category_block_weight=0.2), pretrained=False)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\)"):
        create_model(
            ModelConfig(text_branch="bilstm", category_block_weight=1.0, category_names=["a"]),
            pretrained=False,
        )


@pytest.mark.parametrize("backbone", ["efficientnet-lite0", "efficientnet-lite2"])
def test_lite_trunks_load_the_imagenet_weights_their_wheel_ships(backbone):
    from mlcore.image_tower import lite_weights_file

    shipped = torch.load(lite_weights_file(backbone), map_location="cpu", weights_only=True)
    model = create_model(
        ModelConfig(image_backbone=backbone, image_size=32, text_branch="bilstm", lstm_hidden_size=8)
    )
    stem = model.image_tower.trunk._conv_stem.weight
    assert torch.equal(stem, shipped["_conv_stem.weight"])
