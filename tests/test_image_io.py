"""Decoding, StackGAN bounding-box crop, resizing and bad image files."""

import os

import numpy as np
import pytest
from PIL import Image

from sagan_tf.data import image_io
from sagan_tf.data.records import BadExampleError

REAL_PHOTO = os.path.join(os.path.dirname(__file__), "fixtures", "cub_real", "images_by_class",
                          "001.Black_footed_Albatross", "0000.jpg")


def _coordinate_image(width, height):
    """Red = x, green = y: every pixel says where it came from."""
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    return np.stack([x, y, np.zeros_like(x)], axis=-1).astype(np.uint8)


def test_crop_box_is_stackgan_enlarged_square_clipped_to_the_image():
    # The first CUB image's box: radius int(325 * 0.75) = 243 around (222, 179).
    assert image_io.bird_crop_box((60.0, 27.0, 325.0, 304.0), 500, 400) == (0, 0, 465, 400)
    assert image_io.bird_crop_box((80, 80, 40, 20), 200, 200) == (70, 60, 130, 120)


def test_load_image_crops_exactly_the_box(tmp_path):
    pixels = _coordinate_image(200, 200)
    path = tmp_path / "coordinates.png"
    Image.fromarray(pixels).save(path)
    # Box (80, 80, 40, 40): radius 30 around (100, 100), i.e. rows and columns 70..129.
    crop = image_io.load_image(path, bbox=(80, 80, 40, 40), size=60)
    assert crop.dtype == np.uint8 and crop.shape == (60, 60, 3)
    np.testing.assert_array_equal(crop, pixels[70:130, 70:130])
    whole = image_io.load_image(path, size=50)
    assert whole.shape == (50, 50, 3)
    # Downscaled 4x, pixel (i, j) averages source columns 4j..4j+3: centre 4j + 1.5.
    np.testing.assert_allclose(whole[0, :, 0], 4 * np.arange(50) + 1.5, atol=1.0)


def test_resize_is_antialiased(tmp_path):
    checkerboard = (np.indices((128, 128)).sum(0) % 2 * 255).astype(np.uint8)
    path = tmp_path / "checkerboard.png"
    Image.fromarray(checkerboard).save(path)
    small = image_io.load_image(path, size=16).astype(float)
    # Aliasing would give pure black or white; averaging gives mid grey.
    np.testing.assert_allclose(small, 127.5, atol=3)


def test_grayscale_cmyk_palette_and_transparent_images_become_rgb(tmp_path):
    Image.new("L", (20, 20), 90).save(tmp_path / "gray.jpg")
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    Image.new("P", (20, 20), 0).save(tmp_path / "palette.png")
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[:10] = (0, 0, 255, 255)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")

    gray = image_io.load_image(tmp_path / "gray.jpg", size=8)
    assert gray.shape == (8, 8, 3)
    np.testing.assert_allclose(gray, 90, atol=2)
    cmyk = image_io.load_image(tmp_path / "cmyk.jpg", size=8).reshape(-1, 3).mean(0)
    np.testing.assert_allclose(cmyk, (255, 0, 0), atol=12)
    assert image_io.load_image(tmp_path / "palette.png", size=8).shape == (8, 8, 3)
    transparent = image_io.load_image(tmp_path / "rgba.png", size=20)
    np.testing.assert_array_equal(transparent[0, 0], (0, 0, 255))
    np.testing.assert_array_equal(transparent[-1, -1], (255, 255, 255))


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    levels = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (16, 1))
    Image.fromarray(levels).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    decoded = image_io.load_image(tmp_path / "deep.png", size=16)
    np.testing.assert_allclose(decoded[..., 0].mean(axis=0), levels[0] / 257, atol=2)
    assert decoded[:, 0].max() <= 2 and decoded[:, -1].min() >= 253


