"""`sagan-tf train-gan` and `sagan-tf generate`."""

import sys

from sagan_tf import cli
from sagan_tf.commands.common import (
    flags,
    out_path,
    quiet_flag,
    setup,
    setup_with_dataset,
    verbosity,
)

# Larger grids are unreadable (and a figure that size exhausts memory).
MAX_GRID_SIDE = 64


@cli.command("train-gan", "train the GAN (GAN-CLS) on the frozen encoder's sentence vectors")
@flags(quiet_flag)
def train_gan(args):
    from sagan_tf.training import gan_training

    workdir, config, dataset = setup_with_dataset(args)
    result = gan_training.train_gan(workdir, config, dataset, verbose=verbosity(args, 2))
    print(f"trained {result['epochs']} epochs ({result['optimizer_steps']} steps); "
          f"generator: {result['checkpoint']}")
    return result


def _generate_flags(parser):
    parser.add_argument("captions", nargs="*", help=f"captions, one grid row each (at most {MAX_GRID_SIDE})")
    parser.add_argument("--n", type=int, default=8, help=f"samples per caption (at most {MAX_GRID_SIDE})")
    parser.add_argument("--seed", type=int, default=0, help="noise seed: the same seed gives the same pictures")
    parser.add_argument("--out", default=None, help="PNG path (default: <workdir>/generated.png)")
    parser.add_argument("--checkpoint", default=None, help="generator .keras file (default: the latest)")
    parser.add_argument("--interpolate", nargs=2, metavar=("CAPTION_A", "CAPTION_B"),
                        help="walk between the sentence vectors of two captions")
    parser.add_argument("--steps", type=int, default=8, help=f"interpolation steps (2 to {MAX_GRID_SIDE})")


@cli.command("generate", "draw images for captions with the trained generator")
@flags(_generate_flags)
def generate(args):
    from sagan_tf import visualize
    from sagan_tf.inference import TextToImage

    workdir, config = setup(args)
    if bool(args.captions) == bool(args.interpolate):
        raise ValueError("give captions, or --interpolate CAPTION_A CAPTION_B (not both)")
    if len(args.captions) > MAX_GRID_SIDE:
        raise ValueError(f"at most {MAX_GRID_SIDE} captions (rows of one grid), got {len(args.captions)}; "
                         "run generate again for the rest")
    if not 1 <= args.n <= MAX_GRID_SIDE or not 2 <= args.steps <= MAX_GRID_SIDE:
        raise ValueError(f"--n must be between 1 and {MAX_GRID_SIDE} (samples in a row of the grid) "
                         f"and --steps between 2 and {MAX_GRID_SIDE}")
    out = visualize.image_path(out_path(args, workdir.join("generated.png")))
    model = TextToImage.from_workdir(workdir, config, args.checkpoint)
    for caption in args.interpolate or args.captions:
        # Defined behaviour (<start> <end>, or the OOV id), but worth a word.
        unknown = model.tokenizer.unknown_words(caption)
        if not caption.strip():
            print("warning: an empty caption draws a picture of nothing in particular", file=sys.stderr)
        elif unknown:
            print(f"warning: {caption!r} has words the encoder never saw (read as unknown): {', '.join(unknown)}",
                  file=sys.stderr)
    if args.interpolate:
        a, b = args.interpolate
        grid = model.interpolate(a, b, steps=args.steps, samples=args.n, seed=args.seed)
        labels = [f"{a}  →  {b}  (noise {k + 1})" for k in range(args.n)]
    else:
        grid = model.generate(args.captions, samples_per_caption=args.n, seed=args.seed)
        labels = args.captions
    out = visualize.caption_grid(grid, labels, out)
    print(f"wrote {out}")
    return {"out": out, "rows": len(labels), "columns": int(grid.shape[1]), "seed": args.seed}
