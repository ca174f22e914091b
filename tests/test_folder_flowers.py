"""Oxford-102 flowers (Reed's layout) and user image folders, on synthetic trees."""

import dataclasses
import math
import os
import pickle
import shutil

import pytest
from PIL import Image

from sagan_tf import config as config_lib
from sagan_tf.data import flowers, folder, image_io, prepare, reader_utils, registry
from sagan_tf.data.records import BadExampleError
from sagan_tf.digests import dataset_digest

NUM_CLASSES = 6
IMAGES_PER_CLASS = 4


def _write_image(path, colour=(200, 40, 40), suffix_format=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 20), colour).save(path, format=suffix_format)


@pytest.fixture
def flowers_root(tmp_path):
    """6 classes x 4 images: image k belongs to class_{k // 4 + 1}."""
    root = tmp_path / "flowers"
    for index in range(NUM_CLASSES * IMAGES_PER_CLASS):
        image = f"image_{index + 1:05d}"
        class_dir = root / "text_c10" / f"class_{index // IMAGES_PER_CLASS + 1:05d}"
        class_dir.mkdir(parents=True, exist_ok=True)
        (class_dir / f"{image}.txt").write_text(
            f"flower {index} has red petals.\n\n  flower {index} is round.  \n")
        _write_image(root / "jpg" / f"{image}.jpg")
    return root


def _all_examples(dataset):
    return [e for split in dataset.splits.values() for e in split]


def _classes_of(examples, dataset):
    return {dataset.class_names[e.label] for e in examples}


def test_flowers_seeded_class_split(flowers_root):
    dataset = flowers.load_flowers(flowers_root)
    assert dataset.class_names == [f"class_{i:05d}" for i in range(1, NUM_CLASSES + 1)]
    examples = _all_examples(dataset)
    assert len(examples) == NUM_CLASSES * IMAGES_PER_CLASS
    for example in examples:
        index = int(example.name[len("image_"):]) - 1
        assert example.label == index // IMAGES_PER_CLASS
        assert example.captions == [f"flower {index} has red petals.", f"flower {index} is round."]
        assert example.image_path.endswith(f"jpg/{example.name}.jpg")
    # 20 of 102 classes for testing, scaled: ceil(6 * 20 / 102) = 2.
    test_classes = _classes_of(dataset.splits["test"], dataset)
    train_classes = _classes_of(dataset.splits["train"] + dataset.splits["validation"], dataset)
    assert len(test_classes) == 2 and not test_classes & train_classes
    assert len(dataset.splits["validation"]) == math.ceil(16 * 0.1)
    assert flowers.load_flowers(flowers_root).splits == dataset.splits
    _, test_of_102 = reader_utils.seeded_split(range(102), (flowers.TEST_CLASS_FRACTION,), 0)
    assert len(test_of_102) == 20


def test_flowers_reed_class_lists(flowers_root):
    (flowers_root / "trainvalclasses.txt").write_text(
        "class_00001\nclass_00002\nclass_00003\nclass_00004\n")
    (flowers_root / "testclasses.txt").write_text("class_00005\nclass_00006\n\n")
    dataset = flowers.load_flowers(flowers_root, validation_fraction=0.25, seed=5)
    assert _classes_of(dataset.splits["test"], dataset) == {"class_00005", "class_00006"}
    assert len(dataset.splits["test"]) == 8
    assert (len(dataset.splits["train"]), len(dataset.splits["validation"])) == (12, 4)


def test_flowers_split_pickles_win_and_missing_files_are_skipped(flowers_root):
    (flowers_root / "testclasses.txt").write_text("class_00001\n")
    (flowers_root / "trainvalclasses.txt").write_text("class_00002\n")
    names = [f"jpg/image_{i:05d}" for i in range(1, 25)]
    for split, part in (("train", names[:20] + ["jpg/image_00099"]), ("test", names[20:])):
        (flowers_root / split).mkdir()
        (flowers_root / split / "filenames.pickle").write_bytes(pickle.dumps(part, protocol=2))
    (flowers_root / "jpg" / "image_00021.jpg").unlink()
    dataset = flowers.load_flowers(flowers_root)
    assert [e.name for e in dataset.splits["test"]] == ["image_00022", "image_00023", "image_00024"]
    assert len(dataset.splits["train"]) + len(dataset.splits["validation"]) == 20
    assert dataset.skipped == {reader_utils.IMAGE_ABSENT: 1, reader_utils.MISSING_CAPTIONS: 1}
    captions_only = flowers.load_flowers(flowers_root, captions_only=True)
    assert [e.image_path for e in captions_only.splits["test"]] == [None] * 4
    with pytest.raises(BadExampleError, match="image_00099: missing caption file"):
        flowers.load_flowers(flowers_root, strict=True)


