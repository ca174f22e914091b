"""Import tensorflow-gan on a TensorFlow without `tf.estimator`.

tensorflow-gan 2.1.0 defines its Estimator wrappers at import time by
subclassing Estimator classes, but `tf.estimator` was removed in TF 2.16, so
`import tensorflow_gan` fails with an AttributeError before its `eval`
functions (which do not use Estimators at all) can be reached.

Importing the package touches exactly three classes, only as base classes:

- `tf.estimator.Estimator` (`GANEstimator`, `StarGANEstimator`)
- `tf.estimator.SessionRunHook` (`RunTrainOpsHook`)
- `tf.compat.v1.estimator.tpu.TPUEstimator` (`TPUGANEstimator`)

When `tf.estimator` / `tf.compat.v1.estimator` are absent, this module installs
stand-in modules holding one placeholder class under those names, then
imports tensorflow-gan. Constructing any of tfgan's Estimator classes raises a
clear error; every other tfgan API is untouched. On a TensorFlow that still
ships `tf.estimator`, nothing is installed.

Usage: `from sagan_tf.evaluation.tfgan_compat import tfgan`.
"""

import types

import tensorflow as tf

# `import tensorflow.compat.v1` rebinds `tf.compat.v1` to a different module
# object; import it first so the stand-in is set on the object tfgan sees.
import tensorflow.compat.v1 as tf_v1


class _RemovedEstimator:
    """Base-class placeholder for the Estimator classes removed in TF 2.16."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError(
            f"{type(self).__name__} needs tf.estimator, which TensorFlow "
            f"{tf.__version__} no longer has (removed in TF 2.16)."
        )


def _stand_in(name, **attributes):
    module = types.ModuleType(name, "Stand-in installed by sagan_tf.evaluation.tfgan_compat.")
    module.__dict__.update(attributes)
    return module


if not hasattr(tf, "estimator"):
    tf.estimator = _stand_in(
        "tensorflow.estimator",
        Estimator=_RemovedEstimator,
        SessionRunHook=_RemovedEstimator,
    )
if not hasattr(tf_v1, "estimator"):
    tf_v1.estimator = _stand_in(
        "tensorflow.compat.v1.estimator",
        tpu=_stand_in("tensorflow.compat.v1.estimator.tpu", TPUEstimator=_RemovedEstimator),
    )

import tensorflow_gan as tfgan  # noqa: E402  (needs the stand-in above)

__all__ = ["tfgan"]
