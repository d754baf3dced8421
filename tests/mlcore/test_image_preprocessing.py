import random

import numpy as np
import pytest
from PIL import Image

from mlcore.image_preprocessing import (
    IMAGENET_NORMALISATION,
    LITE_NORMALISATION,
    augment,
    pad_to_square,
    preprocess,
)


def test_portrait_photo_is_centred_on_a_white_square():
    photo = Image.new("RGB", (30, 40), (255, 0, 0))
    square = pad_to_square(photo)
    assert square.size == (40, 40)
    assert square.getpixel((0, 20)) == (255, 255, 255) and square.getpixel((39, 20)) == (255, 255, 255)
    assert square.getpixel((20, 20)) == (255, 0, 0)


def test_lite_normalisation_maps_white_to_about_one_and_black_to_about_minus_one(tmp_path):
    photo = Image.new("RGB", (20, 20), (255, 255, 255))
    photo.paste(Image.new("RGB", (10, 20), (0, 0, 0)), (0, 0))
    path = tmp_path / "p.png"
    photo.save(path)
    tensor = preprocess(path, 20, LITE_NORMALISATION)
    assert tensor.shape == (3, 20, 20)
    assert tensor[:, :, -1].numpy() == pytest.approx(np.full((3, 20), 128 / 128), abs=1e-6)
    assert tensor[:, :, 0].numpy() == pytest.approx(np.full((3, 20), -127 / 128), abs=1e-6)
    imagenet = preprocess(path, 20, IMAGENET_NORMALISATION)
    assert imagenet[0, 0, -1].item() == pytest.approx((255 - 123.675) / 58.395, abs=1e-5)


def test_augmentation_is_seeded_and_keeps_a_photo_like_image():
    photo = Image.new("RGB", (40, 40), (200, 50, 50))
    first = np.asarray(augment(photo, random.Random(1)))
    second = np.asarray(augment(photo, random.Random(1)))
    assert np.array_equal(first, second)
    assert first.shape[2] == 3 and min(first.shape[:2]) >= 34


def test_mirroring_flips_left_and_right(tmp_path):
    photo = Image.new("RGB", (20, 20), (255, 255, 255))
    photo.paste(Image.new("RGB", (10, 20), (0, 0, 0)), (0, 0))
    plain = preprocess(photo, 20, LITE_NORMALISATION)
    mirrored = preprocess(photo, 20, LITE_NORMALISATION, mirror=True)
    assert np.allclose(plain.flip(-1).numpy(), mirrored.numpy())
