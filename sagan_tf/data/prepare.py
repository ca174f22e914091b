"""Decoded, cropped and resized images of a split, cached as one .npz.

Real images are decoded once in parallel (see `image_io`) at the training
load size (76 for 64-pixel training, so random 64 crops are possible, as
GAN-INT-CLS does) and reused by every later run.
"""

import hashlib
import os

import numpy as np

from sagan_tf import files
from sagan_tf.data import image_io

LOAD_SCALE = 76 / 64


def load_size(image_size, augment):
    return int(round(image_size * LOAD_SCALE)) if augment else image_size


def split_images(dataset, split, size, cache_dir, workers=None):
    """Returns (uint8 [N, size, size, 3], the examples those rows belong to).

    Examples whose image cannot be read are dropped and counted in
    `dataset.skipped` (or raise, when the data set was read in strict mode).
    """
    examples = dataset.splits[split]
    if not examples:
        raise ValueError(f"the {split} split of {dataset.name} is empty: too few examples, or all of them skipped")
    if dataset.images is not None:
        images = dataset.images[[e.image_index for e in examples]]
        if images.shape[1] != size:
            import tensorflow as tf
            images = tf.image.resize(images, (size, size), antialias=True).numpy().round().astype(np.uint8)
        return images, examples
    with_images = [e for e in examples if e.image_path]
    if not with_images:
        raise ValueError(f"the {split} split of {dataset.name} has no images "
                         "(captions-only data can train the text encoder, not the GAN)")
    # File sizes and times too, so that a photo replaced under the same name is
    # decoded again; the box, since the crop follows it; the decoder's version.
    key = hashlib.sha1("\n".join([f"decoder {image_io.DECODER_VERSION}"] + [
        f"{e.name} {e.image_path} {_file_stamp(e.image_path)} {e.bbox}" for e in with_images
    ]).encode()).hexdigest()[:12]
    path = os.path.join(cache_dir, f"{dataset.name}-{split}-{size}-{key}.npz")
    cached = files.read_cache(path, _read_images)
    if cached is not None:
        images, rows, skipped = cached
        # The examples that did not decode are skipped on every run, as on the first.
        for name, reason in skipped:
            dataset.skip(name, reason)
        return images, [with_images[i] for i in rows]
    images, kept, skipped = decode_images(dataset, with_images, size, workers)
    if not kept:
        raise ValueError(f"none of the {len(with_images)} images of the {split} split of {dataset.name} "
                         f"could be read ({', '.join(sorted({reason for _, reason in skipped}))})")
    position = {e.name: row for row, e in enumerate(with_images)}
    rows = [position[e.name] for e in kept]
    with files.written_atomically(path) as scratch:
        np.savez(scratch, images=images, rows=np.asarray(rows, np.int64),
                 skipped=np.asarray(skipped, dtype=str).reshape(-1, 2))
    return images, kept


def _file_stamp(path):
    try:
        status = os.stat(path)
    except OSError:
        return "missing"
    return f"{status.st_size} {status.st_mtime_ns}"


def _read_images(path):
    with np.load(path) as archive:
        return archive["images"], archive["rows"], [tuple(pair) for pair in archive["skipped"]]


def decode_images(dataset, examples, size, workers=None):
    """Decodes the images of `examples` in parallel.

    Returns (images, kept examples, [(name, reason)] of those skipped).
    """
    with_images = [e for e in examples if e.image_path]
    images, ok, failures = image_io.load_images(
        [(e.image_path, e.bbox) for e in with_images], size, workers=workers)
    skipped = [(with_images[row].name, reason) for row, reason in failures]
    for name, reason in skipped:
        dataset.skip(name, reason)
    return images, [with_images[i] for i in ok], skipped
