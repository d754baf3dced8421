"""Inference API: load a model folder once, then encode photos and texts into the joint space."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from mlcore.checkpoint import load_checkpoint, read_checkpoint_config
from mlcore.config import ModelConfig
from mlcore.device import resolve_device
from mlcore.embedding import (
    PhotoPrefix,
    compute_prefix_maps,
    compute_text_features,
    encode_photos,
    encode_pooled_features,
    encode_prefix_maps,
    encode_text_features,
    encode_titles,
    pooled_from_prefix_maps,
)
from mlcore.model import DualEncoder
from mlcore.onnx_runtime import RUNTIMES, onnx_photo_prefix
from mlcore.photo_features import pooled_key, trunk_key
from mlcore.text_features import text_features_key


class Encoder:
    """L2-normalised float32 NumPy embeddings for photos and texts, from a saved model folder.

    >>> encoder = Encoder.load(default_model_path())
    >>> encoder.encode_texts(["navy blue shirt"]).shape
    (1, 512)
    """

    def __init__(
        self,
        model: DualEncoder,
        name: str,
        device: torch.device,
        metadata: dict[str, Any] | None = None,
        photo_prefix: PhotoPrefix | None = None,
    ):
        self.model = model.eval()
        self.name = name
        self.device = device
        self.metadata = metadata or {}
        # Runs the photo trunk's frozen prefix instead of PyTorch (mlcore.onnx_runtime); None: PyTorch.
        self.photo_prefix = photo_prefix

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", runtime: str = "torch") -> Encoder:
        """`runtime` "onnx" runs the photo trunk in ONNX Runtime on CPU (exported on first use); where
        it cannot (no onnxruntime, a GPU device) the encoder says so in the log and uses PyTorch."""
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown encoder runtime {runtime!r}; choose one of {RUNTIMES}")
        path = Path(path)
        resolved = resolve_device(device)
        payload = read_checkpoint_config(path)
        model = load_checkpoint(path, resolved).eval()
        prefix = onnx_photo_prefix(model.image_tower, path, resolved) if runtime == "onnx" else None
        return cls(model, payload.get("name") or path.name, resolved, payload, photo_prefix=prefix)

    @property
    def runtime(self) -> str:
        return "torch" if self.photo_prefix is None else "onnx"

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def dim(self) -> int:
        return self.model.config.retrieval_dim

    def encode_images(self, images: Sequence[str | Path | Image.Image], batch_size: int = 32) -> np.ndarray:
        """(n, dim) float32; images are file paths or PIL images."""
        return encode_photos(
            self.model, list(images), batch_size=batch_size, device=self.device, prefix=self.photo_prefix
        ).numpy()

    @cached_property
    def trunk_key(self) -> str | None:
        """What the frozen image-trunk prefix computes (mlcore.photo_features), or None when it trains."""
        return trunk_key(self.model.image_tower)

    def encode_prefix_maps(
        self, images: Sequence[str | Path | Image.Image], batch_size: int = 32
    ) -> np.ndarray:
        """(n, C, h, w) float16 outputs of the frozen trunk prefix: what a PhotoFeatureStore keeps."""
        return compute_prefix_maps(
            self.model, list(images), batch_size=batch_size, device=self.device, prefix=self.photo_prefix
        ).numpy()

    def encode_images_from_prefix_maps(self, maps: np.ndarray) -> np.ndarray:
        """(n, dim) float32 photo vectors from stored prefix maps: the tail and head only."""
        return encode_prefix_maps(self.model, torch.from_numpy(np.asarray(maps)), device=self.device).numpy()

    @cached_property
    def pooled_key(self) -> str | None:
        """What the whole frozen image trunk gives a photo after pooling, or None when a block trains."""
        return pooled_key(self.model.image_tower)

    def pooled_from_prefix_maps(self, maps: np.ndarray) -> np.ndarray:
        """(n, views, feature_dim) float16 pooled features of a fully frozen trunk, from prefix maps."""
        maps_tensor = torch.from_numpy(np.asarray(maps))
        return pooled_from_prefix_maps(self.model, maps_tensor, device=self.device).numpy()

    def encode_images_from_pooled(self, pooled: np.ndarray) -> np.ndarray:
        """(n, dim) float32 photo vectors from stored pooled features: the projection head only."""
        return encode_pooled_features(
            self.model, torch.from_numpy(np.asarray(pooled)), device=self.device
        ).numpy()

    def encode_texts(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        """(n, dim) float32; texts are batched by token length."""
        return encode_titles(self.model, list(texts), batch_size=batch_size, device=self.device).numpy()

    @cached_property
    def text_features_key(self) -> str | None:
        """What the text tower's frozen part computes (mlcore.text_features), or None when none is frozen."""
        return text_features_key(self.model)

    def text_features(self, texts: list[str]) -> list[np.ndarray]:
        """Per text, the float16 output of the text tower's frozen part: what a feature store keeps."""
        return compute_text_features(self.model, texts, device=self.device)

    def encode_texts_from_features(self, features: list[np.ndarray]) -> np.ndarray:
        """(n, dim) float32 text vectors from kept features: the trained layers and projection only."""
        return encode_text_features(self.model, features, device=self.device).numpy()
