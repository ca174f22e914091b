"""CUB-200-2011 birds with the ten captions per image of Reed et al. 2016.

Layout under `root`:

    CUB_200_2011/{classes.txt, images.txt, image_class_labels.txt,
                  bounding_boxes.txt, images/<class>/<image>.jpg}
    text_c10/<class>/<image>.txt          one caption per line
    {train,test}/filenames.pickle         StackGAN/AttnGAN class split
      (or splits/{train,test}/filenames.pickle)

Only captions are read here; images are decoded later by `image_io`, so
loading stays fast and an absent photo is noticed by a file check alone.
"""

import collections
import dataclasses
import os

from sagan_tf.data import reader_utils
from sagan_tf.data.records import CaptionedDataset, Example

METADATA_DIR = "CUB_200_2011"
# The seed's caption-level split: 64 % train, 16 % validation, 20 % test of
# all (image, caption) pairs; on the full data 75,443 / 18,861 / 23,576.
CAPTION_SPLIT_FRACTIONS = {"validation": 0.16, "test": 0.2}
NOT_IN_METADATA = "split file names an image not in images.txt"


@dataclasses.dataclass(frozen=True)
class _ImageRecord:
    relative_path: str
    label: int
    bbox: tuple


def _read_rows(path, num_fields):
    """A CUB metadata file as {first column: remaining columns}."""
    reader_utils.require_file(path, "CUB-200-2011 metadata file")
    rows = {}
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != num_fields:
                raise ValueError(
                    f"{path}:{number}: expected {num_fields} space-separated fields, "
                    f"got {line.strip()!r}")
            rows[fields[0]] = fields[1:]
    return rows


def read_class_names(root):
    """The 200 class names of classes.txt, in class-id order."""
    rows = _read_rows(os.path.join(root, METADATA_DIR, "classes.txt"), 2)
    return [fields[0] for _, fields in sorted(rows.items(), key=lambda row: int(row[0]))]


def _read_image_records(root):
    """{image name without extension: _ImageRecord} from the official metadata."""
    metadata = os.path.join(root, METADATA_DIR)
    paths = _read_rows(os.path.join(metadata, "images.txt"), 2)
    labels = _read_rows(os.path.join(metadata, "image_class_labels.txt"), 2)
    boxes = _read_rows(os.path.join(metadata, "bounding_boxes.txt"), 5)
    records = {}
    for image_id, (relative_path,) in paths.items():
        if image_id not in labels or image_id not in boxes:
            raise ValueError(
                f"{metadata}: image id {image_id} ({relative_path}) has no class label "
                "or no bounding box")
        try:
            label = int(labels[image_id][0]) - 1
            bbox = tuple(float(v) for v in boxes[image_id])
        except ValueError:
            raise ValueError(
                f"{metadata}: image id {image_id} ({relative_path}) has a class label or "
                "bounding box that is not a number") from None
        records[os.path.splitext(relative_path)[0]] = _ImageRecord(relative_path, label, bbox)
    return records


def read_class_split(root):
    """The StackGAN/AttnGAN (train names, test names): 150 / 50 classes."""
    paths = reader_utils.find_split_pickles(root)
    if paths is None:
        raise FileNotFoundError(
            f"class split files not found: expected {root}/train/filenames.pickle and "
            f"{root}/test/filenames.pickle (or the same under {root}/splits/)")
    return tuple(reader_utils.load_name_list(path) for path in paths)


def _classes_with_captions(text_dir):
    return {
        entry.name for entry in os.scandir(text_dir)
        if entry.is_dir() and any(f.endswith(".txt") for f in os.listdir(entry.path))
    }


def _build_examples(names, records, root, captioned_classes, dataset, captions_only, strict):
    text_dir = os.path.join(root, "text_c10")
    examples = []
    for name in names:
        record = records.get(name)
        if record is None:
            dataset.skip(name, NOT_IN_METADATA, strict)
            continue
        if name.split("/")[0] not in captioned_classes:
            # Not a bad example: the class is just not part of this copy.
            dataset.skip(name, reader_utils.CLASS_WITHOUT_CAPTIONS)
            continue
        example = reader_utils.example_or_skip(
            dataset, name, os.path.join(text_dir, name + ".txt"),
            os.path.join(root, METADATA_DIR, "images", record.relative_path),
            captions_only, strict, label=record.label, bbox=record.bbox)
        if example is not None:
            examples.append(example)
    return examples


def _split_by_caption(examples, seed):
    """Splits (image, caption) pairs; an image's captions may land in several splits."""
    pairs = [(i, j) for i, example in enumerate(examples) for j in range(len(example.captions))]
    train, validation, test = reader_utils.seeded_split(
        pairs, tuple(CAPTION_SPLIT_FRACTIONS.values()), seed)
    splits = {}
    for split_name, split_pairs in (("train", train), ("validation", validation), ("test", test)):
        chosen = collections.defaultdict(list)
        for i, j in sorted(split_pairs):
            chosen[i].append(examples[i].captions[j])
        splits[split_name] = [
            dataclasses.replace(examples[i], captions=captions) for i, captions in chosen.items()
        ]
    return splits


