"""`sagan-tf bench train` and `sagan-tf bench export`: speed, not tests."""

import json
import os
import subprocess
import sys

from sagan_tf import cli
from sagan_tf.commands.common import flags, setup
from sagan_tf.config import load as load_config

TORCH_SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            "benchmarks", "torch_gan_step.py")


def _train_flags(parser):
    parser.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per mode")
    parser.add_argument("--modes", default="graph,xla,mixed_bfloat16", help="comma-separated")
    parser.add_argument("--torch", action="store_true",
                        help="also time the same step in PyTorch (benchmarks/torch_gan_step.py), side by side")


@cli.command("bench train", "images/second of full GAN training steps (SPEC sizes unless --config/--set)")
@flags(_train_flags)
def bench_train(args):
    from sagan_tf.training import bench

    # SPEC sizes by default, not the workdir's (possibly narrowed) config.
    config = load_config(args.config, args.overrides)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or len(set(modes)) != len(modes):
        raise ValueError(f"--modes must name each mode to time once, got {args.modes!r}")
    unknown = set(modes) - set(bench.MODES)
    if unknown:
        raise ValueError(f"unknown --modes {sorted(unknown)}; choose from {sorted(bench.MODES)}")
    if args.torch:
        torch_command(config, args.steps, args.warmup)  # refuses before the long timing
    result = bench.bench_train(config, modes, steps=args.steps, warmup=args.warmup)
    if args.torch:
        torch = _torch_images_per_second(config, args.steps, args.warmup)
        result["pytorch_images_per_second"] = torch
        result["speedup_vs_pytorch"] = {m: round(v / torch, 2) for m, v in result["images_per_second"].items()}
    for mode, value in result["images_per_second"].items():
        extra = f"  ({result['speedup_vs_pytorch'][mode]}x PyTorch)" if args.torch else ""
        print(f"{mode:>15}: {value:8.1f} images/s{extra}")
    if args.torch:
        print(f"{'pytorch':>15}: {result['pytorch_images_per_second']:8.1f} images/s")
    return result


def torch_command(config, steps, warmup):
    """The command line of the PyTorch reference for the step `config` describes."""
    if config.gan.class_loss_weight or config.gan.gan_int:
        raise ValueError("--torch compares plain GAN-CLS steps: the PyTorch reference has no class loss or "
                         "GAN-INT; set gan.class_loss_weight=0 and gan.gan_int=false")
    if not os.path.isfile(TORCH_SCRIPT):
        raise ValueError(f"--torch needs a source checkout: {TORCH_SCRIPT} is missing")
    command = [sys.executable, TORCH_SCRIPT, "--batch", str(config.train.batch_size),
               "--image-size", str(config.data.image_size), "--ngf", str(config.gan.ngf),
               "--ndf", str(config.gan.ndf), "--noise-dim", str(config.gan.noise_dim),
               "--condition-dim", str(config.encoder.output_dim),
               "--condition-units", str(config.gan.condition_units),
               "--steps", str(steps), "--warmup", str(warmup)]
    if config.gan.reuse_fakes:
        command.append("--reuse-fakes")
    return command


def _torch_images_per_second(config, steps, warmup):
    finished = subprocess.run(torch_command(config, steps, warmup), capture_output=True, text=True)
    if finished.returncode != 0:
        last_line = (finished.stderr.strip().splitlines() or [""])[-1]
        raise ValueError("the PyTorch reference failed (is torch installed? `pip install torch==2.13.0`): "
                         + last_line)
    return json.loads(finished.stdout.strip().splitlines()[-1])["images_per_second"]


def _export_flags(parser):
    parser.add_argument("--runs", type=int, default=50, help="timed runs per variant (median reported)")
    parser.add_argument("--threads", type=int, default=2)


@cli.command("bench export", "size and per-image latency of every export variant against Keras")
@flags(_export_flags)
def bench_export(args):
    from sagan_tf.deploy.bench import bench_export as run_bench

    workdir, config = setup(args)
    result = run_bench(workdir, config, runs=args.runs, threads=args.threads)
    print(f"batch 1, {result['threads']} threads, median of {result['runs']} runs; "
          "|TFLite - Keras| on images in [-1, 1] (text2image / generator)")
    print(f"{'variant':>13} {'text2image MB':>13} {'x float32':>9} {'text->image ms':>14} "
          f"{'generator ms':>12} {'max |error|':>17} {'mean |error|':>17}")
    keras_ms = result["keras"]
    print(f"{'keras':>13} {'-':>13} {'-':>9} {keras_ms['text2image_ms']:14.2f} {keras_ms['generator_ms']:12.2f}")
    for quantize, variant in result["variants"].items():
        errors = {statistic: f"{variant[f'text2image_{statistic}_abs_error']:.2g} / "
                             f"{variant[f'generator_{statistic}_abs_error']:.2g}" for statistic in ("max", "mean")}
        print(f"{quantize:>13} {variant['text2image_bytes'] / 1e6:13.1f} {variant['size_ratio']:9.2f} "
              f"{variant['text2image_ms']:14.2f} {variant['generator_ms']:12.2f} "
              f"{errors['max']:>17} {errors['mean']:>17}")
    for name, target in result["targets"].items():
        print(f"target {name}: {target['value']:.3g} (at most {target['limit']}): "
              f"{'met' if target['met'] else 'NOT met'}")
    return result
