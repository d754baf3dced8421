"""The garment's colour read from a product photo's pixels, for shops that leave the colour field empty.

Pillow and NumPy only, no model: the photo is shrunk, the background is found from the border's
colours (white studio sweep, a coloured wall, a patterned floor), skin is set aside unless the garment
itself looks skin-toned, and the pixels left vote, weighted towards the centre where product shots put
the garment, for the nearest colour of a small palette of the names shops use, compared in CIE Lab.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mlcore.image_preprocessing import open_rgb

# Names as shops write them (Myntra's base colours, Luma's); sRGB values a shopper would call by it.
PALETTE: dict[str, tuple[int, int, int]] = {
    "Black": (25, 25, 28),
    "White": (245, 245, 242),
    "Grey": (128, 128, 130),
    "Navy Blue": (30, 38, 78),
    "Blue": (45, 95, 185),
    "Teal": (20, 125, 125),
    "Green": (45, 135, 65),
    "Olive": (105, 110, 50),
    "Yellow": (235, 205, 45),
    "Orange": (235, 115, 35),
    "Red": (195, 30, 40),
    "Maroon": (110, 25, 40),
    "Pink": (235, 130, 165),
    "Magenta": (190, 35, 130),
    "Purple": (105, 55, 140),
    "Brown": (105, 70, 45),
    "Beige": (215, 195, 160),
}

WORKING_SIDE = 64  # pixels on the longer side: enough for a dominant colour, cheap to read
BORDER = 3  # pixels of the frame that describe the background
BACKGROUND_DISTANCE = 14.0  # Lab distance within which a pixel is taken for the background
# Skin is set aside unless less than this share of the foreground is left: then the garment is skin-toned.
MIN_SHARE_WITHOUT_SKIN = 0.2


@dataclass(frozen=True)
class ColourReading:
    name: str
    share: float  # the winning colour's share of the weighted garment pixels


def read_garment_colour(image: str | Path | Image.Image) -> ColourReading:
    """The photo's dominant garment colour, named from PALETTE."""
    rgb = open_rgb(image)
    rgb.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BILINEAR)
    pixels = np.asarray(rgb, dtype=np.float32) / 255.0
    lab = srgb_to_lab(pixels)
    height, width = lab.shape[:2]

    garment = ~_background_mask(lab)
    skin = _skin_mask(pixels)
    if (garment & ~skin).sum() >= MIN_SHARE_WITHOUT_SKIN * garment.sum():
        garment &= ~skin
    if garment.sum() < 0.03 * height * width:
        # A garment the colour of the background (a white shirt on white): read the centre instead.
        garment = _central_box(height, width)
    if not garment.any():  # a photo a few pixels across
        garment = np.ones((height, width), dtype=bool)

    weights = _centre_weights(height, width)[garment]
    nearest = nearest_palette_index(lab[garment])
    votes = np.bincount(nearest, weights=weights, minlength=len(PALETTE))
    winner = int(votes.argmax())
    return ColourReading(name=COLOUR_NAMES[winner], share=float(votes[winner] / votes.sum()))


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) sRGB in 0..1 -> CIE Lab (D65)."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _SRGB_TO_XYZ.T / _D65_WHITE
    cube = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lightness = 116 * cube[..., 1] - 16
    a = 500 * (cube[..., 0] - cube[..., 1])
    b = 200 * (cube[..., 1] - cube[..., 2])
    return np.stack([lightness, a, b], axis=-1)


def _background_mask(lab: np.ndarray) -> np.ndarray:
    """Pixels near one of the border's common colours."""
    frame = np.concatenate(
        [
            lab[:BORDER].reshape(-1, 3),
            lab[-BORDER:].reshape(-1, 3),
            lab[:, :BORDER].reshape(-1, 3),
            lab[:, -BORDER:].reshape(-1, 3),
        ]
    )
    # The border's colours, coarsely binned; bins holding a tenth of the frame are background colours.
    bins = np.round(frame / 8.0)
    unique, inverse, counts = np.unique(bins, axis=0, return_inverse=True, return_counts=True)
    common = counts >= 0.1 * len(frame)
    if not common.any():
        common = counts == counts.max()
    modes = np.stack([frame[inverse.ravel() == index].mean(axis=0) for index in np.flatnonzero(common)])
    distances = np.linalg.norm(lab[:, :, None, :] - modes[None, None], axis=-1)
    return distances.min(axis=-1) < BACKGROUND_DISTANCE


def _skin_mask(rgb: np.ndarray) -> np.ndarray:
    """Skin-toned pixels by the usual YCbCr box (Chai and Ngan)."""
    red, green, blue = (rgb[..., channel] * 255 for channel in range(3))
    cb = 128 - 0.168736 * red - 0.331264 * green + 0.5 * blue
    cr = 128 + 0.5 * red - 0.418688 * green - 0.081312 * blue
    return (cb >= 77) & (cb <= 127) & (cr >= 133) & (cr <= 173)


def _centre_weights(height: int, width: int) -> np.ndarray:
    rows = (np.arange(height) + 0.5) / height - 0.5
    columns = (np.arange(width) + 0.5) / width - 0.5
    return np.exp(-(rows[:, None] ** 2 + columns[None, :] ** 2) / (2 * 0.3**2))


def _central_box(height: int, width: int) -> np.ndarray:
    box = np.zeros((height, width), dtype=bool)
    box[height // 4 : height - height // 4, width // 4 : width - width // 4] = True
    return box


def nearest_palette_index(lab: np.ndarray) -> np.ndarray:
    return np.linalg.norm(lab[:, None, :] - _PALETTE_LAB[None], axis=-1).argmin(axis=1)


_SRGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], dtype=np.float32
)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883], dtype=np.float32)
COLOUR_NAMES = tuple(PALETTE)
_PALETTE_LAB = srgb_to_lab(np.array(list(PALETTE.values()), dtype=np.float32) / 255.0)
