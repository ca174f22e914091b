"""The tf.estimator stand-in lets tensorflow-gan import, and only when needed."""

import importlib
import types

import numpy as np
import pytest
import tensorflow as tf
import tensorflow.compat.v1 as tf_v1

from sagan_tf.evaluation import tfgan_compat
from sagan_tf.evaluation.tfgan_compat import tfgan

# The stand-in modules say in their docstring who installed them.
stand_in_installed = "tfgan_compat" in (tf.estimator.__doc__ or "")


def test_tfgan_eval_functions_are_usable():
    logits = tf.constant([[0.0, 0.0], [0.0, 0.0]], dtype=tf.float64)
    score = tfgan.eval.classifier_score_from_logits(logits)
    np.testing.assert_allclose(float(score), 1.0, rtol=1e-12)


@pytest.mark.skipif(not stand_in_installed, reason="this TensorFlow ships tf.estimator")
def test_stand_in_holds_only_what_tfgan_touches():
    def public(module):
        return sorted(name for name in vars(module) if not name.startswith("_"))

    assert public(tf.estimator) == ["Estimator", "SessionRunHook"]
    assert public(tf_v1.estimator) == ["tpu"]
    assert public(tf_v1.estimator.tpu) == ["TPUEstimator"]


@pytest.mark.skipif(not stand_in_installed, reason="this TensorFlow ships tf.estimator")
def test_tfgan_estimators_fail_clearly():
    noop = lambda *args, **kwargs: None  # noqa: E731
    with pytest.raises(NotImplementedError, match="GANEstimator needs tf.estimator"):
        tfgan.estimator.GANEstimator(
            generator_fn=noop,
            discriminator_fn=noop,
            generator_loss_fn=noop,
            discriminator_loss_fn=noop,
            generator_optimizer=noop,
            discriminator_optimizer=noop,
        )


def test_existing_tf_estimator_is_left_alone(monkeypatch):
    real_estimator = types.ModuleType("tensorflow.estimator")
    real_v1_estimator = types.ModuleType("tensorflow.compat.v1.estimator")
    monkeypatch.setattr(tf, "estimator", real_estimator)
    monkeypatch.setattr(tf_v1, "estimator", real_v1_estimator)
    importlib.reload(tfgan_compat)
    assert tf.estimator is real_estimator
    assert tf_v1.estimator is real_v1_estimator
    assert tfgan_compat.tfgan is tfgan
