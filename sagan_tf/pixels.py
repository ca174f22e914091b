"""The two ranges an image lives in: uint8 pixels (data, PNGs, the
SavedModel's output) and float32 in [-1, 1] (the networks; the generator
ends in tanh)."""

import tensorflow as tf


def to_model_range(pixels):
    """uint8 pixels -> float32 in [-1, 1]."""
    return tf.cast(pixels, tf.float32) / 127.5 - 1.0


def to_pixels(images):
    """[-1, 1] -> uint8 pixels, rounded to the nearest level (values outside are clipped)."""
    return tf.cast(tf.round(tf.clip_by_value((images + 1.0) * 127.5, 0.0, 255.0)), tf.uint8)


def to_unit_range(images):
    """[-1, 1] -> [0, 1], clipped: what TensorBoard and Matplotlib take."""
    return tf.clip_by_value((tf.convert_to_tensor(images, tf.float32) + 1.0) / 2.0, 0.0, 1.0)
