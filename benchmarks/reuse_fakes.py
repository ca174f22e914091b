"""Fresh noise or reused fakes for the generator update: step speed, side by side.

`gan.reuse_fakes` lets the generator update back-propagate through the
images the discriminator update judged, one generator pass a step less.
This times full GAN-CLS steps (`sagan_tf.training.bench`) without and with
it, alternating for --rounds rounds in one process so that both see the
same machine load, and prints the median images/s of each and their ratio:

    python benchmarks/reuse_fakes.py                         # SPEC sizes, mixed_bfloat16
    python benchmarks/reuse_fakes.py --config configs/shapes.yaml --mode graph
"""

import argparse
import dataclasses
import json
import sys

import numpy as np

from sagan_tf import config as config_lib, errors
from sagan_tf.training import bench


def compare(config, mode="mixed_bfloat16", rounds=3, steps=20, warmup=3):
    """{"fresh_noise", "reused_fakes": median images/s, "ratio": reused / fresh, "runs": every figure}."""
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    variants = {"fresh_noise": False, "reused_fakes": True}
    configs = {name: dataclasses.replace(config, gan=dataclasses.replace(config.gan, reuse_fakes=reuse))
               for name, reuse in variants.items()}
    runs = {name: [] for name in variants}
    for _ in range(rounds):
        for name, variant in configs.items():
            runs[name].append(round(bench.images_per_second(variant, mode, steps, warmup), 2))
    medians = {name: float(np.median(figures)) for name, figures in runs.items()}
    return {"mode": mode, **medians, "ratio": round(medians["reused_fakes"] / medians["fresh_noise"], 3),
            "runs": runs, "steps": steps, "batch_size": config.train.batch_size,
            "image_size": config.data.image_size}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="YAML config (default: SPEC sizes)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--mode", default="mixed_bfloat16", choices=sorted(bench.MODES))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    args = parser.parse_args(argv)
    config = config_lib.load(args.config, args.set)
    print(json.dumps(compare(config, args.mode, args.rounds, args.steps)))


if __name__ == "__main__":
    sys.exit(errors.exit_status(main))
