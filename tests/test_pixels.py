import numpy as np

from sagan_tf import pixels


def test_every_uint8_level_survives_the_round_trip_through_the_model_range():
    levels = np.arange(256, dtype=np.uint8)
    model_range = np.asarray(pixels.to_model_range(levels))
    assert model_range.dtype == np.float32 and model_range[0] == -1.0 and model_range[-1] == 1.0
    np.testing.assert_array_equal(np.asarray(pixels.to_pixels(model_range)), levels)


def test_to_pixels_rounds_to_the_nearest_level_and_clips():
    images = np.array([-1.5, -1.0, 1 / 255 - 1 - 1e-4, 1 / 255 - 1 + 1e-4, 0.0, 1.0, 3.0], np.float32)
    np.testing.assert_array_equal(np.asarray(pixels.to_pixels(images)), [0, 0, 0, 1, 128, 255, 255])


def test_to_unit_range_maps_minus_one_to_zero_and_clips():
    np.testing.assert_allclose(np.asarray(pixels.to_unit_range([-2.0, -1.0, 0.0, 0.5, 1.0, 2.0])),
                               [0.0, 0.0, 0.5, 0.75, 1.0, 1.0])
