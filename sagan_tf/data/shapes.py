"""The built-in captioned-shapes data set: renderer, splits and caching.

One anti-aliased object on a plain background, 10 grammar captions per
image, ground truth kept for every caption. A fixed set of (shape, colour)
pairs is held out of training and validation to measure generalisation to
unseen combinations.
"""

import concurrent.futures
import hashlib
import json
import math
import os

import numpy as np
from PIL import Image, ImageDraw

from sagan_tf import files
from sagan_tf.data import shapes_grammar as grammar
from sagan_tf.data.records import CaptionedDataset, Example

PALETTE = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 30),
    "purple": (130, 40, 170),
    "orange": (245, 140, 20),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "pink": (250, 140, 190),
    "cyan": (40, 220, 230),
}
# Half-extent of the object as a fraction of the image side.
SIZE_EXTENT = {"small": 0.10, "medium": 0.155, "large": 0.21}
GRID = (0.26, 0.5, 0.74)
# (shape, object colour) pairs that appear only in the test split.
HELD_OUT_PAIRS = (
    ("circle", "purple"),
    ("square", "orange"),
    ("triangle", "cyan"),
    ("diamond", "red"),
    ("star", "white"),
    ("cross", "green"),
)
SUPERSAMPLE = 4
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1}
CACHE_VERSION = 1


def class_names():
    """Class label = (shape, object colour), as 'shape/colour'."""
    return [f"{s}/{c}" for s in grammar.SHAPES for c in grammar.COLORS]


def class_index(shape, color):
    return grammar.SHAPES.index(shape) * len(grammar.COLORS) + grammar.COLORS.index(color)


def _polygon(shape, cx, cy, r):
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "triangle":
        return [(cx + r * math.cos(a), cy + r * math.sin(a))
                for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    if shape == "star":
        return [(cx + (r if k % 2 == 0 else 0.42 * r) * math.cos(-math.pi / 2 + k * math.pi / 5),
                 cy + (r if k % 2 == 0 else 0.42 * r) * math.sin(-math.pi / 2 + k * math.pi / 5))
                for k in range(10)]
    if shape == "cross":
        w = 0.36 * r
        return [(cx - w, cy - r), (cx + w, cy - r), (cx + w, cy - w), (cx + r, cy - w),
                (cx + r, cy + w), (cx + w, cy + w), (cx + w, cy + r), (cx - w, cy + r),
                (cx - w, cy + w), (cx - r, cy + w), (cx - r, cy - w), (cx - w, cy - w)]
    raise ValueError(f"unknown shape {shape!r}")


def _jittered(rgb, rng, amount=18):
    return tuple(int(np.clip(v + rng.integers(-amount, amount + 1), 0, 255)) for v in rgb)


def render(attributes, image_size=64, rng=None):
    """Draws one image for `attributes`; `rng` adds mild jitter when given."""
    big = image_size * SUPERSAMPLE
    jitter = (lambda scale: rng.uniform(-scale, scale)) if rng is not None else (lambda scale: 0.0)
    object_rgb = PALETTE[attributes["color"]]
    background_rgb = PALETTE[attributes["background"]]
    if rng is not None:
        object_rgb, background_rgb = _jittered(object_rgb, rng), _jittered(background_rgb, rng)
    row, col = divmod(grammar.POSITIONS.index(attributes["position"]), 3)
    cx = (GRID[col] + jitter(0.03)) * big
    cy = (GRID[row] + jitter(0.03)) * big
    r = SIZE_EXTENT[attributes["size"]] * (1 + jitter(0.08)) * big
    canvas = Image.new("RGB", (big, big), background_rgb)
    draw = ImageDraw.Draw(canvas)
    if attributes["shape"] == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=object_rgb)
    else:
        draw.polygon(_polygon(attributes["shape"], cx, cy, r), fill=object_rgb)
    # Drawing large and shrinking with a box filter anti-aliases the edges.
    return np.asarray(canvas.resize((image_size, image_size), Image.Resampling.BOX))


def sample_attributes(rng):
    shape = grammar.SHAPES[rng.integers(len(grammar.SHAPES))]
    color = grammar.COLORS[rng.integers(len(grammar.COLORS))]
    background = color
    while background == color:
        background = grammar.COLORS[rng.integers(len(grammar.COLORS))]
    return {
        "shape": shape,
        "color": color,
        "background": background,
        "size": grammar.SIZES[rng.integers(len(grammar.SIZES))],
        "position": grammar.POSITIONS[rng.integers(len(grammar.POSITIONS))],
    }


def _make_chunk(args):
    """Renders images [start, stop) deterministically from (seed, index)."""
    seed, start, stop, image_size, captions_per_image = args
    images, records = [], []
    for index in range(start, stop):
        rng = np.random.default_rng([seed, index])
        attributes = sample_attributes(rng)
        images.append(render(attributes, image_size, rng))
        captions, caption_attributes = [], []
        for _ in range(captions_per_image):
            text, template, choices = grammar.random_caption(attributes, rng)
            captions.append(text)
            caption_attributes.append(dict(attributes, template=template, choices=choices))
        split_draw = rng.uniform()
        records.append((attributes, captions, caption_attributes, split_draw))
    return np.stack(images), records


