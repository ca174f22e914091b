import numpy as np
import pytest
import tensorflow as tf

from sagan_tf.models import gan_losses

REAL = np.array([[2.0], [-1.0], [0.0], [30.0]], "float32")
WRONG = np.array([[0.5], [-3.0], [1.5], [-30.0]], "float32")
FAKE = np.array([[-2.0], [0.25], [4.0], [0.0]], "float32")


def bce_one(logits):
    # -log(sigmoid(x)) = log(1 + exp(-x))
    return np.logaddexp(0.0, -logits.astype("float64")).ravel()


def bce_zero(logits):
    # -log(1 - sigmoid(x)) = log(1 + exp(x))
    return np.logaddexp(0.0, logits.astype("float64")).ravel()


def test_discriminator_loss_matches_hand_computation():
    expected = bce_one(REAL) + 0.5 * (bce_zero(WRONG) + bce_zero(FAKE))
    loss = gan_losses.discriminator_loss(REAL, WRONG, FAKE)
    assert loss.dtype == "float32"
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # e.g. the first example: log(1+e^-2) + (log(1+e^0.5) + log(1+e^-2)) / 2
    np.testing.assert_allclose(loss[0], 0.126928 + 0.5 * (0.974077 + 0.126928), rtol=1e-5)


def test_generator_loss_is_non_saturating():
    loss = gan_losses.generator_loss(FAKE)
    np.testing.assert_allclose(loss, bce_one(FAKE), rtol=1e-5)
    # -log D(G(z)): large where D confidently rejects the fake, unlike log(1 - D).
    confidently_rejected = np.array([[-30.0]], "float32")
    np.testing.assert_allclose(gan_losses.generator_loss(confidently_rejected), [30.0], rtol=1e-5)


def test_perfect_discriminator_has_near_zero_loss():
    sure, rejected = np.full((2, 1), 40.0), np.full((2, 1), -40.0)
    loss = gan_losses.discriminator_loss(sure, rejected, rejected)
    np.testing.assert_allclose(loss, 0.0, atol=1e-6)


def test_chance_level_losses():
    zeros = np.zeros((3, 1), "float32")
    d_loss = gan_losses.discriminator_loss(zeros, zeros, zeros)
    np.testing.assert_allclose(d_loss, 2 * np.log(2), rtol=1e-6)
    np.testing.assert_allclose(gan_losses.generator_loss(zeros), np.log(2), rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_low_precision_logits_give_float32_losses(dtype):
    real, wrong, fake = (tf.constant(x, dtype) for x in (REAL, WRONG, FAKE))
    d_loss = gan_losses.discriminator_loss(real, wrong, fake)
    g_loss = gan_losses.generator_loss(fake)
    assert d_loss.dtype == "float32" and g_loss.dtype == "float32"
    expected = gan_losses.discriminator_loss(
        *(tf.cast(x, "float32") for x in (real, wrong, fake)))
    np.testing.assert_allclose(d_loss, expected, rtol=1e-6)


def test_flat_and_column_logits_agree():
    np.testing.assert_allclose(
        gan_losses.generator_loss(FAKE.ravel()), gan_losses.generator_loss(FAKE), rtol=1e-6)


def test_global_batch_mean_without_a_strategy_is_the_mean():
    per_example = tf.constant([1.0, 2.0, 3.0, 6.0])
    np.testing.assert_allclose(gan_losses.global_batch_mean(per_example), 3.0)


def test_class_loss_is_softmax_cross_entropy():
    logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]], "float32")
    labels = np.array([0, 1])
    log_softmax = logits - np.log(np.exp(logits.astype("float64")).sum(-1, keepdims=True))
    loss = gan_losses.class_loss(tf.constant(logits, tf.bfloat16), labels)
    assert loss.dtype == "float32"
    np.testing.assert_allclose(loss, -log_softmax[[0, 1], labels], rtol=2e-2)
    np.testing.assert_allclose(gan_losses.class_loss(logits, labels), -log_softmax[[0, 1], labels], rtol=1e-5)