def test_flowers_bad_input(flowers_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="flowers root directory not found"):
        flowers.load_flowers(tmp_path / "nowhere")
    (flowers_root / "text_c10" / "class_00001" / "image_00001.txt").write_bytes(b"\xff\xfe bad")
    (flowers_root / "text_c10" / "class_00001" / "image_00002.txt").write_text(" \n")
    dataset = flowers.load_flowers(flowers_root)
    assert dataset.skipped == {reader_utils.CAPTIONS_NOT_UTF8: 1, reader_utils.EMPTY_CAPTIONS: 1}
    shutil.rmtree(flowers_root / "jpg")
    with pytest.raises(FileNotFoundError, match="image directory jpg not found"):
        flowers.load_flowers(flowers_root)
    assert len(_all_examples(flowers.load_flowers(flowers_root, captions_only=True))) == 22
    for class_dir in (flowers_root / "text_c10").iterdir():
        shutil.rmtree(class_dir)
    with pytest.raises(FileNotFoundError, match="no caption files found"):
        flowers.load_flowers(flowers_root, captions_only=True)
    (flowers_root / "text_c10").rmdir()
    with pytest.raises(FileNotFoundError, match="caption directory text_c10"):
        flowers.load_flowers(flowers_root, captions_only=True)


@pytest.fixture
def folder_root(tmp_path):
    """10 captioned images a0..a9 (jpg and png), two classes in classes.txt."""
    root = tmp_path / "mine"
    for index in range(10):
        suffix = ".png" if index % 2 else ".jpg"
        _write_image(root / "images" / f"a{index}{suffix}", colour=(index * 20, 0, 0))
        captions = root / "captions"
        captions.mkdir(parents=True, exist_ok=True)
        (captions / f"a{index}.txt").write_text(f"\n  picture {index}\nanother line {index}\n")
    (root / "classes.txt").write_text(
        "\n".join(f"a{i} {'red things' if i < 5 else 'blue things'}" for i in range(10)))
    return root


def test_folder_pairs_images_with_captions_and_splits_80_10_10(folder_root):
    dataset = folder.load_folder(folder_root, seed=2)
    assert dataset.class_names == ["blue things", "red things"]
    assert {k: len(v) for k, v in dataset.splits.items()} == {
        "train": 8, "validation": 1, "test": 1}
    by_name = {e.name: e for e in _all_examples(dataset)}
    assert sorted(by_name) == [f"a{i}" for i in range(10)]
    assert by_name["a3"].captions == ["picture 3", "another line 3"]
    assert by_name["a3"].label == 1 and by_name["a7"].label == 0
    assert by_name["a3"].image_path.endswith("images/a3.png")
    assert dataset.skipped == {}
    assert folder.load_folder(folder_root, seed=2).splits == dataset.splits
    other_seeds = [folder.load_folder(folder_root, seed=s).splits["test"] for s in range(3, 8)]
    assert any(split != dataset.splits["test"] for split in other_seeds)


