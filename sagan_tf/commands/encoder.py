"""`sagan-tf train-encoder`, `sagan-tf attention` and `sagan-tf tune`."""

import json

import numpy as np

from sagan_tf import cli
from sagan_tf.commands.common import (
    flags,
    out_path,
    quiet_flag,
    setup,
    setup_with_dataset,
    verbosity,
)


@cli.command("train-encoder", "pre-train the text encoder as a caption classifier")
@flags(quiet_flag)
def train_encoder(args):
    from sagan_tf.training import encoder_training

    workdir, config, dataset = setup_with_dataset(args)
    result = encoder_training.train_encoder(workdir, config, dataset, verbose=verbosity(args))
    print(f"{config.encoder.kind} encoder: train accuracy {result['train_accuracy']:.3f}, "
          f"validation accuracy {result['val_accuracy']:.3f} (top-5 {result['val_top5_accuracy']:.3f})")
    print(f"text encoder: {result['encoder']}")
    return result


def _attention_flags(parser):
    parser.add_argument("caption", help="the caption to explain")
    parser.add_argument("--out", default=None, help="PNG path (default: <workdir>/attention.png)")


@cli.command("attention", "draw the attention of each hop over the words of a caption")
@flags(_attention_flags)
def attention(args):
    from sagan_tf import visualize
    from sagan_tf.training import encoder_training

    workdir = setup(args)[0]
    encoder, tokenizer = encoder_training.load_frozen_encoder(workdir)
    if not encoder.has_attention:
        raise ValueError(f"the {encoder.kind!r} encoder in {workdir.path} has no attention to draw")
    words, weights = encoder_training.attention_over_words(encoder, tokenizer, args.caption)
    out = visualize.attention_heatmap(words, weights, out_path(args, workdir.join("attention.png")),
                                      title=args.caption)
    print(f"wrote {out}")
    # Rounded in float64: float32 values rounded to 5 places print with 16 digits.
    return {"out": out, "words": words, "attention": weights.astype(np.float64).round(5).tolist()}


def _tune_flags(parser):
    parser.add_argument("--max-trials", type=int, default=10)
    parser.add_argument("--algorithm", choices=("random", "hyperband"), default="random")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per trial (default: encoder_train.epochs)")
    quiet_flag(parser)


@cli.command("tune", "search hops r, d_a, λ and the learning rate with Keras Tuner")
@flags(_tune_flags)
def tune(args):
    from sagan_tf.training import tuning

    if args.max_trials < 1:
        raise ValueError("--max-trials must be at least 1")
    # The search trains none of the workdir's models: its --set applies to it alone (and names it).
    workdir, config, dataset = setup_with_dataset(args, record=False)
    result = tuning.search(workdir, config, dataset, args.max_trials, args.algorithm,
                           epochs=args.epochs, verbose=verbosity(args))
    print(tuning.format_table(result["trials"]))
    if args.algorithm == "hyperband" and len(result["trials"]) < args.max_trials:
        # Hyperband stops when its brackets, sized from the epochs per trial, are spent.
        print(f"note: the search ended after {len(result['trials'])} of {args.max_trials} trials; "
              "Hyperband's brackets for this many epochs per trial hold no more (raise --epochs)")
    print(f"best: {json.dumps(result['best'])} (val_accuracy {result['best_score']:.4f})")
    print(f"wrote {result['config']}")
    return result
