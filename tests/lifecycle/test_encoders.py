"""The per-process encoder cache: one load per version, bounded, a clear error for missing files."""

import logging
import sys

import pytest

from lifecycle.encoders import ModelArtifactMissing, encoder_cache_clear, encoder_for_version
from lifecycle.models import ModelVersion


@pytest.fixture(autouse=True)
def _empty_cache():
    encoder_cache_clear()
    yield
    encoder_cache_clear()


def _version(pk: int, path) -> ModelVersion:
    # Not saved: the cache keys on the id and the files, and never reads the database.
    return ModelVersion(pk=pk, name=f"v{pk}", artifact_path=str(path))


def test_a_version_is_loaded_once_and_another_version_loads_its_own(tiny_model_path):
    first = encoder_for_version(_version(1, tiny_model_path))
    assert encoder_for_version(_version(1, tiny_model_path)) is first
    assert encoder_for_version(_version(2, tiny_model_path)) is not first


def test_the_cache_keeps_only_the_most_recently_used_versions(tiny_model_path, settings):
    settings.PRODUCT_SEARCH_LOADED_MODELS_PER_PROCESS = 2
    one = encoder_for_version(_version(1, tiny_model_path))
    encoder_for_version(_version(2, tiny_model_path))
    assert encoder_for_version(_version(1, tiny_model_path)) is one  # used last: kept
    encoder_for_version(_version(3, tiny_model_path))  # evicts version 2, the least recently used
    assert encoder_for_version(_version(1, tiny_model_path)) is one
    two = encoder_for_version(_version(2, tiny_model_path))
    assert encoder_for_version(_version(2, tiny_model_path)) is two


def test_missing_model_files_say_what_to_do(tmp_path):
    with pytest.raises(ModelArtifactMissing, match="has no model files at"):
        encoder_for_version(_version(7, tmp_path / "gone"))


def test_the_encoder_runtime_setting_reaches_the_workers_encoder(
    tiny_model_path, settings, tmp_path, monkeypatch
):
    pytest.importorskip("onnxruntime", reason="the `onnx` extra is not installed")
    pytest.importorskip("onnx", reason="the `onnx` extra is not installed")
    monkeypatch.setenv("MLCORE_CACHE_DIR", str(tmp_path))
    settings.PRODUCT_SEARCH_ENCODER_RUNTIME = "onnx"

    assert encoder_for_version(_version(1, tiny_model_path)).runtime == "onnx"
    settings.PRODUCT_SEARCH_ENCODER_RUNTIME = "torch"
    assert encoder_for_version(_version(2, tiny_model_path)).runtime == "torch"


def test_the_onnx_runtime_without_onnxruntime_falls_back_to_pytorch_with_a_log_line(
    tiny_model_path, settings, monkeypatch, caplog
):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    caplog.set_level(logging.WARNING, logger="mlcore.onnx_runtime")
    settings.PRODUCT_SEARCH_ENCODER_RUNTIME = "onnx"

    encoder = encoder_for_version(_version(1, tiny_model_path))

    assert encoder.runtime == "torch"
    assert "onnxruntime is not installed" in caplog.text
