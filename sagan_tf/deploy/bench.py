"""Size and speed of the TFLite variants against the Keras model, in one run.

Every variant is exported for batch 1 into a scratch folder and timed with
the standard interpreter; the Keras reference is the same encoder and
generator as one compiled `tf.function`. Latency is the median of `runs`
calls after a warm-up, in milliseconds per image. A benchmark, not a test:
the targets below are reported as met or not, never asserted.
"""

import os
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

from sagan_tf.deploy import tflite
from sagan_tf.inference import TextToImage

# Targets of the deployment issue: text -> image with dynamic_int8 in at
# most 5 ms per image on the development CPU, and file sizes relative to
# float32.
TARGET_INT8_MS = 5.0
TARGET_SIZE_RATIO = {"float16": 0.52, "dynamic_int8": 0.27}
WARMUP_RUNS = 5


def median_ms(call, runs):
    """Median wall time of `call()` in milliseconds, after a warm-up."""
    for _ in range(WARMUP_RUNS):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def keras_latency(model, token_ids, vectors, noise, runs):
    """(text -> image, vector -> image) in ms per image for the Keras models."""
    text_to_image = tf.function(model.text_to_image)
    generate = tf.function(lambda phi, z: model.generator([z, phi], training=False))
    return (median_ms(lambda: text_to_image(token_ids, noise).numpy(), runs),
            median_ms(lambda: generate(vectors, noise).numpy(), runs))


def bench_export(workdir, config, runs=50, threads=2, checkpoint=None):
    """Exports every TFLite variant (batch 1) and times it against Keras.

    Args:
        workdir: a `Workdir` with a trained encoder and generator.
        config: its `Config`.
        runs: timed calls per model (the median is reported).
        threads: interpreter threads.
        checkpoint: a generator .keras file (default: the latest).

    Returns:
        A dict: `keras` (ms per image), `variants` (per quantization: file
        bytes, size ratio to float32, ms per image, max and mean error vs
        Keras) and `targets` (each target with its measured value and
        whether it is met).
    """
    if runs < 1 or threads < 1:
        raise ValueError(f"runs and threads must be at least 1, got runs={runs}, threads={threads}")
    model = TextToImage.from_workdir(workdir, config, checkpoint)
    token_ids = model.token_ids(["a caption to time"])
    noise = np.asarray(model.noise(1, seed=0), np.float32)
    vectors = np.asarray(model.encoder(token_ids, training=False))
    keras_text_ms, keras_generator_ms = keras_latency(model, token_ids, vectors, noise, runs)

    variants = {}
    with tempfile.TemporaryDirectory() as scratch:
        for quantize in tflite.QUANTIZATIONS:
            out_dir = os.path.join(scratch, quantize)
            card = tflite.export_tflite(workdir, config, out_dir, quantize, batch=1, checkpoint=checkpoint)
            text_to_image = tflite.signature_runner(os.path.join(out_dir, tflite.TEXT_TO_IMAGE_FILE), threads)
            generate = tflite.signature_runner(os.path.join(out_dir, tflite.GENERATOR_FILE), threads)
            models = card["models"]
            variants[quantize] = {
                "text2image_bytes": models[tflite.TEXT_TO_IMAGE_FILE]["bytes"],
                "generator_bytes": models[tflite.GENERATOR_FILE]["bytes"],
                "text2image_ms": median_ms(lambda: text_to_image(token_ids=token_ids, noise=noise), runs),
                "generator_ms": median_ms(lambda: generate(sentence_vector=vectors, noise=noise), runs),
                "text2image_max_abs_error": models[tflite.TEXT_TO_IMAGE_FILE]["max_abs_error_vs_keras"],
                "generator_max_abs_error": models[tflite.GENERATOR_FILE]["max_abs_error_vs_keras"],
                "text2image_mean_abs_error": models[tflite.TEXT_TO_IMAGE_FILE]["mean_abs_error_vs_keras"],
                "generator_mean_abs_error": models[tflite.GENERATOR_FILE]["mean_abs_error_vs_keras"],
            }
    float32_bytes = variants["none"]["text2image_bytes"]
    for variant in variants.values():
        variant["size_ratio"] = variant["text2image_bytes"] / float32_bytes

    targets = {
        "dynamic_int8_text2image_ms": _target(variants["dynamic_int8"]["text2image_ms"], TARGET_INT8_MS),
        **{f"{quantize}_size_ratio": _target(variants[quantize]["size_ratio"], limit)
           for quantize, limit in TARGET_SIZE_RATIO.items()},
    }
    return {
        "runs": runs,
        "threads": threads,
        "batch": 1,
        "keras": {"text2image_ms": keras_text_ms, "generator_ms": keras_generator_ms},
        "variants": variants,
        "targets": targets,
    }


def _target(value, limit):
    return {"value": value, "limit": limit, "met": value <= limit}
