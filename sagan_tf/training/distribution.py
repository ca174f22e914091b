"""Choosing a tf.distribute strategy, and what Keras 3 multi-worker fit() needs.

Keras 3.15 `fit()` fails under MultiWorkerMirroredStrategy in two places
(keras-team/keras#20585, tensorflow/tensorflow#72388). Both workarounds live
here and nowhere else:

1. Before the first step, fit() "symbolically builds" the model from one
   batch, which it first averages over replicas with `strategy.reduce`; in
   multi-worker mode that reduce cannot take a dict or tuple batch
   ("Attempt to convert a value ({'image': PerReplica...}) to a Tensor").
   `MultiWorkerFit` skips the step for models that are already built: there
   is nothing left to build.
2. After each step, fit() averages the step logs over workers with
   `strategy.reduce("MEAN", value, axis=0)`, which fails on the scalars a
   `train_step` returns ("Invalid reduction dimension 0 for input with 0
   dimensions"). `reducible_logs` gives them shape [1] in multi-worker mode;
   the reduction turns them back into scalars.

Both can go once Keras handles these cases itself.

`host_fed_dataset` hands fit() input that keeps its tf.data options (see
there).
"""

import json
import os

import tensorflow as tf


def _cluster():
    """(cluster {job: addresses}, task type, task index) from TF_CONFIG, read by TF's
    own resolver, the one MultiWorkerMirroredStrategy reads it with ({}, None, None when unset)."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():  # unset, or set empty as job templates do
        return {}, None, None
    refused = ValueError(f"TF_CONFIG is not a JSON object with a 'cluster' entry: {raw!r}")
    try:
        # The resolver would read a JSON list as "no cluster" and train on one machine.
        if not isinstance(json.loads(raw), dict):
            raise refused
        resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
        return resolver.cluster_spec().as_dict(), resolver.task_type, resolver.task_id
    except (ValueError, TypeError, AttributeError):  # not JSON, or not a mapping where one belongs
        raise refused from None


def cluster_workers():
    """Number of workers (chief included) TF_CONFIG names; 0 when it is unset."""
    cluster, _, _ = _cluster()
    return len(cluster.get("worker", ())) + len(cluster.get("chief", ()))


def worker_index():
    """This process's rank in the cluster: 0 for the chief (or the first
    worker when there is no chief) and without TF_CONFIG."""
    cluster, task_type, task_index = _cluster()
    if task_type == "chief":
        return 0
    return (task_index or 0) + bool(cluster.get("chief"))


def strategy_from_environment():
    """MultiWorkerMirroredStrategy if TF_CONFIG names several workers, else
    MirroredStrategy over all local GPUs (or the CPU when there is none)."""
    if cluster_workers() > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.MirroredStrategy()


def host_fed_dataset(strategy, make_dataset, global_batch_size):
    """Input for fit() under `strategy` that keeps the options it was built with.

    Given a plain dataset, Keras distributes it through a MultiDeviceIterator,
    whose per-device datasets carry TF's default options, autotuning
    included; in TF 2.21 their autotuning thread held fit() idle for up to a
    minute when Keras released the iterator (`pipeline.without_autotune_thread`).
    Built per replica (`InputReplicationMode.PER_REPLICA`) and not fetched
    to the device by tf.data, each replica reads a plain iterator of
    `make_dataset(per_replica_batch_size, shard_index, num_shards)`.
    MultiWorkerMirroredStrategy has no per-replica input, so there the
    dataset goes to Keras as it is (one shard, the global batch).
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return make_dataset(global_batch_size, 0, 1)
    options = tf.distribute.InputOptions(
        experimental_fetch_to_device=False,
        experimental_replication_mode=tf.distribute.InputReplicationMode.PER_REPLICA)
    return strategy.distribute_datasets_from_function(
        lambda context: make_dataset(context.get_per_replica_batch_size(global_batch_size),
                                     context.input_pipeline_id, context.num_input_pipelines),
        options)


def in_multi_worker_mode(strategy=None):
    """Whether Keras fit() takes its multi-worker code path under `strategy`
    (default: the current one). The same test Keras itself makes."""
    strategy = strategy or tf.distribute.get_strategy()
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def reducible_logs(logs):
    """Returns `train_step` / `test_step` logs that fit() can average over workers."""
    if not in_multi_worker_mode():
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


class MultiWorkerFit:
    """Mixin, listed before keras.Model, for models built at construction.

    Skips fit()'s symbolic build (see the module docstring, point 1). The
    model must be built, and its optimizers built, before fit().
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
