"""Idle seconds where fit() releases data iterators, with and without the fix for TF 2.21's stall.

Runs `sagan-tf train-gan` twice on copies of a workdir that holds a trained
encoder (e.g. after `make run`): once as shipped (per-replica input from
`distribution.host_fed_dataset`, pipelines without tf.data autotuning) and
once as Keras and TF do by default (the plain dataset distributed by Keras,
autotuning on). Prints, per run, what gan/results.json records: the seconds
before each validation pass (the previous pass's iterator is released
there) and from the last epoch's end to fit()'s return.

    python benchmarks/iterator_release.py --workdir runs/shapes --epochs 6 --steps 200
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

from sagan_tf import cli, errors
from sagan_tf.data import pipeline
from sagan_tf.training import distribution


def train_copy(workdir, scratch, name, epochs, steps):
    copy = os.path.join(scratch, name)
    os.makedirs(copy)
    for part in ("config.yaml", "data", "encoder"):
        source = os.path.join(workdir, part)
        (shutil.copytree if os.path.isdir(source) else shutil.copy)(source, os.path.join(copy, part))
    if cli.main(["train-gan", "--workdir", copy, "--quiet", "--set", f"train.epochs={epochs}",
                 "--set", f"train.steps_per_epoch={steps}"]) != 0:
        raise SystemExit(f"train-gan failed in {copy}")
    with open(os.path.join(copy, "gan", "results.json")) as f:
        results = json.load(f)
    return {"pipelines": name, "epochs": epochs, "steps_per_epoch": steps,
            "validation_start_seconds": results["validation_start_seconds"],
            "fit_end_seconds": results["fit_end_seconds"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a workdir with a trained encoder")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=200, help="steps per epoch")
    args = parser.parse_args(argv)
    shipped = pipeline.without_autotune_thread, distribution.host_fed_dataset
    with tempfile.TemporaryDirectory() as scratch:
        print(json.dumps(train_copy(args.workdir, scratch, "shipped", args.epochs, args.steps)), flush=True)
        pipeline.without_autotune_thread = lambda ds: ds
        distribution.host_fed_dataset = lambda strategy, make_dataset, batch_size: make_dataset(batch_size, 0, 1)
        try:
            print(json.dumps(train_copy(args.workdir, scratch, "keras_default", args.epochs, args.steps)),
                  flush=True)
        finally:
            pipeline.without_autotune_thread, distribution.host_fed_dataset = shipped


if __name__ == "__main__":
    sys.exit(errors.exit_status(main))
