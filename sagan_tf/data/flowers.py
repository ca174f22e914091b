"""Oxford-102 flowers with Reed et al.'s captions, in Reed's layout.

    jpg/image_XXXXX.jpg
    text_c10/class_XXXXX/image_XXXXX.txt      one caption per line

The text directories give each image its class. The class split comes from,
in order of preference: StackGAN's `{train,test}/filenames.pickle` (or
under `splits/`), Reed's `trainvalclasses.txt` / `testclasses.txt`, or a
seeded split of 82 train / 20 test classes out of 102.
"""

import os

from sagan_tf.data import reader_utils
from sagan_tf.data.records import CaptionedDataset

# Reed et al. and StackGAN keep 20 of the 102 classes for testing.
TEST_CLASS_FRACTION = 20 / 102


def _caption_files(text_dir):
    """{image name: (class name, caption path)} from text_c10/class_*/image_*.txt."""
    files = {}
    for class_name in sorted(os.listdir(text_dir)):
        class_dir = os.path.join(text_dir, class_name)
        if not os.path.isdir(class_dir):
            continue
        for file_name in sorted(os.listdir(class_dir)):
            if file_name.endswith(".txt"):
                files[file_name[:-len(".txt")]] = (class_name, os.path.join(class_dir, file_name))
    return files


def _read_class_list(path):
    with open(path, encoding="utf-8") as file:
        return {line.strip() for line in file if line.strip()}


def _split_image_names(root, caption_files, class_names, seed):
    """(train+validation image names, test image names) in sorted order."""
    pickles = reader_utils.find_split_pickles(root)
    if pickles is not None:
        # StackGAN keys may carry a directory ("jpg/image_00001"); the image is the base name.
        return tuple([name.rsplit("/", 1)[-1] for name in reader_utils.load_name_list(path)]
                     for path in pickles)
    class_files = [os.path.join(root, f) for f in ("trainvalclasses.txt", "testclasses.txt")]
    if all(os.path.isfile(path) for path in class_files):
        train_classes, test_classes = (_read_class_list(path) for path in class_files)
    else:
        train_classes, test_classes = reader_utils.seeded_split(
            class_names, (TEST_CLASS_FRACTION,), seed)
    return tuple([name for name, (class_name, _) in caption_files.items() if class_name in part]
                 for part in (set(train_classes), set(test_classes)))


def load_flowers(root, captions_only=False, strict=False, seed=0, validation_fraction=0.1):
    """Reads Oxford-102 + Reed et al.'s captions into a CaptionedDataset.

    Train classes are split by image into train and validation
    (`validation_fraction`); test classes form the test split. Labels index
    the sorted `class_XXXXX` directories. Bad examples are skipped and
    counted, or raise BadExampleError when `strict`.
    """
    reader_utils.check_fractions(validation_fraction=validation_fraction)
    reader_utils.require_directory(root, "flowers root directory")
    text_dir = os.path.join(root, "text_c10")
    reader_utils.require_directory(text_dir, "caption directory text_c10 of Reed et al.")
    if not captions_only:
        reader_utils.require_directory(os.path.join(root, "jpg"), "image directory jpg")
    caption_files = _caption_files(text_dir)
    class_names = sorted({class_name for class_name, _ in caption_files.values()})
    if not class_names:
        raise FileNotFoundError(
            f"no caption files found: expected {text_dir}/class_XXXXX/image_XXXXX.txt")
    label_of = {name: label for label, name in enumerate(class_names)}
    dataset = CaptionedDataset(name="flowers", class_names=class_names, splits={})

    def build(names):
        examples = []
        for name in names:
            if name not in caption_files:
                dataset.skip(name, reader_utils.MISSING_CAPTIONS, strict)
                continue
            class_name, caption_path = caption_files[name]
            example = reader_utils.example_or_skip(
                dataset, name, caption_path, os.path.join(root, "jpg", name + ".jpg"),
                captions_only, strict, label=label_of[class_name])
            if example is not None:
                examples.append(example)
        return examples

    train_names, test_names = _split_image_names(root, caption_files, class_names, seed)
    train_names, validation_names = reader_utils.seeded_split(
        train_names, (validation_fraction,), seed)
    dataset.splits = {"train": build(train_names),
                      "validation": build(validation_names),
                      "test": build(test_names)}
    return dataset
