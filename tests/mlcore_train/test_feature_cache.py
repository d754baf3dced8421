"""Training reads the photos' frozen-trunk maps from the shop's store when it has them."""

import numpy as np
import torch
from PIL import Image

from mlcore.config import ModelConfig
from mlcore.model import create_model
from mlcore.photo_features import FolderFeatureStore, trunk_key
from mlcore_train.feature_cache import compute_prefix_maps


def test_stored_maps_are_used_and_missing_ones_computed_and_kept(tmp_path):
    tower = create_model(
        ModelConfig(image_size=64, text_branch="bilstm", lstm_hidden_size=32, embed_dim=32)
    ).image_tower
    rng = np.random.default_rng(0)
    paths = []
    for index in range(3):
        path = tmp_path / f"{index}.png"
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    store = FolderFeatureStore(tmp_path / "store")
    keys = ["k0", "k1", "k2"]

    first = compute_prefix_maps(tower, paths[:2], store=store, keys=keys[:2], progress=False)
    assert set(store.get_many(trunk=trunk_key(tower), keys=keys)) == {"k0", "k1"}

    # The first two photos are gone: their maps can only come from the store; the third is computed.
    for path in paths[:2]:
        path.unlink()
    again = compute_prefix_maps(tower, paths, store=store, keys=keys, progress=False)
    assert again.dtype == torch.float16 and again.shape[0] == 3
    assert torch.equal(again[:2], first)
    assert set(store.get_many(trunk=trunk_key(tower), keys=keys)) == {"k0", "k1", "k2"}
