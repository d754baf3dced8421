"""Batched, gradient-free encoding shared by validation during training, the benches and `Encoder`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

from mlcore.image_preprocessing import preprocess
from mlcore.image_tower import ImageTower
from mlcore.model import DualEncoder
from mlcore.photo_features import FEATURE_DTYPE
from mlcore.text_tower import BertTextTower

# Runs an image tower's frozen prefix in place of `ImageTower.forward_prefix` (mlcore.onnx_runtime).
PhotoPrefix = Callable[[torch.Tensor], torch.Tensor]


def _eval_mode(model: DualEncoder) -> bool:
    """Put the model in eval mode for encoding; returns whether it was training. `train()`/`eval()` walk
    every submodule (about 6 ms each for the MiniLM model on this CPU), so a model already in eval mode, as
    an `Encoder`'s always is, is left alone: this runs on every search query."""
    was_training = model.training
    if was_training:
        model.eval()
    return was_training


def _restore_mode(model: DualEncoder, was_training: bool) -> None:
    if was_training:
        model.train()


@torch.inference_mode()
def encode_titles(
    model: DualEncoder, titles: list[str], batch_size: int = 256, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """(n, retrieval_dim) L2-normalised float32 on CPU. Titles are batched by token length so short titles
    are not padded to the longest one in the list."""
    was_training = _eval_mode(model)
    id_lists = model.tokenizer.encode_ids(titles)
    order = sorted(range(len(titles)), key=lambda i: len(id_lists[i]))
    output = torch.empty(len(titles), model.config.retrieval_dim)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        tokens = model.tokenizer.pad([id_lists[i] for i in chunk]).to(device)
        embeddings = model.encode_text(tokens.token_ids, tokens.attention_mask, normalize=True)
        output[torch.tensor(chunk)] = embeddings.float().cpu()
    _restore_mode(model, was_training)
    return output


@torch.inference_mode()
def encode_prefix_maps(
    model: DualEncoder, prefix_maps: torch.Tensor, batch_size: int = 256, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Cached trunk-prefix maps (n, C, h, w) -> (n, retrieval_dim) L2-normalised float32 on CPU."""
    was_training = _eval_mode(model)
    chunks = [
        model.retrieval_embedding(
            model.image_tower.forward_tail(prefix_maps[start : start + batch_size].to(device).float())
        )
        .float()
        .cpu()
        for start in range(0, len(prefix_maps), batch_size)
    ]
    _restore_mode(model, was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, model.config.retrieval_dim)


@torch.inference_mode()
def pooled_from_prefix_maps(
    model: DualEncoder, prefix_maps: torch.Tensor, batch_size: int = 256, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Prefix maps (n, C, h, w) of a fully frozen trunk -> (n, views, feature_dim) float16 pooled features
    on CPU: the photo's and, with mirror averaging, its mirror image's (mlcore.photo_features.pooled_key)."""
    tower = model.image_tower
    was_training = _eval_mode(model)
    chunks = []
    for start in range(0, len(prefix_maps), batch_size):
        maps = prefix_maps[start : start + batch_size].to(device).float()
        views = [tower.pooled_features(maps)]
        if tower.mirror_average:
            views.append(tower.pooled_features(maps.flip(-1)))
        chunks.append(torch.stack(views, dim=1).half().cpu())
    _restore_mode(model, was_training)
    if not chunks:
        return torch.empty(0, 2 if tower.mirror_average else 1, int(tower.feature_dim), dtype=torch.float16)
    return torch.cat(chunks)


@torch.inference_mode()
def encode_pooled_features(
    model: DualEncoder, pooled: torch.Tensor, batch_size: int = 1024, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Stored pooled features (n, views, feature_dim) -> (n, retrieval_dim) L2-normalised float32 on CPU:
    the projection head only, with the same mirror averaging as ImageTower.forward_tail."""
    tower = model.image_tower
    was_training = _eval_mode(model)
    chunks = []
    for start in range(0, len(pooled), batch_size):
        views = pooled[start : start + batch_size].to(device).float()
        projected = [tower.project(views[:, index]) for index in range(views.shape[1])]
        features = tower.average_with_mirror(*projected) if len(projected) == 2 else projected[0]
        chunks.append(model.retrieval_embedding(features).float().cpu())
    _restore_mode(model, was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, model.config.retrieval_dim)


def photo_pixel_batches(
    tower: ImageTower,
    images: list,
    batch_size: int,
    device: torch.device | str = "cpu",
    mirror: bool = False,
) -> Iterator[torch.Tensor]:
    """Photos (paths or PIL images) -> (batch, 3, size, size) channels-last pixel tensors, in order."""
    for start in range(0, len(images), batch_size):
        pixels = torch.stack(
            [
                preprocess(image, tower.image_size, tower.normalisation, mirror=mirror)
                for image in images[start : start + batch_size]
            ]
        )
        yield pixels.to(device, memory_format=torch.channels_last)


def encode_pixels(
    model: DualEncoder, pixels: torch.Tensor, prefix: PhotoPrefix | None = None
) -> torch.Tensor:
    """(batch, 3, size, size) pixels -> (batch, retrieval_dim) unit vectors, the frozen prefix run by
    `prefix` when given."""
    if prefix is None:
        return model.encode_image(pixels, normalize=True)
    maps = prefix(pixels).to(pixels.device)
    return model.retrieval_embedding(model.image_tower.forward_tail(maps))


@torch.inference_mode()
def encode_photos(
    model: DualEncoder,
    images: list,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    prefix: PhotoPrefix | None = None,
) -> torch.Tensor:
    """Photos (paths or PIL images) -> (n, retrieval_dim) L2-normalised float32 on CPU; `prefix`, when
    given, runs the trunk's frozen prefix instead of PyTorch."""
    was_training = _eval_mode(model)
    chunks = [
        encode_pixels(model, pixels, prefix).float().cpu()
        for pixels in photo_pixel_batches(model.image_tower, images, batch_size, device)
    ]
    _restore_mode(model, was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, model.config.retrieval_dim)


@torch.inference_mode()
def compute_prefix_maps(
    model: DualEncoder,
    images: list,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    prefix: PhotoPrefix | None = None,
) -> torch.Tensor:
    """Photos -> (n, C, h, w) float16 outputs of the image tower's frozen prefix, on CPU."""
    was_training = _eval_mode(model)
    tower = model.image_tower
    run_prefix = prefix or tower.forward_prefix
    chunks = [
        run_prefix(pixels).to("cpu", torch.float16)
        for pixels in photo_pixel_batches(tower, images, batch_size, device)
    ]
    _restore_mode(model, was_training)
    return torch.cat(chunks) if chunks else torch.empty(0, dtype=torch.float16)


@torch.inference_mode()
def compute_text_features(
    model: DualEncoder, texts: Sequence[str], batch_size: int = 128, device: torch.device | str = "cpu"
) -> list[np.ndarray]:
    """Per text, what MiniLM's frozen part gives it, float16 (mlcore.text_features)."""
    tower = model.text_tower
    if not isinstance(tower, BertTextTower) or tower.trainable_layers < 0:
        raise ValueError("this model's text tower has no frozen part to keep")
    was_training = _eval_mode(model)
    id_lists = model.tokenizer.encode_ids(list(texts))
    order = sorted(range(len(id_lists)), key=lambda i: len(id_lists[i]))
    features: list[np.ndarray] = [np.empty(0, dtype=FEATURE_DTYPE)] * len(id_lists)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        tokens = model.tokenizer.pad([id_lists[i] for i in chunk]).to(device)
        if tower.is_frozen:
            pooled = tower.pooled_features(tokens.token_ids, tokens.attention_mask).float().cpu()
            for row, index in enumerate(chunk):
                features[index] = pooled[row].numpy().astype(FEATURE_DTYPE)
        else:
            hidden = tower.frozen_hidden_states(tokens.token_ids, tokens.attention_mask).float().cpu()
            for row, index in enumerate(chunk):
                features[index] = hidden[row, : len(id_lists[index])].numpy().astype(FEATURE_DTYPE)
    _restore_mode(model, was_training)
    return features


@torch.inference_mode()
def encode_text_features(
    model: DualEncoder,
    features: Sequence[np.ndarray],
    batch_size: int = 128,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """(n, retrieval_dim) L2-normalised float32 text vectors on CPU from kept features: the trained
    layers (if any) and the projection head only."""
    tower = model.text_tower
    assert isinstance(tower, BertTextTower)
    was_training = _eval_mode(model)
    output = torch.empty(len(features), model.config.retrieval_dim)
    order = sorted(range(len(features)), key=lambda i: len(features[i]))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        if tower.is_frozen:
            pooled = torch.from_numpy(np.stack([features[i] for i in chunk]).astype(np.float32)).to(device)
            projected = tower.projection(pooled)
        else:
            longest = max(len(features[i]) for i in chunk)
            hidden = torch.zeros(len(chunk), longest, tower.hidden_size)
            mask = torch.zeros(len(chunk), longest, dtype=torch.long)
            for row, index in enumerate(chunk):
                length = len(features[index])
                hidden[row, :length] = torch.from_numpy(features[index].astype(np.float32))
                mask[row, :length] = 1
            projected = tower.forward_from_frozen(hidden.to(device), mask.to(device))
        output[torch.tensor(chunk)] = model.retrieval_embedding(projected).float().cpu()
    _restore_mode(model, was_training)
    return output
