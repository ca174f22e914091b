"""Choosing a tf.distribute strategy, and what Keras 3 multi-worker fit() needs."""

import json
import os

import tensorflow as tf


def cluster_workers():
    """Number of workers TF_CONFIG names (0 when it is unset)."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (ValueError, AttributeError):
        raise ValueError(f"TF_CONFIG is not a JSON object: {raw!r}") from None
    return len(cluster.get("worker", ())) + len(cluster.get("chief", ()))


def strategy_from_environment():
    """MultiWorkerMirroredStrategy if TF_CONFIG names several workers, else MirroredStrategy."""
    if cluster_workers() > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    # All local GPUs, or the CPU when there are none.
    return tf.distribute.MirroredStrategy()


def in_multi_worker_mode(strategy=None):
    strategy = strategy or tf.distribute.get_strategy()
    return isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ) and strategy.extended._in_multi_worker_mode()


def reducible_logs(logs):
    """Step logs that Keras 3 fit() can reduce across workers.

    Under MultiWorkerMirroredStrategy Keras reduces each log value with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on the scalars a
    train_step returns (keras-team/keras#20585). Rank-1 values reduce to
    the same scalar; elsewhere the logs pass unchanged.
    """
    if not in_multi_worker_mode():
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


class MultiWorkerFit:
    """Mixin (before keras.Model in the bases) for a model built at construction."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
