"""A user's own captioned images.

    images/<name>.jpg|.jpeg|.png
    captions/<name>.txt       one caption per line
    classes.txt               optional; lines "<name> <class>" (a name with
                              spaces is matched against the image names)

Images and caption files pair by name; an image without captions or
captions without an image are skipped and counted. The examples are split
by image into train / validation / test with a seed.
"""

import collections
import os
import re

from sagan_tf.data import reader_utils
from sagan_tf.data.records import CaptionedDataset, Example

CAPTIONS_WITHOUT_IMAGE = "caption file without image"
AMBIGUOUS_IMAGE = "several images share one name"
NOT_IN_CLASSES = "image not listed in classes.txt"
CLASS_WITHOUT_IMAGE = "classes.txt line for an image that is not there"


def _files_by_name(directory, extensions):
    """{file name without extension: [paths]} for the files with `extensions`."""
    files = collections.defaultdict(list)
    for file_name in sorted(os.listdir(directory)):
        stem, extension = os.path.splitext(file_name)
        if extension.lower() in extensions:
            files[stem].append(os.path.join(directory, file_name))
    return files


def _read_classes(path, names):
    """{image name: class name} from classes.txt; `names` are the names of the files present."""
    try:
        # utf-8-sig: editors on Windows start the file with a byte-order mark.
        with open(path, encoding="utf-8-sig") as file:
            lines = reader_utils.text_lines(file.read())
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text: {error}") from None
    classes = {}
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        # The longest present name the line starts with, so that names may hold spaces.
        ends = [m.start() for m in re.finditer(r"\s+", text) if text[:m.start()] in names]
        name = text[:ends[-1]] if ends else text.split(maxsplit=1)[0]
        label = text[len(name):].strip()
        if not label:
            raise ValueError(f"{path}:{number}: expected '<name> <class>', got {text!r}")
        classes[name] = label
    return classes


def load_folder(root, captions_only=False, strict=False, seed=0, validation_fraction=0.1,
                test_fraction=0.1):
    """Reads `root/images` + `root/captions` (+ `root/classes.txt`).

    Labels index the sorted class names of classes.txt, or are -1 without
    it. Bad examples are skipped and counted in `dataset.skipped`, or raise
    BadExampleError when `strict`. With `captions_only`, caption files need
    no image and `image_path` is None.
    """
    reader_utils.check_fractions(validation_fraction=validation_fraction,
                                 test_fraction=test_fraction)
    reader_utils.require_directory(root, "image folder root directory")
    captions_dir = os.path.join(root, "captions")
    images_dir = os.path.join(root, "images")
    reader_utils.require_directory(captions_dir, "caption directory")
    if not captions_only:
        reader_utils.require_directory(images_dir, "image directory")
    caption_files = _files_by_name(captions_dir, (".txt",))
    images = {} if captions_only else _files_by_name(images_dir, reader_utils.IMAGE_EXTENSIONS)
    classes_path = os.path.join(root, "classes.txt")
    present = set(caption_files) | set(images)
    classes = _read_classes(classes_path, present) if os.path.isfile(classes_path) else None
    dataset = CaptionedDataset(name="folder", class_names=[], splits={})
    for name in sorted(set(classes or ()) - present):
        dataset.skip(name, CLASS_WITHOUT_IMAGE, strict)
    # Only classes of images that are there: a stray line must not add an empty class.
    class_names = sorted({classes[name] for name in present if name in classes}) if classes else []
    label_of = {name: label for label, name in enumerate(class_names)}
    dataset.class_names = class_names

    examples = []
    for name in sorted(present):
        if name not in caption_files:
            dataset.skip(name, reader_utils.MISSING_CAPTIONS, strict)
            continue
        if not captions_only and name not in images:
            dataset.skip(name, CAPTIONS_WITHOUT_IMAGE, strict)
            continue
        if len(images.get(name, ())) > 1:
            dataset.skip(name, AMBIGUOUS_IMAGE, strict)
            continue
        if classes is not None and name not in classes:
            dataset.skip(name, NOT_IN_CLASSES, strict)
            continue
        captions = reader_utils.captions_or_skip(dataset, name, caption_files[name][0], strict)
        if captions is None:
            continue
        examples.append(Example(
            name=name, captions=captions,
            label=label_of[classes[name]] if classes is not None else -1,
            image_path=None if captions_only else images[name][0]))

    train, validation, test = reader_utils.seeded_split(
        examples, (validation_fraction, test_fraction), seed)
    dataset.splits = {"train": train, "validation": validation, "test": test}
    return dataset
