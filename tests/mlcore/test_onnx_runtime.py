"""The optional ONNX Runtime photo trunk: the same vectors as PyTorch, exported once per checkpoint, and a
clear fallback to PyTorch where onnxruntime is missing."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pytest
import torch

from mlcore.inference import Encoder
from mlcore.onnx_runtime import checkpoint_digest, mlcore_cache_dir
from tests.mlcore.conftest import COLOURS, draw_product


@pytest.fixture
def photos(tmp_path):
    return [
        draw_product(tmp_path / f"{name}.png", colour, shape, size=size)
        for (name, colour), shape, size in zip(
            COLOURS.items(),
            ["ellipse", "rectangle"] * 4,
            [(48, 64), (64, 48), (80, 80), (30, 90)] * 2,
            strict=True,
        )
    ]


def _needs_onnxruntime():
    pytest.importorskip("onnxruntime", reason="the `onnx` extra is not installed")
    pytest.importorskip("onnx", reason="the `onnx` extra is not installed")


def test_onnx_photo_vectors_and_trunk_maps_match_pytorch(tiny_frozen_trunk_model_path, photos):
    _needs_onnxruntime()
    reference = Encoder.load(tiny_frozen_trunk_model_path, device="cpu")
    onnx = Encoder.load(tiny_frozen_trunk_model_path, device="cpu", runtime="onnx")
    assert (reference.runtime, onnx.runtime) == ("torch", "onnx")

    vectors, onnx_vectors = (
        reference.encode_images(photos, batch_size=3),
        onnx.encode_images(photos, batch_size=3),
    )
    assert onnx_vectors.shape == vectors.shape
    # Unit vectors: a cosine below 1 - 1e-5 would be more than float rounding.
    assert (vectors * onnx_vectors).sum(axis=1).min() > 1 - 1e-5

    maps = reference.encode_prefix_maps(photos).astype(np.float32)
    onnx_maps = onnx.encode_prefix_maps(photos).astype(np.float32)
    assert onnx_maps.shape == maps.shape
    np.testing.assert_allclose(onnx_maps, maps, atol=2e-2 * float(np.abs(maps).max()))
    assert not np.allclose(maps, 0)


def test_the_exported_graph_is_built_once_per_checkpoint(tiny_frozen_trunk_model_path, tiny_model_path):
    _needs_onnxruntime()
    first = Encoder.load(tiny_frozen_trunk_model_path, device="cpu", runtime="onnx")
    path = first.photo_prefix.path
    assert path.parent == mlcore_cache_dir() / "onnx" / checkpoint_digest(tiny_frozen_trunk_model_path)
    built = path.stat().st_mtime_ns

    again = Encoder.load(tiny_frozen_trunk_model_path, device="cpu", runtime="onnx")
    other = Encoder.load(tiny_model_path, device="cpu", runtime="onnx")

    assert again.photo_prefix.path == path and path.stat().st_mtime_ns == built
    assert other.photo_prefix.path != path
    assert sorted(p.name for p in path.parent.iterdir()) == ["photo_prefix.onnx"]  # no partial file left


def test_without_onnxruntime_the_encoder_says_so_and_uses_pytorch(
    tiny_frozen_trunk_model_path, photos, monkeypatch, caplog
):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    caplog.set_level(logging.WARNING, logger="mlcore.onnx_runtime")

    encoder = Encoder.load(tiny_frozen_trunk_model_path, device="cpu", runtime="onnx")

    assert encoder.runtime == "torch" and encoder.photo_prefix is None
    assert "onnxruntime is not installed" in caplog.text and "PyTorch" in caplog.text
    reference = Encoder.load(tiny_frozen_trunk_model_path, device="cpu")
    np.testing.assert_array_equal(encoder.encode_images(photos), reference.encode_images(photos))
    assert not (mlcore_cache_dir() / "onnx").exists()


def test_an_unknown_runtime_is_refused(tiny_model_path):
    with pytest.raises(ValueError, match="unknown encoder runtime 'tensorrt'"):
        Encoder.load(tiny_model_path, device="cpu", runtime="tensorrt")


def test_a_gpu_device_keeps_pytorch(tiny_model_path, caplog):
    from mlcore.onnx_runtime import onnx_photo_prefix

    caplog.set_level(logging.INFO, logger="mlcore.onnx_runtime")
    encoder = Encoder.load(tiny_model_path, device="cpu")
    assert onnx_photo_prefix(encoder.model.image_tower, tiny_model_path, torch.device("cuda")) is None
    assert "CPU path" in caplog.text
