"""The evaluation report: a JSON file and a one-page PNG beside it.

The page holds a grid of generated samples with their captions, the
alignment accuracies as bars (generated images next to the real-image
ceiling) and the numbers, each with the network that produced it.
"""

import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sagan_tf import files, pixels  # noqa: E402

A4_PORTRAIT = (8.27, 11.69)
SAMPLE_COLUMNS = 4
# Report key and label of each set of alignment accuracies.
ALIGNMENT_SOURCES = (("generated", "generated"), ("real_ceiling", "real ceiling"))


def summary_lines(report):
    """The headline numbers as text, one line each."""
    network = report["feature_network"]
    scores = report["metrics"]
    inception = scores["inception_score"]
    lines = [
        f"{report['dataset']}: {report['num_images']} images from test captions vs "
        f"{report['num_real_images']} real test images (seed {report['seeds']['noise']})",
        f"feature network: {network['name']} ({network['source']})",
        f"  IS logits: {network['score_logits']}; FID/KID features: {network['features']}",
        f"Inception Score [{inception['feature_network']}]: "
        f"{inception['mean']:.3f} ± {inception['std']:.3f} ({inception['images_per_split']} images per split)",
    ]
    if "inception_score_real" in scores:
        real = scores["inception_score_real"]
        lines.append(f"  real test images: {real['mean']:.3f} ± {real['std']:.3f} "
                     f"({real['images_per_split']} per split)")
    kid = scores["kid"]
    kid_error = "" if kid["standard_error"] is None else f" ± {kid['standard_error']:.4f}"
    lines += [f"FID [{scores['fid']['feature_network']}]: {scores['fid']['value']:.3f}",
              f"KID [{kid['feature_network']}]: {kid['value']:.4f}{kid_error} ({kid['blocks']} blocks)"]
    if network["name"] == "domain" and "num_real_images_in_classifier_training" in report:
        lines.append(f"  (the classifier was fitted on {report['num_real_images_in_classifier_training']} "
                     "of the real test images)")
    lines += alignment_lines(report["alignment"])
    return lines


def accuracy_lines(label, groups):
    """One line per group of alignment accuracies ({group: {"count", metric: value}})."""
    return [f"{label}, {group} ({accuracies['count']}): "
            + ", ".join(f"{key} {value:.3f}" for key, value in accuracies.items() if key != "count")
            for group, accuracies in groups.items()]


def alignment_lines(alignment):
    if "skipped" in alignment:
        return [f"alignment: skipped, {alignment['skipped']}"]
    lines = [f"alignment [domain classifier {alignment['classifier']}]:"]
    for source, label in ALIGNMENT_SOURCES:
        lines += ["  " + line for line in accuracy_lines(label, alignment[source])]
    return lines


def _sample_grid(figure, cell, images, captions):
    # imshow takes floats in [0, 1].
    images = np.asarray(pixels.to_unit_range(images))
    rows = -(-len(images) // SAMPLE_COLUMNS)
    grid = cell.subgridspec(rows, SAMPLE_COLUMNS, hspace=0.45, wspace=0.15)
    for index, (image, caption) in enumerate(zip(images, captions)):
        ax = figure.add_subplot(grid[index // SAMPLE_COLUMNS, index % SAMPLE_COLUMNS])
        ax.imshow(image, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("\n".join(textwrap.wrap(caption, 40)[:3]), fontsize=6)


def _alignment_bars(ax, alignment):
    if "skipped" in alignment:
        ax.axis("off")
        ax.text(0.5, 0.5, f"alignment skipped: {alignment['skipped']}", ha="center", fontsize=8)
        return
    series = [(f"{label}, {group}", accuracies)
              for source, label in ALIGNMENT_SOURCES
              for group, accuracies in alignment[source].items()]
    keys = [key for key in series[0][1] if key != "count"]
    width = 0.8 / len(series)
    for offset, (label, accuracies) in enumerate(series):
        positions = np.arange(len(keys)) + (offset - (len(series) - 1) / 2) * width
        ax.bar(positions, [accuracies[key] for key in keys], width, label=label)
    ax.set_xticks(np.arange(len(keys)))
    ax.set_xticklabels(keys, fontsize=8)
    # Head room above 1 for the legend.
    ax.set_ylim(0, 1.2)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("accuracy")
    ax.set_title("text–image alignment: does the domain classifier read what the caption says?",
                 fontsize=9)
    ax.legend(fontsize=7, loc="upper center", ncol=len(series), frameon=False)


def write_page(report, images, captions, path):
    """The one-page PNG summary."""
    figure = plt.figure(figsize=A4_PORTRAIT)
    layout = figure.add_gridspec(3, 1, height_ratios=(5.2, 2.3, 2.5), hspace=0.25,
                                 top=0.95, bottom=0.03, left=0.08, right=0.95)
    _sample_grid(figure, layout[0], images, captions)
    _alignment_bars(figure.add_subplot(layout[1]), report["alignment"])
    text = figure.add_subplot(layout[2])
    text.axis("off")
    wrapped = [part for line in summary_lines(report)
               for part in textwrap.wrap(line, 110, subsequent_indent="    ")]
    text.text(0, 1, "\n".join(wrapped), va="top", family="monospace", fontsize=6.5)
    figure.suptitle(f"sagan_tf evaluation: {os.path.basename(report['checkpoint'])}", fontsize=11)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def check_path(json_path):
    """Raises ValueError unless `json_path` names a .json file (the PNG goes beside it)."""
    if not json_path.endswith(".json"):
        raise ValueError(f"the report path must end in .json, got {json_path!r}")


def write(report, images, captions, json_path):
    """Writes the report JSON and the PNG beside it; returns (json path, png path)."""
    check_path(json_path)
    files.write_json(json_path, report)
    png_path = json_path[:-len(".json")] + ".png"
    write_page(report, images, captions, png_path)
    return json_path, png_path
