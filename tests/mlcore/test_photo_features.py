"""Photo features: the frozen trunk's output, computed once and reused by any model sharing the trunk."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from mlcore.config import ModelConfig
from mlcore.inference import Encoder
from mlcore.model import create_model
from mlcore.photo_features import FolderFeatureStore, features_from_bytes, features_to_bytes, trunk_key

SMALL = ModelConfig(image_size=64, text_branch="bilstm", lstm_hidden_size=32, embed_dim=32)


def _photos() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)) for _ in range(3)]


def test_two_models_with_the_same_frozen_prefix_share_a_trunk_key():
    one, other = create_model(SMALL), create_model(dataclasses.replace(SMALL, embed_dim=16))
    key = trunk_key(one.image_tower)
    assert key is not None and key == trunk_key(other.image_tower)
    assert trunk_key(one.image_tower, mirrored=True) == f"{key}-mirrored"


def test_another_input_size_or_split_point_is_another_trunk():
    key = trunk_key(create_model(SMALL).image_tower)
    assert trunk_key(create_model(dataclasses.replace(SMALL, image_size=96)).image_tower) != key
    assert trunk_key(create_model(dataclasses.replace(SMALL, image_trainable_blocks=3)).image_tower) != key


def test_changed_frozen_weights_are_another_trunk():
    model = create_model(SMALL)
    key = trunk_key(model.image_tower)
    stem = model.image_tower.trunk._conv_stem.weight
    stem.data.add_(0.01)
    assert trunk_key(model.image_tower) != key


def test_a_trainable_prefix_has_nothing_to_keep():
    every_block = dataclasses.replace(SMALL, image_trainable_blocks=-1)
    assert trunk_key(create_model(every_block).image_tower) is None


def test_vectors_from_kept_features_equal_vectors_from_the_photos(tiny_model_path):
    encoder = Encoder.load(tiny_model_path, device="cpu")
    photos = _photos()
    maps = encoder.encode_prefix_maps(photos)
    assert maps.dtype == np.float16 and maps.shape[0] == 3

    kept = features_from_bytes(features_to_bytes(maps))
    from_features = encoder.encode_images_from_prefix_maps(kept)
    direct = encoder.encode_images(photos)
    # float16 storage of the maps: equal to the direct vectors within half precision.
    assert np.allclose(from_features, direct, atol=5e-3)
    assert np.allclose(np.linalg.norm(from_features, axis=1), 1, atol=1e-4)


def test_a_folder_store_gives_back_what_it_kept(tmp_path):
    store = FolderFeatureStore(tmp_path)
    value = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    store.put_many(trunk="t1", features={"abcdef": value})

    found = store.get_many(trunk="t1", keys=["abcdef", "missing"])
    assert list(found) == ["abcdef"] and found["abcdef"].dtype == np.float16
    assert np.array_equal(found["abcdef"], value.astype(np.float16))
    assert store.get_many(trunk="t2", keys=["abcdef"]) == {}


@pytest.mark.parametrize("shape", [(4,), (2, 3, 3)])
def test_features_round_trip_through_bytes(shape):
    value = np.random.default_rng(1).standard_normal(shape).astype(np.float16)
    assert np.array_equal(features_from_bytes(features_to_bytes(value)), value)


def test_features_read_any_npy_layout_and_refuse_what_is_not_one():
    import io

    fortran = np.asfortranarray(np.arange(12, dtype=np.float16).reshape(3, 4))
    buffer = io.BytesIO()
    np.save(buffer, fortran)
    read = features_from_bytes(buffer.getvalue())
    assert np.array_equal(read, fortran) and read.shape == (3, 4)
    # Texts of several lengths: each length has its own header.
    for length in (5, 48, 5):
        value = np.full((length, 3), length, dtype=np.float16)
        assert np.array_equal(features_from_bytes(features_to_bytes(value)), value)
    with pytest.raises(ValueError, match="npy"):
        features_from_bytes(b"not features at all")
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="objects"):
        features_from_bytes(buffer.getvalue())
