"""Training-step throughput: images/second of full GAN-CLS steps.

Times `fit` steps on in-memory batches of images and precomputed sentence
vectors (the GAN stage's real input), warm-up excluded, for plain graph
mode, XLA (`jit_compile`) and mixed_bfloat16, in one process and one run.
"""

import dataclasses
import time

import keras
import numpy as np
import tensorflow as tf

from sagan_tf.training import gan_training, precision

MODES = {
    "graph": dict(precision="float32", jit_compile=False),
    "xla": dict(precision="float32", jit_compile=True),
    "mixed_bfloat16": dict(precision="mixed_bfloat16", jit_compile=False),
}


class _StepTimer(keras.callbacks.Callback):
    def __init__(self, warmup):
        super().__init__()
        self.warmup = warmup
        self.start = self.end = None

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.warmup - 1:
            self.start = time.perf_counter()
        self.end = time.perf_counter()


# Classes of the synthetic labels, CUB's species count: sizes D's class head
# when the config turns on gan.class_loss_weight.
SYNTHETIC_CLASSES = 200


def synthetic_batches(batch_size, image_size, condition_dim, seed=0):
    rng = np.random.default_rng(seed)
    count = 4 * batch_size
    data = {
        "image": rng.uniform(-1, 1, (count, image_size, image_size, 3)).astype(np.float32),
        "embedding": rng.uniform(-1, 1, (count, condition_dim)).astype(np.float32),
        "wrong_embedding": rng.uniform(-1, 1, (count, condition_dim)).astype(np.float32),
        "label": rng.integers(0, SYNTHETIC_CLASSES, count).astype(np.int32),
    }
    return tf.data.Dataset.from_tensor_slices(data).batch(batch_size, drop_remainder=True).repeat()


def images_per_second(config, mode, steps=10, warmup=3):
    """Throughput of one mode at the config's sizes (SPEC sizes by default)."""
    # The first step traces the graph: it is never timed.
    if steps < 1 or warmup < 1:
        raise ValueError(f"steps and warmup must be at least 1 (got {steps} and {warmup})")
    settings = MODES[mode]
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, jit_compile=settings["jit_compile"]))
    with precision.policy_scope(settings["precision"]):
        gan = gan_training.build_gan(config, config.encoder.output_dim, tf.distribute.get_strategy(),
                                     SYNTHETIC_CLASSES)
        timer = _StepTimer(warmup)
        batches = synthetic_batches(config.train.batch_size, config.data.image_size, config.encoder.output_dim)
        gan.fit(batches, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[timer], shuffle=False)
    return steps * config.train.batch_size / (timer.end - timer.start)


def bench_train(config, modes=tuple(MODES), steps=10, warmup=3):
    results = {mode: round(images_per_second(config, mode, steps, warmup), 2) for mode in modes}
    return {
        "images_per_second": results,
        "batch_size": config.train.batch_size,
        "image_size": config.data.image_size,
        "ngf": config.gan.ngf,
        "ndf": config.gan.ndf,
        "steps": steps,
        "warmup": warmup,
        # mixed_bfloat16 is only fast with these (training/precision.py).
        "cpu_bfloat16_units": precision.native_bfloat16_cpu(precision.cpu_flags()),
        "what_auto_picks": precision.resolve("auto"),
    }
