"""The frozen image trunk's output for a photo, computed once and kept.

A model whose image trunk prefix is frozen (every shipped and `cpu-fast` model) turns a photo into its
vector in two steps: the frozen prefix (most of EfficientNet, most of the time) and the tail (the last
block, pooling and the projection head), which differs from version to version. The prefix output of a
photo depends only on its pixels and on the frozen weights, so it is stored once, keyed by the photo's
content hash and by `trunk_key` (backbone, input size, split point and a digest of the frozen weights),
and every later version and every retrain starts from it.

Where it is kept is the caller's choice (`PhotoFeatureStore`): the Django side keeps it in PostgreSQL
(lifecycle.photo_features), the training CLI in a folder (FolderFeatureStore).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from mlcore.image_tower import ImageTower

# Stored maps are float16: the precision the training cache has always used, half the bytes of float32.
FEATURE_DTYPE = np.float16


class PhotoFeatureStore(Protocol):
    """Prefix maps by (trunk key, photo content key)."""

    def get_many(self, *, trunk: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The maps found, by key; missing keys are absent."""
        ...

    def put_many(self, *, trunk: str, features: Mapping[str, np.ndarray]) -> None:
        """Keep these maps; a key already kept may be left as it is (same pixels, same trunk)."""
        ...


def trunk_key(tower: ImageTower, *, mirrored: bool = False) -> str | None:
    """What the tower's frozen prefix computes, or None when the prefix trains (nothing is fixed)."""
    if tower.prefix_is_trainable:
        return None
    suffix = "-mirrored" if mirrored else ""
    return f"{tower.cache_key()}-{weights_digest(tower._prefix_modules())}{suffix}"


def weights_digest(modules: Iterable[torch.nn.Module]) -> str:
    digest = hashlib.sha256()
    for module in modules:
        for name, tensor in sorted(module.state_dict().items()):
            # At checkpoint precision: a model loaded from its float16 checkpoint and the same weights
            # fresh from the backbone's file are one trunk (their maps differ far below float16 maps).
            value = tensor.detach().cpu()
            value = value.half() if value.is_floating_point() else value
            digest.update(name.encode())
            digest.update(value.contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def pooled_key(tower: ImageTower) -> str | None:
    """What a fully frozen trunk gives a photo after pooling (the features of the photo and, with mirror
    averaging, of its mirror image), or None when any block of the trunk trains. Every version trained on
    the same frozen trunk shares these, so embedding with a new version runs only its projection heads."""
    if not tower.tail_is_frozen:
        return None
    views = "mirror" if tower.mirror_average else "single"
    digest = weights_digest(tower._frozen_modules())
    return f"{tower.backbone.name}-{tower.image_size}px-pooled-{tower.pooling}-{views}-{digest}"


def features_to_bytes(features: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(features, dtype=FEATURE_DTYPE), allow_pickle=False)
    return buffer.getvalue()


def features_from_bytes(data: bytes) -> np.ndarray:
    """The array `features_to_bytes` wrote (the .npy format). A pass reads
    thousands of them with a handful of distinct headers: each header is parsed once, where np.load
    parses it every time."""
    view = memoryview(data)
    if bytes(view[:6]) != b"\x93NUMPY":
        raise ValueError("stored features are not in the .npy format")
    size_bytes = 2 if view[6] == 1 else 4
    header_end = 8 + size_bytes + int.from_bytes(view[8 : 8 + size_bytes], "little")
    dtype, shape, fortran_order = _npy_header(bytes(view[8 + size_bytes : header_end]))
    array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=header_end)
    # A copy: what np.frombuffer gives shares `data` and cannot be written, which torch warns of.
    return array.reshape(shape, order="F" if fortran_order else "C").copy()


@functools.lru_cache(maxsize=1024)
def _npy_header(header: bytes) -> tuple[np.dtype, tuple[int, ...], bool]:
    fields = ast.literal_eval(header.decode("latin1"))
    dtype = np.dtype(fields["descr"])
    if dtype.hasobject:
        raise ValueError("stored features hold Python objects")
    return dtype, tuple(fields["shape"]), bool(fields["fortran_order"])


class FolderFeatureStore:
    """Prefix maps as .npy files: `<folder>/<trunk>/<key[:2]>/<key>.npy`, written atomically."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _path(self, trunk: str, key: str) -> Path:
        return self.folder / trunk / key[:2] / f"{key}.npy"

    def get_many(self, *, trunk: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found = {}
        for key in keys:
            path = self._path(trunk, key)
            if path.exists():
                found[key] = np.load(path, allow_pickle=False)
        return found

    def put_many(self, *, trunk: str, features: Mapping[str, np.ndarray]) -> None:
        for key, value in features.items():
            path = self._path(trunk, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_suffix(".tmp.npy")
            np.save(temporary, np.ascontiguousarray(value, dtype=FEATURE_DTYPE), allow_pickle=False)
            temporary.replace(path)


def missing_keys(keys: Iterable[str], found: Mapping[str, np.ndarray]) -> list[str]:
    """Keys not found, each once, in first-seen order."""
    return list(dict.fromkeys(key for key in keys if key not in found))


def stack_maps(maps: Sequence[np.ndarray]) -> torch.Tensor:
    """(n, C, h, w) float16 tensor of stored maps."""
    return torch.from_numpy(np.stack([np.asarray(value, dtype=FEATURE_DTYPE) for value in maps]))
