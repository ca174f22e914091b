"""Inception-v3 logits and pool features for Inception Score and FID."""

import os
import warnings

import keras
import numpy as np

from sagan_tf import errors

INCEPTION_INPUT_SIZE = 299
KERAS_IMAGENET_WEIGHTS = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
KERAS_IMAGENET_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
    + KERAS_IMAGENET_WEIGHTS
)


@keras.saving.register_keras_serializable(package="sagan_tf")
class InceptionFeatures(keras.Model):
    """Maps images in [-1, 1] of any size to `(logits, pool)`.

    `logits` [N, num_classes] are the classifier's pre-softmax outputs (for the
    Inception Score), `pool` [N, 2048] its global-average-pool features (for
    FID). Images are resized bilinearly to 299x299 first, as the published
    protocol does; Inception-v3 itself expects inputs in [-1, 1], the range
    of our generator, so no other preprocessing is needed.

    Args:
        weights_path: a local Keras weights file for the full Inception-v3
            (with its classification top), e.g. the ImageNet
            `inception_v3_weights_tf_dim_ordering_tf_kernels.h5`. `None` gives
            random weights (tests only). Nothing is ever downloaded.
        num_classes: size of the classification top stored in the file
            (1000 for ImageNet; `eval.inception_classes` for a fine-tuned one).
    """

    def __init__(self, weights_path=None, num_classes=1000, **kwargs):
        if weights_path is not None and not os.path.isfile(weights_path):
            raise FileNotFoundError(
                f"Inception-v3 weights file not found: {weights_path!r}. Weights are never "
                f"downloaded at run time: fetch the Keras ImageNet file {KERAS_IMAGENET_WEIGHTS} "
                f"({KERAS_IMAGENET_WEIGHTS_URL}; keras also caches it in ~/.keras/models/) on a "
                "machine with internet access and pass its local path."
            )
        try:
            with warnings.catch_warnings():
                # Keras warns once per layer before it fails on a file of another network.
                warnings.simplefilter("ignore")
                inception = keras.applications.InceptionV3(
                    include_top=True, weights=weights_path, classes=num_classes
                )
        except (OSError, ValueError) as error:
            raise ValueError(
                f"cannot load {weights_path} as the weights of Inception-v3 with a {num_classes}-class "
                f"top ({errors.first_line(error)}); eval.inception_weights must name a Keras weights file of the whole "
                "network, top included, and eval.inception_classes its class count"
            ) from None
        pool_network = keras.Model(
            inception.input, inception.get_layer("avg_pool").output, name="inception_v3_pool"
        )
        # The top Dense applies softmax; a linear copy of it yields the logits.
        predictions = inception.get_layer("predictions")
        logits_layer = keras.layers.Dense(num_classes, name="logits")

        images = keras.Input(shape=(None, None, 3), name="images")
        resized = keras.layers.Resizing(
            INCEPTION_INPUT_SIZE, INCEPTION_INPUT_SIZE, interpolation="bilinear", name="resize"
        )(images)
        pool = pool_network(resized)
        logits = logits_layer(pool)
        logits_layer.set_weights(predictions.get_weights())
        super().__init__(inputs=images, outputs=(logits, pool), **kwargs)

        self.weights_path = weights_path
        self.num_classes = num_classes

    def compute(self, images, batch_size=50, verbose=False):
        """Returns `(logits, pool)` NumPy arrays for `images` [N, H, W, 3] in [-1, 1]."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3 or images.shape[0] == 0:
            raise ValueError(
                f"images must be a non-empty [N, height, width, 3] array, got shape {images.shape}."
            )
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(
                f"images must be floats in [-1, 1], got dtype {images.dtype} "
                "(scale uint8 pixels with x / 127.5 - 1)."
            )
        low, high = float(images.min()), float(images.max())
        # A little slack for rounding at the ends of a tanh output.
        if low < -1.001 or high > 1.001:
            raise ValueError(f"images must lie in [-1, 1], got values in [{low:.3g}, {high:.3g}].")
        logits, pool = self.predict(
            images.astype(np.float32), batch_size=batch_size, verbose=1 if verbose else 0
        )
        return logits, pool

    def get_config(self):
        return {
            "weights_path": self.weights_path,
            "num_classes": self.num_classes,
            "name": self.name,
            "trainable": self.trainable,
        }
