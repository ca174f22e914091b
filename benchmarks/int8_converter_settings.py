"""Dynamic-range int8 TFLite: the converter's quantization settings against parity.

`sagan-tf export --quantize dynamic_int8` uses the converter's defaults (the
MLIR dynamic-range quantizer, per-channel weight scales). This converts the
two TFLite models of a trained workdir once per setting below and reports
each file's largest |TFLite - Keras| on [-1, 1] images (the same measurement
as the model card) and its size, so that a user who needs a tighter int8
model sees what the converter's switches buy:

    python benchmarks/int8_converter_settings.py --workdir runs/shapes

The switches other than the default are private converter attributes of
TF 2.21 (underscore names or experimental ones); they may change without
notice, which is why the exporter does not offer them.
"""

import argparse
import json
import os
import sys
import tempfile

from sagan_tf import config as config_lib, errors
from sagan_tf.deploy import tflite
from sagan_tf.inference import TextToImage
from sagan_tf.workdir import Workdir

SETTINGS = {
    "default": {},
    "legacy_quantizer": {"experimental_new_dynamic_range_quantizer": False},
    "per_tensor_weights": {"_experimental_disable_per_channel": True},
    "per_tensor_dense_weights": {"_experimental_disable_per_channel_quantization_for_dense_layers": True},
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a workdir with a trained encoder and GAN")
    parser.add_argument("--batch", type=int, default=1)
    args = parser.parse_args(argv)
    workdir = Workdir(args.workdir)
    model = TextToImage.from_workdir(workdir, config_lib.load(workdir.config_path))
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        saved_model_dir = os.path.join(scratch, "savedmodel")
        tflite.build_archive(model, args.batch).write_out(saved_model_dir, verbose=False)
        for setting, flags in SETTINGS.items():
            out_dir = os.path.join(scratch, setting)
            os.makedirs(out_dir)
            paths = tflite.convert_models(saved_model_dir, out_dir, "dynamic_int8", **flags)
            errors = tflite.measure_parity(model, paths, args.batch)
            results[setting] = {name: {"max_abs_error": round(errors[name]["max"], 4),
                                       "mean_abs_error": round(errors[name]["mean"], 4),
                                       "bytes": os.path.getsize(path)}
                                for name, path in paths.items()}
    print(json.dumps({"workdir": os.path.abspath(args.workdir), "batch": args.batch,
                      "settings": {name: SETTINGS[name] for name in SETTINGS}, "results": results},
                     indent=1))


if __name__ == "__main__":
    sys.exit(errors.exit_status(main))
