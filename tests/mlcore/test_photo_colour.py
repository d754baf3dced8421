"""The garment colour read from a photo's pixels: synthetic product shots with known colours."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mlcore import photo_colour
from mlcore.photo_colour import PALETTE, read_garment_colour, srgb_to_lab

SKIN = (224, 172, 140)


def _shot(
    garment: tuple[int, int, int], background: tuple[int, int, int], *, model: bool = False
) -> Image.Image:
    """A portrait product shot: a garment-shaped block on a plain background, a face and arms if `model`."""
    image = Image.new("RGB", (180, 240), background)
    draw = ImageDraw.Draw(image)
    if model:  # a short top: more skin than garment in the frame
        draw.ellipse((65, 5, 115, 60), fill=SKIN)  # face
        draw.rectangle((25, 60, 55, 170), fill=SKIN)  # arms
        draw.rectangle((125, 60, 155, 170), fill=SKIN)
        draw.rectangle((60, 140, 120, 235), fill=SKIN)  # legs
        draw.rectangle((60, 60, 120, 140), fill=garment)
    else:
        draw.rectangle((50, 60, 130, 220), fill=garment)
    return image


@pytest.mark.parametrize(
    ("garment", "background", "expected"),
    [
        ((200, 30, 40), (255, 255, 255), "Red"),
        ((30, 40, 80), (240, 220, 120), "Navy Blue"),  # a navy kurta against a yellow wall
        ((45, 135, 65), (120, 120, 125), "Green"),  # a studio's grey sweep
        ((245, 245, 242), (255, 255, 255), "White"),  # white on white: the centre is read
    ],
)
def test_the_garment_colour_is_read_and_the_background_left_out(garment, background, expected):
    assert read_garment_colour(_shot(garment, background)).name == expected


def test_a_models_skin_does_not_outvote_the_garment(monkeypatch):
    shot = _shot((45, 95, 185), (250, 250, 250), model=True)

    reading = read_garment_colour(shot)
    monkeypatch.setattr(photo_colour, "MIN_SHARE_WITHOUT_SKIN", 2.0)  # skin always kept

    assert (reading.name, read_garment_colour(shot).name) == ("Blue", "Beige")


def test_a_skin_toned_garment_is_still_read():
    assert read_garment_colour(_shot((215, 195, 160), (40, 40, 45))).name == "Beige"


def test_photos_on_disk_and_in_other_modes_are_read(tmp_path):
    path = tmp_path / "shot.png"
    _shot((235, 205, 45), (255, 255, 255)).convert("P").save(path)

    assert read_garment_colour(path).name == "Yellow"


def test_lab_conversion_matches_the_reference_white_and_black():
    lab = srgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]], dtype=np.float32))

    np.testing.assert_allclose(lab, [[100.0, 0.0, 0.0], [0.0, 0.0, 0.0]], atol=0.1)


def test_every_palette_colour_reads_as_itself():
    for name, rgb in PALETTE.items():
        background = (255, 255, 255) if name != "White" else (30, 30, 30)
        assert read_garment_colour(_shot(rgb, background)).name == name


@pytest.mark.parametrize("size", [(1, 1), (2, 7), (5, 5), (400, 3)])
def test_photos_a_few_pixels_across_still_get_a_colour(size):
    reading = read_garment_colour(Image.new("RGB", size, (200, 30, 40)))

    assert reading.name == "Red" and reading.share == 1.0
