"""InceptionFeatures: shapes, pre-softmax logits, weight loading, clear errors."""

import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from sagan_tf.evaluation.feature_networks import InceptionFeatures


@pytest.fixture(scope="module")
def inception_and_weights(tmp_path_factory):
    """A random Inception-v3 saved to a local file, with a top sharp enough to test.

    At random init the softmax is uniform to 1e-6, so the top is rescaled to
    give logits spread over several units.
    """
    keras.utils.set_random_seed(0)
    inception = keras.applications.InceptionV3(include_top=True, weights=None)
    top = inception.get_layer("predictions")
    top.kernel.assign(top.kernel * 3000.0)
    top.bias.assign(tf.random.normal(top.bias.shape))
    weights_path = str(tmp_path_factory.mktemp("inception") / "inception_v3.weights.h5")
    inception.save_weights(weights_path)
    return inception, weights_path


@pytest.fixture(scope="module")
def features(inception_and_weights):
    return InceptionFeatures(weights_path=inception_and_weights[1], name="inception_features")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(-1, 1, size=(2, 64, 64, 3)).astype(np.float32)


def test_logits_and_pool_match_the_full_classifier(inception_and_weights, features, images):
    inception, _ = inception_and_weights
    logits, pool = features.compute(images, batch_size=1)

    assert logits.shape == (2, 1000) and pool.shape == (2, 2048)
    assert logits.std() > 1.0  # a non-trivial softmax, so the check below means something
    resized = tf.image.resize(images, (299, 299), method="bilinear")
    probabilities = inception.predict(resized, verbose=0)
    np.testing.assert_allclose(scipy.special.softmax(logits, axis=1), probabilities, atol=1e-5)
    np.testing.assert_array_equal(logits.argmax(axis=1), probabilities.argmax(axis=1))


def test_config_round_trip_rebuilds_the_same_network(inception_and_weights, features, images):
    config = features.get_config()
    assert config["weights_path"] == inception_and_weights[1]
    assert config["num_classes"] == 1000

    rebuilt = InceptionFeatures.from_config(config)
    assert rebuilt.get_config() == config
    for original, copy in zip(features.compute(images), rebuilt.compute(images)):
        np.testing.assert_allclose(copy, original, rtol=1e-5, atol=1e-6)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    missing = str(tmp_path / "nowhere.h5")
    with pytest.raises(FileNotFoundError, match="never downloaded") as error:
        InceptionFeatures(weights_path=missing)
    assert missing in str(error.value)
    assert "inception_v3_weights_tf_dim_ordering_tf_kernels.h5" in str(error.value)


def test_a_file_that_is_not_the_networks_weights_is_a_clear_error(tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_text("not weights")
    with pytest.raises(ValueError, match=f"cannot load {garbage} as the weights of Inception-v3 with a "
                                         "1000-class top .* eval.inception_classes"):
        InceptionFeatures(weights_path=str(garbage))


def test_a_fine_tuned_top_loads_with_its_class_count(tmp_path, images):
    keras.utils.set_random_seed(1)
    fine_tuned = keras.applications.InceptionV3(include_top=True, weights=None, classes=10)
    path = str(tmp_path / "fine_tuned.weights.h5")
    fine_tuned.save_weights(path)
    with pytest.raises(ValueError, match="with a 1000-class top"):
        InceptionFeatures(weights_path=path)
    logits, _ = InceptionFeatures(weights_path=path, num_classes=10).compute(images)
    resized = tf.image.resize(images, (299, 299), method="bilinear")
    np.testing.assert_allclose(scipy.special.softmax(logits, axis=1), fine_tuned.predict(resized, verbose=0),
                               atol=1e-6)


@pytest.mark.parametrize(
    "bad_images, message",
    [
        (np.zeros((2, 64, 64), np.float32), r"\[N, height, width, 3\]"),
        (np.zeros((2, 64, 64, 3), np.uint8), "x / 127.5 - 1"),
        (np.full((2, 64, 64, 3), 255.0, np.float32), r"\[-1, 1\]"),
    ],
)
def test_compute_rejects_bad_images(features, bad_images, message):
    with pytest.raises(ValueError, match=message):
        features.compute(bad_images)


def test_random_weights_without_a_file():
    features = InceptionFeatures(num_classes=10)
    assert features.get_config()["weights_path"] is None
    assert [output.shape for output in features.outputs] == [(None, 10), (None, 2048)]