def load_cub(root, split="class", captions_only=False, strict=False, seed=0,
             validation_fraction=0.1):
    """Reads CUB-200-2011 + Reed et al.'s captions into a CaptionedDataset.

    split="class": the StackGAN/AttnGAN split; the train classes' images are
    split by image into train and validation (`validation_fraction`), the
    50 test classes form the test split. split="caption": the seed's
    64/16/20 split of (image, caption) pairs (`validation_fraction` unused).
    split="image": the same fractions, but by image, so that test captions
    describe images never seen in training.
    Labels index all 200 classes. Bad examples are skipped and counted in
    `dataset.skipped`, or raise BadExampleError when `strict`. With
    `captions_only`, no image is needed and `image_path` is None.
    """
    if split not in ("class", "caption", "image"):
        raise ValueError(f"split must be 'class', 'caption' or 'image', got {split!r}")
    reader_utils.check_fractions(validation_fraction=validation_fraction)
    reader_utils.require_directory(root, "CUB root directory")
    reader_utils.require_directory(os.path.join(root, "text_c10"),
                                   "caption directory text_c10 of Reed et al.")
    class_names = read_class_names(root)
    records = _read_image_records(root)
    captioned_classes = _classes_with_captions(os.path.join(root, "text_c10"))
    dataset = CaptionedDataset(name="cub", class_names=class_names, splits={})

    def build(names):
        return _build_examples(names, records, root, captioned_classes, dataset,
                               captions_only, strict)

    if split == "class":
        train_names, test_names = read_class_split(root)
        train_names, validation_names = reader_utils.seeded_split(
            train_names, (validation_fraction,), seed)
        dataset.splits = {"train": build(train_names),
                          "validation": build(validation_names),
                          "test": build(test_names)}
    elif split == "caption":
        dataset.splits = _split_by_caption(build(list(records)), seed)
    else:
        train, validation, test = reader_utils.seeded_split(
            build(list(records)), tuple(CAPTION_SPLIT_FRACTIONS.values()), seed)
        dataset.splits = {"train": train, "validation": validation, "test": test}
    return dataset


def load_cub_real_by_class(root, strict=False, seed=0, validation_fraction=0.1,
                           test_fraction=0.1):
    """The partial copy's photos `root/images_by_class/<class>/NNNN.jpg`.

    These photos lost their CUB file names, so they are paired with
    captions by class only: photo i of a class (sorted) gets the captions of
    caption file i mod n of that class (n good caption files, sorted). The
    captions describe a bird of the right species, not that exact photo.
    Each class is split by photo into train / validation / test with a
    seed. Only classes with both photos and captions are read.
    """
    reader_utils.check_fractions(validation_fraction=validation_fraction,
                                 test_fraction=test_fraction)
    reader_utils.require_directory(root, "CUB root directory")
    photos_dir = os.path.join(root, "images_by_class")
    text_dir = os.path.join(root, "text_c10")
    reader_utils.require_directory(photos_dir, "photo directory images_by_class")
    reader_utils.require_directory(text_dir, "caption directory text_c10 of Reed et al.")
    class_names = read_class_names(root)
    label_of = {name: label for label, name in enumerate(class_names)}
    dataset = CaptionedDataset(name="cub_real_by_class", class_names=class_names,
                               splits={"train": [], "validation": [], "test": []})
    for class_name in sorted(os.listdir(photos_dir)):
        class_photos = os.path.join(photos_dir, class_name)
        if not os.path.isdir(class_photos):
            continue
        if class_name not in label_of:
            raise ValueError(f"{class_photos}: class {class_name!r} is not in classes.txt")
        photos = sorted(f for f in os.listdir(class_photos)
                        if f.lower().endswith(reader_utils.IMAGE_EXTENSIONS))
        caption_sets = _class_caption_sets(dataset, text_dir, class_name, strict)
        examples = []
        for i, photo in enumerate(photos):
            name = f"{class_name}/{os.path.splitext(photo)[0]}"
            if not caption_sets:
                dataset.skip(name, reader_utils.CLASS_WITHOUT_CAPTIONS)
                continue
            examples.append(Example(name=name, captions=caption_sets[i % len(caption_sets)],
                                    label=label_of[class_name],
                                    image_path=os.path.join(class_photos, photo)))
        train, validation, test = reader_utils.seeded_split(
            examples, (validation_fraction, test_fraction), f"{seed}:{class_name}")
        dataset.splits["train"] += train
        dataset.splits["validation"] += validation
        dataset.splits["test"] += test
    return dataset


def _class_caption_sets(dataset, text_dir, class_name, strict):
    """The captions of every usable caption file of one class, by file name."""
    class_text = os.path.join(text_dir, class_name)
    if not os.path.isdir(class_text):
        return []
    caption_sets = []
    for file_name in sorted(f for f in os.listdir(class_text) if f.endswith(".txt")):
        name = f"{class_name}/{file_name[:-len('.txt')]}"
        captions = reader_utils.captions_or_skip(
            dataset, name, os.path.join(class_text, file_name), strict)
        if captions is not None:
            caption_sets.append(captions)
    return caption_sets