def test_folder_skips_and_counts_unpaired_and_bad_files(folder_root):
    _write_image(folder_root / "images" / "lonely.jpeg")
    (folder_root / "captions" / "no_image.txt").write_text("a caption without a picture\n")
    (folder_root / "captions" / "a0.txt").write_text("\n\n")
    (folder_root / "captions" / "a1.txt").write_bytes(b"caf\xe9\n")
    _write_image(folder_root / "images" / "a2.png")
    (folder_root / "classes.txt").write_text(
        "\n".join(f"a{i} red" for i in range(9)) + "\nlonely red\nno_image red\n")
    dataset = folder.load_folder(folder_root)
    assert dataset.skipped == {
        reader_utils.MISSING_CAPTIONS: 1, folder.CAPTIONS_WITHOUT_IMAGE: 1,
        reader_utils.EMPTY_CAPTIONS: 1, reader_utils.CAPTIONS_NOT_UTF8: 1,
        folder.AMBIGUOUS_IMAGE: 1, folder.NOT_IN_CLASSES: 1}
    assert dataset.skipped_names[folder.NOT_IN_CLASSES] == ["a9"]
    assert sorted(e.name for e in _all_examples(dataset)) == [f"a{i}" for i in range(3, 9)]
    with pytest.raises(BadExampleError, match="a0: empty caption file"):
        folder.load_folder(folder_root, strict=True)
    # Without images, caption files alone make the examples.
    captions_only = folder.load_folder(folder_root, captions_only=True)
    names = {e.name for e in _all_examples(captions_only)}
    assert "no_image" in names and "lonely" not in names
    assert all(e.image_path is None for e in _all_examples(captions_only))


