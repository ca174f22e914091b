"""Pieces shared by the real-data readers (CUB, flowers, image folders).

Caption files follow Reed et al.'s convention everywhere: one caption per
line, UTF-8. Splits are seeded shuffles so that a data set always splits the
same way on every machine.
"""

import math
import os
import random
import re

from sagan_tf.data import safe_pickle
from sagan_tf.data.records import BadExampleError, Example

# Skip reasons, the keys of CaptionedDataset.skipped.
MISSING_CAPTIONS = "missing caption file"
EMPTY_CAPTIONS = "empty caption file"
CAPTIONS_NOT_UTF8 = "caption file is not UTF-8"
IMAGE_ABSENT = "image listed in metadata but absent"
CLASS_WITHOUT_CAPTIONS = "class has no caption files"

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def require_directory(path, what):
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{what} not found: expected a directory at {path}")


def require_file(path, what):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} not found: expected a file at {path}")


def text_lines(text):
    """The lines of a text file, whichever of the three line ends it uses.

    Not `str.splitlines()`, which also breaks at characters that may sit
    inside a caption (U+2028, U+0085, form feed, ...).
    """
    return re.split(r"\r\n|\r|\n", text)


def read_captions(path):
    """Returns the stripped, non-blank lines of a caption file.

    Raises BadExampleError whose message is the skip reason.
    """
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except FileNotFoundError:
        raise BadExampleError(MISSING_CAPTIONS) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadExampleError(CAPTIONS_NOT_UTF8) from None
    captions = [line.strip() for line in text_lines(text) if line.strip()]
    if not captions:
        raise BadExampleError(EMPTY_CAPTIONS)
    return captions


def captions_or_skip(dataset, name, path, strict):
    """The captions of one example, or None after recording why it is skipped."""
    try:
        return read_captions(path)
    except BadExampleError as error:
        dataset.skip(name, str(error), strict)
        return None


def example_or_skip(dataset, name, caption_path, image_path, captions_only, strict, **fields):
    """An Example with its captions and, unless `captions_only`, its image file.

    Returns None after recording why when the caption file is unusable or
    the image is absent. Decoding the image is left to `image_io`.
    """
    captions = captions_or_skip(dataset, name, caption_path, strict)
    if captions is None:
        return None
    if captions_only:
        image_path = None
    elif not os.path.isfile(image_path):
        dataset.skip(name, IMAGE_ABSENT, strict)
        return None
    return Example(name=name, captions=captions, image_path=image_path, **fields)


def check_fractions(**fractions):
    """Refuses split fractions outside [0, 1) or adding up to 1 or more."""
    for key, fraction in fractions.items():
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"{key} must be in [0, 1), got {fraction}")
    if sum(fractions.values()) >= 1.0:
        raise ValueError(f"{' + '.join(fractions)} must be below 1")


def seeded_split(items, held_out_fractions, seed):
    """Shuffles `items` with `seed` and cuts off held-out parts.

    Returns `[kept, held_out_1, ...]`. Each held-out part gets
    ceil(len(items) * fraction) items, as scikit-learn's train_test_split
    does, but never the last item: the kept part stays non-empty.
    """
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    parts = []
    start = 0
    for fraction in held_out_fractions:
        # The tolerance keeps float error from rounding an exact size up.
        size = min(math.ceil(len(shuffled) * fraction - 1e-9),
                   max(len(shuffled) - start - 1, 0))
        parts.append(shuffled[start:start + size])
        start += size
    return [shuffled[start:]] + parts


def find_split_pickles(root):
    """Paths of the StackGAN/AttnGAN train and test `filenames.pickle`, or None.

    They live in `root/{train,test}/` in the original releases and in
    `root/splits/{train,test}/` in the partial CUB copy.
    """
    for base in (root, os.path.join(root, "splits")):
        paths = tuple(os.path.join(base, part, "filenames.pickle") for part in ("train", "test"))
        if all(os.path.isfile(path) for path in paths):
            return paths
    return None


def load_name_list(path):
    """A split pickle's list of example names, checked to be strings."""
    names = safe_pickle.load(path)
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path}: expected a pickled list of file names")
    return list(names)
