"""The frozen image-trunk prefix of every training photo, computed once.

Running EfficientNet-Lite0 over a photo costs ~65 ms on a 2-core CPU, more than everything else in a
cpu-fast training step, so each photo goes through the frozen prefix once. Two places keep the maps:
- a shop's photo feature store (mlcore.photo_features), keyed by the photo's content and the trunk, when
  the caller passes one with the photos' content keys: a retrain then reads what embedding wrote;
- otherwise a disk cache keyed by backbone/split point and by image file (path, size, mtime), for the
  training CLI and the benchmarks.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from mlcore.embedding import photo_pixel_batches
from mlcore.image_tower import ImageTower
from mlcore.photo_features import PhotoFeatureStore, missing_keys, stack_maps, trunk_key

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("MLCORE_CACHE_DIR") or Path.home() / ".cache" / "mlcore")


def _image_key(image: str | Path | Image.Image, mirrored: bool) -> str | None:
    if isinstance(image, Image.Image):
        return None  # in-memory photos have no stable identity: always recomputed
    path = Path(image).resolve()
    stat = path.stat()
    raw = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{int(mirrored)}"
    return hashlib.sha1(raw.encode()).hexdigest()


def compute_prefix_maps(
    tower: ImageTower,
    images: list,
    batch_size: int = 64,
    mirrored: bool = False,
    cache_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    store: PhotoFeatureStore | None = None,
    keys: list[str] | None = None,
) -> torch.Tensor:
    """(n, C, h, w) float16 prefix maps for the photos: from `store` under the photos' content `keys`
    when both are given, else from the cache folder; what is missing is computed and kept."""
    trunk = trunk_key(tower, mirrored=mirrored)
    if store is not None and keys is not None and trunk is not None:
        return _maps_from_store(
            tower, images, keys, store=store, trunk=trunk, batch_size=batch_size, mirrored=mirrored,
            device=device, progress=progress,
        )  # fmt: skip
    return _maps_from_folder(
        tower, images, cache_dir=cache_dir, batch_size=batch_size, mirrored=mirrored, device=device,
        progress=progress,
    )  # fmt: skip


def _maps_from_store(
    tower: ImageTower,
    images: list,
    keys: list[str],
    *,
    store: PhotoFeatureStore,
    trunk: str,
    batch_size: int,
    mirrored: bool,
    device: torch.device | str,
    progress: bool,
) -> torch.Tensor:
    found = store.get_many(trunk=trunk, keys=keys)
    missing = missing_keys(keys, found)
    logger.info(
        "prefix maps of %s: %d photos stored, %d to compute", trunk, len(keys) - len(missing), len(missing)
    )
    if missing:
        image_of = dict(zip(keys, images, strict=True))
        computed = _run_prefix(
            tower, [image_of[key] for key in missing], batch_size=batch_size, mirrored=mirrored,
            device=device, progress=progress,
        )  # fmt: skip
        new = {key: prefix_map.numpy() for key, prefix_map in zip(missing, computed, strict=True)}
        store.put_many(trunk=trunk, features=new)
        found.update(new)
    return stack_maps([found[key] for key in keys])


def _maps_from_folder(
    tower: ImageTower,
    images: list,
    *,
    cache_dir: str | Path | None,
    batch_size: int,
    mirrored: bool,
    device: torch.device | str,
    progress: bool,
) -> torch.Tensor:
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / tower.cache_key()
    folder.mkdir(parents=True, exist_ok=True)
    file_keys = [_image_key(image, mirrored) for image in images]
    maps: list[torch.Tensor | None] = [None] * len(images)
    missing = []
    for index, key in enumerate(file_keys):
        cached = folder / f"{key}.npy" if key else None
        if cached is not None and cached.exists():
            maps[index] = torch.from_numpy(np.load(cached))
        else:
            missing.append(index)
    logger.info(
        "extracting %s prefix maps for %d photos (%d cached)",
        tower.cache_key(),
        len(missing),
        len(images) - len(missing),
    )
    computed = _run_prefix(
        tower, [images[i] for i in missing], batch_size=batch_size, mirrored=mirrored, device=device,
        progress=progress,
    )  # fmt: skip
    for index, prefix_map in zip(missing, computed, strict=True):
        maps[index] = prefix_map
        key = file_keys[index]
        if key:
            temporary = folder / f"{key}.tmp.npy"
            np.save(temporary, prefix_map.numpy())
            temporary.replace(folder / f"{key}.npy")
    return torch.stack(maps)  # type: ignore[arg-type]


# no_grad, not inference_mode: the maps feed training steps, and inference tensors cannot be saved
# for backward.
@torch.no_grad()
def _run_prefix(
    tower: ImageTower,
    images: list,
    *,
    batch_size: int,
    mirrored: bool,
    device: torch.device | str,
    progress: bool,
) -> list[torch.Tensor]:
    """(C, h, w) float16 prefix maps of the photos, in their order."""
    if not images:
        return []
    was_training = tower.training
    tower.eval()
    # channels_last runs the depthwise convolutions ~1.5x faster on CPU.
    tower.to(memory_format=torch.channels_last)
    maps: list[torch.Tensor] = []
    batches = photo_pixel_batches(tower, images, batch_size, device, mirror=mirrored)
    total = -(-len(images) // batch_size)
    for pixels in tqdm(batches, total=total, desc="image features", disable=not progress, unit="batch"):
        output = tower.forward_prefix(pixels).to("cpu", torch.float16)  # (chunk, C, h, w)
        maps.extend(prefix_map.clone() for prefix_map in output)
    tower.train(was_training)
    return maps
