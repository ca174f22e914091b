"""Figures: contact sheets, caption × sample grids and attention heat maps."""

import os
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _to_uint8(images):
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    # Here, not at the top: `data show` draws uint8 data without TensorFlow.
    from sagan_tf import pixels
    return np.asarray(pixels.to_pixels(images))


def image_path(path):
    """The file a figure saved to `path` lands in (.png when it names no format).

    Refuses a directory and a path below a file.
    """
    if os.path.isdir(path):
        raise ValueError(f"{path} is a directory; name an image file in it, e.g. "
                         f"{os.path.join(path, 'figure.png')}")
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"cannot write {path}: {parent} is a file, not a folder")
    return path if os.path.splitext(path)[1] else path + ".png"


def _save(figure, path):
    path = image_path(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


def contact_sheet(images, captions, path, columns=6, wrap=28):
    """Images (uint8, or float in [-1, 1]) each with its caption below."""
    images = _to_uint8(images)
    rows = int(np.ceil(len(images) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.3 * columns, 2.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, caption in zip(axes.flat, images, captions):
        ax.imshow(image, interpolation="nearest")
        ax.set_title("\n".join(textwrap.wrap(caption, wrap)), fontsize=7, y=-0.05, va="top")
    figure.subplots_adjust(hspace=0.7, wspace=0.05)
    return _save(figure, path)


def caption_grid(images, captions, path, wrap=110):
    """images [rows, columns, H, W, 3]: one row per caption, printed under it."""
    images = _to_uint8(images)
    rows, columns = images.shape[:2]
    figure, axes = plt.subplots(rows, 1, figsize=(1.1 * columns, 1.45 * rows), squeeze=False)
    for ax, row_images, caption in zip(axes[:, 0], images, captions):
        ax.imshow(np.concatenate(list(row_images), axis=1), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("\n".join(textwrap.wrap(caption, wrap)), fontsize=8)
    figure.tight_layout()
    return _save(figure, path)


def attention_heatmap(words, attention, path, title=None):
    """attention [hops, words]: a row per hop, a column per word (Lin et al. 2017)."""
    attention = np.asarray(attention)
    hops, length = attention.shape
    figure, ax = plt.subplots(figsize=(max(4, 0.45 * length + 1.5), max(2, 0.28 * hops + 1.2)))
    image = ax.imshow(attention, aspect="auto", cmap="Reds", vmin=0)
    ax.set_xticks(range(length))
    ax.set_xticklabels(words, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(hops))
    ax.set_yticklabels([f"hop {h + 1}" for h in range(hops)], fontsize=6)
    figure.colorbar(image, ax=ax, fraction=0.03)
    ax.set_title(title or "attention of each hop over the words", fontsize=9)
    figure.tight_layout()
    return _save(figure, path)
