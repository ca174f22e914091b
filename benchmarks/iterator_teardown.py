"""How long releasing the GAN's training iterator takes, with tf.data autotuning on and off.

fit() releases its training iterator when it returns; that is where TF 2.21
was reported to stall 10-40 s while tf.data's autotune thread winds down.
This consumes `sagan_tf.data.pipeline.gan_dataset` (the training pipeline:
repeated, shuffled, parallel map, prefetch) for a while at a training-like
pace, then times the release. `sagan-tf train-gan` records the same moment
inside fit() as `fit_teardown_seconds` in gan/results.json.

    python benchmarks/iterator_teardown.py --seconds 5 120
"""

import argparse
import gc
import json
import time

import numpy as np
import tensorflow as tf

from sagan_tf.data import pipeline


def training_pipeline(num_images, image_size, batch_size, autotune):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (num_images, image_size, image_size, 3), dtype=np.uint8)
    classes = rng.integers(0, 10, num_images).astype(np.int32)
    index = pipeline.CaptionIndex([""] * num_images, np.arange(num_images, dtype=np.int32), classes,
                                  np.arange(num_images + 1, dtype=np.int64))
    vectors = rng.normal(size=(num_images, 128)).astype(np.float32)
    ds = pipeline.gan_dataset(images, index, {"embedding": vectors}, batch_size, repeat=True)
    options = tf.data.Options()
    options.autotune.enabled = autotune
    return ds.with_options(options)


def teardown_seconds(ds, seconds, step_seconds):
    iterator = iter(ds)
    start = time.perf_counter()
    batches = 0
    while time.perf_counter() - start < seconds:
        next(iterator)
        batches += 1
        time.sleep(step_seconds)  # the training step's share of the time
    released = time.perf_counter()
    del iterator
    gc.collect()
    return batches, time.perf_counter() - released


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[5.0, 120.0],
                        help="how long to consume before the release")
    parser.add_argument("--step-seconds", type=float, default=0.05)
    parser.add_argument("--num-images", type=int, default=20000)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args(argv)
    rows = []
    for seconds in args.seconds:
        for autotune in (True, False):
            ds = training_pipeline(args.num_images, args.image_size, args.batch_size, autotune)
            batches, teardown = teardown_seconds(ds, seconds, args.step_seconds)
            rows.append({"autotune": autotune, "consumed_seconds": seconds, "batches": batches,
                         "teardown_seconds": round(teardown, 3)})
            print(json.dumps(rows[-1]), flush=True)


if __name__ == "__main__":
    main()