def test_folder_classes_txt_as_editors_write_it(folder_root):
    _write_image(folder_root / "images" / "my photo.png")
    (folder_root / "captions" / "my photo.txt").write_text("a named photo\n")
    lines = [f"a{i} {'red things' if i < 5 else 'blue things'}" for i in range(10)]
    # A byte-order mark, Windows line ends, a name with a space, a line for a photo that is not there.
    (folder_root / "classes.txt").write_bytes(
        "\ufeff".encode() + "\r\n".join([*lines, "my photo  red things", "ghost green things"]).encode())
    dataset = folder.load_folder(folder_root, seed=2)
    assert dataset.class_names == ["blue things", "red things"]  # no empty "green things"
    by_name = {e.name: e for e in _all_examples(dataset)}
    assert by_name["my photo"].label == 1 and by_name["a0"].label == 1
    assert dataset.skipped == {folder.CLASS_WITHOUT_IMAGE: 1}
    assert dataset.skipped_names[folder.CLASS_WITHOUT_IMAGE] == ["ghost"]
    (folder_root / "classes.txt").write_bytes("a0 caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"classes\.txt is not UTF-8"):
        folder.load_folder(folder_root)


def test_folder_images_are_decoded_again_when_replaced_and_strict_stops_at_a_bad_one(folder_root, tmp_path):
    data = config_lib.load(None, ["data.name=folder", f"data.root={folder_root}", "data.image_size=16"]).data
    cache = str(tmp_path / "cache")
    first = registry.load_dataset(data, cache).splits["train"][0]
    train_size = len(registry.load_dataset(data, cache).splits["train"])
    digest = dataset_digest(registry.load_dataset(data, cache))
    bad = folder_root / "images" / os.path.basename(first.image_path)
    bad.write_bytes(b"not a picture")
    dataset = registry.load_dataset(data, cache)
    assert dataset_digest(dataset) != digest  # other data: not the run a trained model records
    images, kept = prepare.split_images(dataset, "train", 16, cache)
    assert len(kept) == train_size - 1 and dataset.skipped == {image_io.NOT_AN_IMAGE: 1}
    # Read from the cache, the bad photo is skipped (and stops a strict run) as on the first read.
    dataset = registry.load_dataset(data, cache)
    images, kept = prepare.split_images(dataset, "train", 16, cache)
    assert len(kept) == train_size - 1 and dataset.skipped == {image_io.NOT_AN_IMAGE: 1}
    assert dataset.skipped_names[image_io.NOT_AN_IMAGE] == [first.name]
    with pytest.raises(BadExampleError, match=f"{first.name}: not a decodable image"):
        prepare.split_images(registry.load_dataset(dataclasses.replace(data, strict=True), cache),
                             "train", 16, cache)

    _write_image(bad, colour=(0, 250, 0))  # the photo replaced under the same name
    dataset = registry.load_dataset(data, cache)
    images, kept = prepare.split_images(dataset, "train", 16, cache)
    assert len(kept) == train_size and dataset.skipped == {}
    assert images[[e.name for e in kept].index(first.name)].reshape(-1, 3).mean(0)[1] > 240

    bad.write_bytes(b"not a picture again")
    with pytest.raises(BadExampleError, match="not a decodable image"):
        prepare.split_images(registry.load_dataset(dataclasses.replace(data, strict=True), cache),
                             "train", 16, cache)


def test_an_empty_split_is_named_as_empty_not_as_captions_only(folder_root, tmp_path):
    dataset = folder.load_folder(folder_root)
    dataset.splits["test"] = []
    with pytest.raises(ValueError, match="test split of folder is empty: too few examples"):
        prepare.split_images(dataset, "test", 16, str(tmp_path))


def test_a_split_none_of_whose_images_decode_is_an_error(folder_root, tmp_path):
    for path in (folder_root / "images").iterdir():
        path.write_bytes(b"not a picture")
    dataset = folder.load_folder(folder_root)
    with pytest.raises(ValueError, match="none of the 8 images of the train split of folder could be read "
                                         r"\(not a decodable image"):
        prepare.split_images(dataset, "train", 16, str(tmp_path))


def test_a_box_changed_in_the_metadata_is_cropped_again(folder_root, tmp_path):
    dataset = folder.load_folder(folder_root)
    _write_image(folder_root / "images" / "a0.jpg", colour=(250, 0, 0))
    example = next(e for e in dataset.splits["train"] + dataset.splits["test"] + dataset.splits["validation"]
                   if e.name == "a0")
    split = next(name for name, items in dataset.splits.items() if example in items)
    prepare.split_images(dataset, split, 16, str(tmp_path))
    example.bbox = (0, 0, 4, 4)
    prepare.split_images(dataset, split, 16, str(tmp_path))
    assert len(list(tmp_path.glob(f"folder-{split}-16-*.npz"))) == 2


def test_folder_bad_input(folder_root, tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder root directory not found"):
        folder.load_folder(tmp_path / "nowhere")
    (folder_root / "classes.txt").write_text("a0 red\nonly_a_name\n")
    with pytest.raises(ValueError, match=r"classes\.txt:2: expected '<name> <class>'"):
        folder.load_folder(folder_root)
    with pytest.raises(ValueError, match="validation_fraction \\+ test_fraction"):
        folder.load_folder(folder_root, validation_fraction=0.5, test_fraction=0.5)
    for path in (folder_root / "images").iterdir():
        path.unlink()
    (folder_root / "images").rmdir()
    with pytest.raises(FileNotFoundError, match="image directory not found"):
        folder.load_folder(folder_root)


@pytest.mark.parametrize("name, split, message", [
    ("folder", "caption", "data.split=caption is not a split of folder data: choose class = by image"),
    ("flowers", "image", "data.split=image is not a split of the flowers data: choose class = Reed"),
    ("shapes", "caption", r"data.split=caption is not a split of the shapes data: choose class = held-out"),
])
def test_a_split_the_data_set_cannot_make_is_refused(name, split, message, folder_root, tmp_path):
    data = config_lib.load(None, [f"data.name={name}", f"data.root={folder_root}", f"data.split={split}"]).data
    with pytest.raises(ValueError, match=message):
        registry.load_dataset(data, str(tmp_path))


def test_folder_data_split_by_image_whichever_of_its_splits_is_named(folder_root, tmp_path):
    by_split = {split: registry.load_dataset(config_lib.load(
        None, ["data.name=folder", f"data.root={folder_root}", f"data.split={split}"]).data, str(tmp_path)).splits
        for split in ("class", "image")}
    assert by_split["class"] == by_split["image"] == folder.load_folder(folder_root).splits


def test_a_caption_line_is_broken_only_at_line_ends(folder_root):
    (folder_root / "captions" / "a0.txt").write_text("a red\u2028bird\x0cflying\r\nsecond line\rthird\n",
                                                     newline="")
    by_name = {e.name: e for e in _all_examples(folder.load_folder(folder_root))}
    assert by_name["a0"].captions == ["a red\u2028bird\x0cflying", "second line", "third"]