def test_a_phone_photo_is_turned_upright_by_its_exif_orientation(tmp_path):
    # Stored 4 wide x 2 high, left half red; orientation 6 = shown turned 90 degrees clockwise.
    stored = np.zeros((2, 4, 3), np.uint8)
    stored[:, :2, 0] = 255
    stored[:, 2:, 2] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.png"
    Image.fromarray(stored).save(path, exif=exif)
    upright = image_io.load_image(path, size=4)
    # Turned clockwise, the red left half is the top: the first row is red, the last blue.
    assert upright[0].mean(0)[0] > 200 and upright[-1].mean(0)[2] > 200


def test_a_box_is_cropped_in_the_stored_pixels_before_the_photo_is_turned_upright(tmp_path):
    stored = _coordinate_image(200, 100)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    path = tmp_path / "phone.png"
    Image.fromarray(stored).save(path, exif=exif)
    # Box (80, 30, 40, 40): radius 30 around (100, 50), i.e. rows 20..79, columns 70..129 as stored.
    crop = image_io.load_image(path, bbox=(80, 30, 40, 40), size=60)
    np.testing.assert_array_equal(crop, np.rot90(stored[20:80, 70:130], k=-1))


def test_an_image_past_pillows_bomb_limit_is_a_bad_example(tmp_path, monkeypatch):
    Image.new("1", (200, 100)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 20,000 pixels is then past twice the limit
    with pytest.raises(BadExampleError) as raised:
        image_io.load_image(tmp_path / "huge.png")
    assert raised.value.reason == image_io.TOO_LARGE_IMAGE


def test_real_photo_decodes():
    photo = image_io.load_image(REAL_PHOTO)
    assert photo.shape == (76, 76, 3) and photo.dtype == np.uint8
    assert 20 < photo.mean() < 235 and photo.std() > 10


def _bad_files(tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(np.random.default_rng(0).bytes(2000))
    with open(REAL_PHOTO, "rb") as file:
        jpeg = file.read()
    # Cut inside the pixel data, and inside the header.
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(jpeg[:4000])
    truncated_header = tmp_path / "truncated_header.jpg"
    truncated_header.write_bytes(jpeg[:400])
    return {
        "missing": (tmp_path / "missing.jpg", image_io.IMAGE_NOT_FOUND),
        "corrupt": (corrupt, image_io.NOT_AN_IMAGE),
        "truncated": (truncated, image_io.TRUNCATED_IMAGE),
        "truncated_header": (truncated_header, image_io.TRUNCATED_IMAGE),
    }


@pytest.mark.parametrize("kind", ["missing", "corrupt", "truncated", "truncated_header"])
def test_bad_files_raise_bad_example_error_with_path_and_reason(tmp_path, kind):
    path, reason = _bad_files(tmp_path)[kind]
    with pytest.raises(BadExampleError) as raised:
        image_io.load_image(path)
    assert raised.value.reason == reason
    assert str(path) in str(raised.value) and reason in str(raised.value)


def test_box_outside_the_image_is_a_bad_example(tmp_path):
    Image.new("RGB", (50, 50)).save(tmp_path / "small.png")
    with pytest.raises(BadExampleError, match="bounding box does not overlap the image"):
        image_io.load_image(tmp_path / "small.png", bbox=(500, 500, 10, 10))
    with pytest.raises(ValueError, match="size must be >= 1"):
        image_io.load_image(tmp_path / "small.png", size=0)


def test_load_images_decodes_in_parallel_and_reports_failures(tmp_path):
    bad = _bad_files(tmp_path)
    good = tmp_path / "coordinates.png"
    Image.fromarray(_coordinate_image(64, 64)).save(good)
    items = [(good, None), (bad["missing"][0], None), (REAL_PHOTO, (10, 10, 100, 100)),
             (bad["truncated"][0], None), (good, (16, 16, 32, 32))]
    images, ok, failures = image_io.load_images(items, size=32, workers=2)
    assert ok == [0, 2, 4]
    assert failures == [(1, image_io.IMAGE_NOT_FOUND), (3, image_io.TRUNCATED_IMAGE)]
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    for row, index in enumerate(ok):
        np.testing.assert_array_equal(images[row], image_io.load_image(*items[index], size=32))
    empty, ok, failures = image_io.load_images([], size=8)
    assert empty.shape == (0, 8, 8, 3) and ok == [] and failures == []
