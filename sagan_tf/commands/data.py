"""`sagan-tf data build | stats | show`."""

import numpy as np

from sagan_tf import cli
from sagan_tf.commands.common import flags, out_path, setup_with_dataset
from sagan_tf.data import prepare


def _strict_flag(parser):
    parser.add_argument("--strict", action="store_true", help="stop at the first bad example")


def _report_skipped(dataset):
    for reason, count in dataset.skipped.items():
        examples = ", ".join(dataset.skipped_names.get(reason, []))
        print(f"skipped {count} example(s): {reason} (e.g. {examples})")


@cli.command("data build", "build (shapes) or read and prepare (real data) the configured data set")
@flags(_strict_flag)
def build(args):
    workdir, config, dataset = setup_with_dataset(args, record=True)
    if not dataset.splits["train"]:
        raise ValueError(f"the train split of {dataset.name} is empty: nothing to train on "
                         f"(skipped: {dict(dataset.skipped) or 'nothing'})")
    decoded = {}
    if not config.data.captions_only:
        size = prepare.load_size(config.data.image_size, config.data.augment)
        for split in dataset.splits:
            if dataset.splits[split]:
                decoded[split] = len(prepare.split_images(dataset, split, size, workdir.data_cache_dir(config))[1])
    stats = dataset.stats()
    if decoded:
        stats["images"] = decoded  # those that decoded, fewer than the examples when some did not
    for split, count in stats["examples"].items():
        images = f", {decoded.get(split, 0)} images" if decoded else ""
        print(f"{split:>10}: {count} examples{images}, {stats['captions'][split]} captions")
    _report_skipped(dataset)
    return stats


@cli.command("data stats", "counts, classes and caption lengths of the configured data set")
@flags(_strict_flag)
def stats(args):
    _, config, dataset = setup_with_dataset(args, record=False)
    result = dataset.stats()
    lengths = np.array([len(c.split()) for e in dataset.splits["train"] for c in e.captions])
    if len(lengths):
        result["caption_words"] = {
            "mean": float(lengths.mean()), "p95": float(np.percentile(lengths, 95)), "max": int(lengths.max())}
    if dataset.name == "shapes":
        from sagan_tf.data import shapes
        result["held_out_pairs"] = ["/".join(p) for p in shapes.HELD_OUT_PAIRS]
    for key, value in result.items():
        print(f"{key}: {value}")
    _report_skipped(dataset)
    return result


def _show_flags(parser):
    parser.add_argument("--out", default=None, help="PNG path (default: <workdir>/contact_sheet.png)")
    parser.add_argument("--split", default="train", choices=("train", "validation", "test"))
    parser.add_argument("-n", "--n", type=int, default=24, help="number of images")
    parser.add_argument("--seed", type=int, default=0)


@cli.command("data show", "write a contact sheet PNG of images with their captions")
@flags(_show_flags, _strict_flag)
def show(args):
    from sagan_tf import visualize

    workdir, config, dataset = setup_with_dataset(args, record=False)
    if args.n < 1:
        raise ValueError("--n must be at least 1")
    images, examples = prepare.split_images(
        dataset, args.split, config.data.image_size, workdir.data_cache_dir(config))
    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(examples), size=min(args.n, len(examples)), replace=False)
    captions = [examples[r].captions[rng.integers(len(examples[r].captions))] for r in rows]
    out = visualize.contact_sheet(images[rows], captions, out_path(args, workdir.join("contact_sheet.png")))
    print(f"wrote {out}")
    _report_skipped(dataset)
    return {"out": out, "images": len(rows), "split": args.split}
