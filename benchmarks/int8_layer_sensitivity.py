"""Which layers' 8-bit weights move the picture: rounding one layer at a time.

`sagan-tf export --quantize dynamic_int8` stores weights in 8 bits: symmetric,
one scale per output channel (one per tensor for the embedding table), and
only tensors of at least 1,024 elements, as the TF 2.21 converter does. This
rounds the weights of one layer of a trained workdir's Keras encoder and
generator at a time in that way, keeps every other weight and all
activations in float32, and reports how far the images move (max and mean
|rounded - float| on [-1, 1]); then all layers together. A layer whose
rounding alone moves a pixel by more than a target no converter setting
can meet that target with 8-bit weights. Last, the exported int8 file's
error when the Keras weights already sit on the int8 grid (as
quantization-aware training would leave them): what activation
quantization alone costs.

    python benchmarks/int8_layer_sensitivity.py --workdir runs/shapes
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile

import keras
import numpy as np

from sagan_tf import config as config_lib, errors
from sagan_tf.deploy import tflite
from sagan_tf.inference import TextToImage
from sagan_tf.workdir import Workdir

# The converter leaves smaller weight tensors in float32.
MIN_QUANTIZED_ELEMENTS = 1024


def round_to_int8(weights, axis):
    """`weights` rounded to 127 symmetric levels per slice along `axis` (None: per tensor)."""
    weights = np.asarray(weights, np.float32)
    reduce = None if axis is None else tuple(i for i in range(weights.ndim) if i != axis % weights.ndim)
    scale = np.abs(weights).max(axis=reduce, keepdims=True) / 127.0
    scale = np.where(scale == 0, 1.0, scale)
    return np.round(weights / scale) * scale


def output_channel_axis(layer):
    """The axis TFLite keeps one scale per, for a layer's kernels."""
    if isinstance(layer, keras.layers.Embedding):
        return None
    # Keras stores transposed-convolution kernels as (h, w, out, in).
    return -2 if isinstance(layer, keras.layers.Conv2DTranspose) else -1


def is_quantized(weight, min_elements):
    """Whether the converter stores `weight` (a variable or array) in int8."""
    return len(weight.shape) >= 2 and np.prod(weight.shape) >= min_elements


def quantized_layers(model, min_elements):
    """(name, layer) of every leaf layer of `model` with a weight of `min_elements` or more."""
    # Keras has no public walk over nested layers (Bidirectional -> LSTM -> cell).
    for layer in model._flatten_layers(include_self=False):
        if layer._flatten_layers(include_self=False):
            continue
        if any(is_quantized(w, min_elements) for w in layer.weights):
            # A loaded model's paths may or may not start with its own name.
            path = layer.path if layer.path.startswith(f"{model.name}/") else f"{model.name}/{layer.path}"
            yield path, layer


def rounded_weights(layer, min_elements):
    axis = output_channel_axis(layer)
    return [round_to_int8(w, axis) if is_quantized(w, min_elements) else w for w in layer.get_weights()]


def model_layers(model, min_elements):
    """(name, layer) of the quantized layers of a TextToImage's encoder and generator."""
    return [*quantized_layers(model.encoder, min_elements), *quantized_layers(model.generator, min_elements)]


@contextlib.contextmanager
def rounded(layers, min_elements):
    """`layers` hold their int8-rounded weights inside the block, their own after it."""
    originals = [layer.get_weights() for layer in layers]
    try:
        for layer in layers:
            layer.set_weights(rounded_weights(layer, min_elements))
        yield
    finally:
        for layer, weights in zip(layers, originals):
            layer.set_weights(weights)


def sensitivity(model, images=64, seed=0, min_elements=MIN_QUANTIZED_ELEMENTS):
    """{"layers": [{layer, class, elements, max, mean}], "all": {max, mean}} for a TextToImage."""
    token_ids, noise = tflite.parity_inputs(model, images, np.random.default_rng(seed))

    def generate():
        return np.asarray(model.text_to_image(token_ids, noise))

    reference = generate()

    def change():
        moved = np.abs(generate() - reference)
        return {"max": round(float(moved.max()), 4), "mean": round(float(moved.mean()), 5)}

    rows = []
    layers = model_layers(model, min_elements)
    for name, layer in layers:
        with rounded([layer], min_elements):
            rows.append({"layer": name, "class": type(layer).__name__,
                         "elements": int(sum(np.prod(w.shape) for w in layer.weights)), **change()})
    with rounded([layer for _, layer in layers], min_elements):
        together = change()
    return {"images": images, "layers": rows, "all": together}


def activation_error(model, batch=1, min_elements=MIN_QUANTIZED_ELEMENTS):
    """{file: {max, mean}} |TFLite int8 - Keras| with Keras's weights already on the int8 grid.

    Quantization-aware training would leave the weights there, so the
    converter's rounding changes nothing and what remains is the on-the-fly
    quantization of activations: the least error such training could reach.
    """
    with rounded([layer for _, layer in model_layers(model, min_elements)], min_elements), \
            tempfile.TemporaryDirectory() as scratch:
        saved_model_dir = os.path.join(scratch, "savedmodel")
        tflite.build_archive(model, batch).write_out(saved_model_dir, verbose=False)
        paths = tflite.convert_models(saved_model_dir, scratch, "dynamic_int8")
        return {name: {statistic: round(value, 4) for statistic, value in errors.items()}
                for name, errors in tflite.measure_parity(model, paths, batch).items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a workdir with a trained encoder and GAN")
    parser.add_argument("--images", type=int, default=64, help="images the changes are measured on")
    args = parser.parse_args(argv)
    workdir = Workdir(args.workdir)
    model = TextToImage.from_workdir(workdir, config_lib.load(workdir.config_path))
    print(json.dumps({"workdir": os.path.abspath(args.workdir), **sensitivity(model, args.images),
                      "tflite_int8_with_weights_on_the_grid": activation_error(model)}, indent=1))


if __name__ == "__main__":
    sys.exit(errors.exit_status(main))