def _split_of(attributes, split_draw):
    if (attributes["shape"], attributes["color"]) in HELD_OUT_PAIRS:
        return "test"
    if split_draw < SPLIT_FRACTIONS["train"]:
        return "train"
    if split_draw < SPLIT_FRACTIONS["train"] + SPLIT_FRACTIONS["validation"]:
        return "validation"
    return "test"


def generate(num_images=20000, captions_per_image=10, image_size=64, seed=0, workers=None):
    """Builds the data set in memory; the same arguments give the same data."""
    workers = workers or min(os.cpu_count() or 1, 8)
    chunk = max(1, min(2000, math.ceil(num_images / workers)))
    jobs = [(seed, start, min(start + chunk, num_images), image_size, captions_per_image)
            for start in range(0, num_images, chunk)]
    if workers > 1 and len(jobs) > 1:
        with concurrent.futures.ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_make_chunk, jobs))
    else:
        parts = [_make_chunk(job) for job in jobs]
    images = np.concatenate([p[0] for p in parts])
    splits = {"train": [], "validation": [], "test": []}
    index = 0
    for _, records in parts:
        for attributes, captions, caption_attributes, split_draw in records:
            splits[_split_of(attributes, split_draw)].append(Example(
                name=f"shape_{index:06d}",
                captions=captions,
                label=class_index(attributes["shape"], attributes["color"]),
                image_index=index,
                attributes=caption_attributes,
            ))
            index += 1
    return CaptionedDataset(name="shapes", class_names=class_names(), splits=splits, images=images)


def _cache_key(num_images, captions_per_image, image_size, seed):
    text = json.dumps([CACHE_VERSION, num_images, captions_per_image, image_size, seed])
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def save(dataset, path):
    """Writes images and captions to one .npz file (atomically)."""
    examples = [dict(split=split, name=e.name, captions=e.captions, label=e.label,
                     image_index=e.image_index, attributes=e.attributes)
                for split, items in dataset.splits.items() for e in items]
    with files.written_atomically(path) as scratch:
        np.savez(scratch, images=dataset.images, examples=json.dumps(examples))


def load(path):
    with np.load(path) as archive:
        images = archive["images"]
        examples = json.loads(str(archive["examples"]))
    splits = {"train": [], "validation": [], "test": []}
    for item in examples:
        split = item.pop("split")
        splits[split].append(Example(**item))
    return CaptionedDataset(name="shapes", class_names=class_names(), splits=splits, images=images)


def physical_memory_bytes():
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits_in_memory(num_images, captions_per_image, image_size):
    """Raises ValueError when the data set would take more than half of this machine's memory.

    It is built and trained on in memory; a clear refusal beats the kernel's OOM kill.
    """
    # Pixels, plus about 150 bytes per caption for its text and attributes as Python objects.
    needed = num_images * (3 * image_size ** 2 + 150 * captions_per_image)
    available = physical_memory_bytes()
    if needed > available / 2:
        raise ValueError(
            f"data.num_images={num_images} at {image_size} px needs about {needed / 2 ** 30:.1f} GiB in "
            f"memory, more than half of this machine's {available / 2 ** 30:.1f} GiB; use fewer images")


def build_or_load(cache_dir, num_images=20000, captions_per_image=10, image_size=64, seed=0):
    """Returns the data set, building and caching it on first use."""
    check_fits_in_memory(num_images, captions_per_image, image_size)
    os.makedirs(cache_dir, exist_ok=True)
    key = _cache_key(num_images, captions_per_image, image_size, seed)
    path = os.path.join(cache_dir, f"shapes-{key}.npz")
    dataset = files.read_cache(path, load)
    if dataset is not None:
        return dataset, path
    dataset = generate(num_images, captions_per_image, image_size, seed)
    save(dataset, path)
    return dataset, path


def colour_swapped_pairs(examples):
    """Caption pairs that differ only in which colour is the object's.

    For every caption of `examples`, the same sentence (template and
    synonyms) with object and background colours exchanged, and both class
    labels. Pairs whose swapped class is held out are left out. A bag-of-words
    encoder sees the same words in both captions of a pair (up to "a"/"an").
    """
    originals, swapped, labels, swapped_labels = [], [], [], []
    held_out = {class_index(s, c) for s, c in HELD_OUT_PAIRS}
    for example in examples:
        for caption, attributes in zip(example.captions, example.attributes):
            other = dict(attributes, color=attributes["background"], background=attributes["color"])
            label = class_index(attributes["shape"], attributes["color"])
            other_label = class_index(other["shape"], other["color"])
            if label in held_out or other_label in held_out:
                continue
            originals.append(caption)
            swapped.append(grammar.make_caption(other, attributes["template"], attributes["choices"]))
            labels.append(label)
            swapped_labels.append(other_label)
    return originals, swapped, np.array(labels, np.int32), np.array(swapped_labels, np.int32)
