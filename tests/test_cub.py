"""CUB reader, on the fixture and the real partial copy."""

import collections
import math
import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from sagan_tf import config as config_lib
from sagan_tf.data import cub, image_io, reader_utils, registry
from sagan_tf.data.records import BadExampleError

FIXTURE_ROOT = os.path.join(os.path.dirname(__file__), "fixtures", "cub_real")
REAL_ROOT = "/work/shared/data/cub_real"

# Counts of the two copies: the real ones are those its README states.
Copy = collections.namedtuple(
    "Copy", "root caption_classes images captions photo_classes photos")
FIXTURE = Copy(FIXTURE_ROOT, 4, 209, 2090, 2, 10)
REAL = Copy(REAL_ROOT, 50, 2933, 29330, 23, 1358)
ALL_IMAGES = 11788

COPIES = [
    pytest.param(FIXTURE, id="fixture"),
    pytest.param(REAL, id="real", marks=pytest.mark.skipif(
        not os.path.isdir(REAL_ROOT), reason="real CUB partial copy not on this machine")),
]


def _class_of(name):
    return name.split("/")[0]


@pytest.fixture
def cub_copy(tmp_path):
    """A writable copy of the fixture, for breaking on purpose."""
    root = tmp_path / "cub"
    shutil.copytree(FIXTURE_ROOT, root)
    return root


# --- class split and captions ---------------------------------------------------


@pytest.mark.parametrize("copy", COPIES)
def test_class_split_is_150_by_50_classes(copy):
    train, test = cub.read_class_split(copy.root)
    assert (len(train), len(test)) == (8855, 2933)
    train_classes = {_class_of(n) for n in train}
    test_classes = {_class_of(n) for n in test}
    assert (len(train_classes), len(test_classes)) == (150, 50)
    assert not train_classes & test_classes


@pytest.mark.parametrize("copy", COPIES)
def test_class_split_captions_only_reads_every_captioned_image(copy):
    start = time.perf_counter()
    dataset = cub.load_cub(copy.root, captions_only=True, strict=True)
    assert time.perf_counter() - start < 10.0
    stats = dataset.stats()
    # Captions exist only for test classes here, so train and validation are empty.
    assert stats["examples"] == {"train": 0, "validation": 0, "test": copy.images}
    assert stats["captions"]["test"] == copy.captions
    assert dataset.skipped == {reader_utils.CLASS_WITHOUT_CAPTIONS: ALL_IMAGES - copy.images}
    assert dataset.num_classes == 200
    assert dataset.class_names[0] == "001.Black_footed_Albatross"
    test = dataset.splits["test"]
    assert len({_class_of(e.name) for e in test}) == copy.caption_classes
    for example in test:
        assert dataset.class_names[example.label] == _class_of(example.name)
        assert example.image_path is None
        assert len(example.captions) == 10
        assert all(c == c.strip() and c for c in example.captions)
    first = test[0]
    assert first.name == "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18"
    assert first.bbox == (60.0, 27.0, 325.0, 304.0)
    assert first.captions[0] == "light tan colored bird with a white head and an orange beak."


@pytest.mark.parametrize("copy", COPIES)
def test_images_listed_but_absent_are_skipped(copy):
    dataset = cub.load_cub(copy.root)
    assert sum(len(v) for v in dataset.splits.values()) == 0
    assert dataset.skipped[reader_utils.IMAGE_ABSENT] == copy.images
    with pytest.raises(BadExampleError, match="image listed in metadata but absent"):
        cub.load_cub(copy.root, strict=True)


def test_seed_caption_split_sizes_match_the_seed():
    # The seed's 117,880 CUB captions: 75,443 / 18,861 / 23,576.
    train, validation, test = reader_utils.seeded_split(
        range(117880), tuple(cub.CAPTION_SPLIT_FRACTIONS.values()), seed=0)
    assert (len(train), len(validation), len(test)) == (75443, 18861, 23576)


@pytest.mark.parametrize("copy", COPIES)
def test_caption_split_splits_caption_pairs(copy):
    dataset = cub.load_cub(copy.root, split="caption", captions_only=True, seed=3)
    stats = dataset.stats()
    test = math.ceil(copy.captions * 0.2)
    validation = math.ceil(copy.captions * 0.16)
    assert stats["captions"] == {"train": copy.captions - test - validation,
                                 "validation": validation, "test": test}
    # Every caption of every image lands in exactly one split.
    original = {e.name: e.captions for e in cub.load_cub(copy.root, captions_only=True)
                .splits["test"]}
    regrouped = collections.defaultdict(list)
    for split in ("train", "validation", "test"):
        for example in dataset.splits[split]:
            regrouped[example.name] += example.captions
    assert len(regrouped) == copy.images
    assert all(sorted(regrouped[n]) == sorted(c) for n, c in original.items())
    again = cub.load_cub(copy.root, split="caption", captions_only=True, seed=3)
    other = cub.load_cub(copy.root, split="caption", captions_only=True, seed=4)
    assert again.splits == dataset.splits
    assert other.splits["test"] != dataset.splits["test"]


def test_train_classes_are_split_by_image_into_validation(cub_copy):
    # Give one train class captions so that train and validation fill.
    train_names, _ = cub.read_class_split(cub_copy)
    laysan = [n for n in train_names if n.startswith("002.")]
    os.makedirs(cub_copy / "text_c10" / "002.Laysan_Albatross")
    for name in laysan:
        (cub_copy / "text_c10" / f"{name}.txt").write_text("a white bird.\n\n  a big bird. \n")
    dataset = cub.load_cub(cub_copy, captions_only=True, validation_fraction=0.5)
    train = {e.name for e in dataset.splits["train"]}
    validation = {e.name for e in dataset.splits["validation"]}
    assert train | validation == set(laysan)
    assert not train & validation and train and validation
    example = dataset.splits["train"][0]
    assert example.captions == ["a white bird.", "a big bird."]
    assert example.label == 1


def test_present_images_are_found_and_decode(cub_copy):
    names = ["001.Black_footed_Albatross/Black_Footed_Albatross_0046_18",
             "001.Black_footed_Albatross/Black_Footed_Albatross_0009_34"]
    for name in names:
        path = cub_copy / "CUB_200_2011" / "images" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (500, 400), (10, 200, 30)).save(path)
    dataset = cub.load_cub(cub_copy)
    test = dataset.splits["test"]
    assert [e.name for e in test] == names
    assert dataset.skipped[reader_utils.IMAGE_ABSENT] == FIXTURE.images - 2
    images, ok, failures = image_io.load_images([(e.image_path, e.bbox) for e in test], size=32)
    assert images.shape == (2, 32, 32, 3) and ok == [0, 1] and failures == []
    np.testing.assert_allclose(images.reshape(-1, 3).mean(0), (10, 200, 30), atol=2)


# --- bad input -------------------------------------------------------------------


def test_missing_directories_and_metadata_are_named(cub_copy, tmp_path):
    with pytest.raises(FileNotFoundError, match="CUB root directory not found"):
        cub.load_cub(tmp_path / "nowhere")
    shutil.rmtree(cub_copy / "splits")
    with pytest.raises(FileNotFoundError, match=r"train/filenames\.pickle"):
        cub.load_cub(cub_copy, captions_only=True)
    # The caption split needs no split pickles.
    assert cub.load_cub(cub_copy, split="caption", captions_only=True).stats()["captions"]
    os.remove(cub_copy / "CUB_200_2011" / "bounding_boxes.txt")
    with pytest.raises(FileNotFoundError, match=r"metadata file not found.*bounding_boxes\.txt"):
        cub.load_cub(cub_copy, split="caption")
    shutil.rmtree(cub_copy / "text_c10")
    with pytest.raises(FileNotFoundError, match="text_c10"):
        cub.load_cub(cub_copy, split="caption")


def test_malformed_metadata_line_is_located(cub_copy):
    path = cub_copy / "CUB_200_2011" / "image_class_labels.txt"
    lines = path.read_text().splitlines()
    lines[4] = "5"
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"image_class_labels\.txt:5: expected 2"):
        cub.load_cub(cub_copy, captions_only=True)
    lines[4] = "5 five"
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"image id 5 \(.*\) has a class label or bounding box"):
        cub.load_cub(cub_copy, captions_only=True)
    with pytest.raises(ValueError, match="split must be"):
        cub.load_cub(cub_copy, split="species")
    with pytest.raises(ValueError, match=r"validation_fraction must be in \[0, 1\), got 1.5"):
        cub.load_cub(cub_copy, validation_fraction=1.5)
    with pytest.raises(ValueError, match=r"validation_fraction \+ test_fraction must be below 1"):
        cub.load_cub_real_by_class(cub_copy, validation_fraction=0.6, test_fraction=0.4)


def test_bad_caption_files_are_skipped_and_counted(cub_copy):
    text = cub_copy / "text_c10" / "001.Black_footed_Albatross"
    os.remove(text / "Black_Footed_Albatross_0046_18.txt")
    (text / "Black_Footed_Albatross_0009_34.txt").write_text("\n   \n\n")
    (text / "Black_Footed_Albatross_0002_55.txt").write_bytes(b"a bird \xff\xfe\xfa\n")
    dataset = cub.load_cub(cub_copy, captions_only=True)
    assert dataset.skipped[reader_utils.MISSING_CAPTIONS] == 1
    assert dataset.skipped[reader_utils.EMPTY_CAPTIONS] == 1
    assert dataset.skipped[reader_utils.CAPTIONS_NOT_UTF8] == 1
    assert dataset.skipped_names[reader_utils.MISSING_CAPTIONS] == [
        "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18"]
    assert len(dataset.splits["test"]) == FIXTURE.images - 3
    with pytest.raises(BadExampleError,
                       match="Black_Footed_Albatross_0046_18: missing caption file"):
        cub.load_cub(cub_copy, captions_only=True, strict=True)


# --- photos paired by class --------------------------------------------------------


def test_the_partial_copy_photos_make_only_the_split_by_image(tmp_path):
    def load(split):
        return registry.load_dataset(config_lib.load(
            None, ["data.name=cub", f"data.root={FIXTURE_ROOT}", f"data.split={split}"]).data, str(tmp_path))

    assert load("image").splits == cub.load_cub_real_by_class(FIXTURE_ROOT).splits
    for split in ("class", "caption"):
        with pytest.raises(ValueError, match=f"data.split={split} is not a split of the partial CUB copy's "
                                             "photos .of test classes only.: choose image"):
            load(split)


@pytest.mark.parametrize("copy", COPIES)
def test_photos_pair_with_captions_of_their_class(copy):
    dataset = cub.load_cub_real_by_class(copy.root, strict=True)
    examples = [e for split in dataset.splits.values() for e in split]
    assert len(examples) == copy.photos
    assert len({_class_of(e.name) for e in examples}) == copy.photo_classes
    assert all(os.path.isfile(e.image_path) for e in examples)
    for class_name in {_class_of(e.name) for e in examples}:
        in_class = {split: [e for e in v if _class_of(e.name) == class_name]
                    for split, v in dataset.splits.items()}
        count = sum(len(v) for v in in_class.values())
        assert len(in_class["validation"]) == math.ceil(count * 0.1)
        assert len(in_class["test"]) == math.ceil(count * 0.1)
    text = os.path.join(copy.root, "text_c10", "001.Black_footed_Albatross")
    caption_files = sorted(os.listdir(text))
    by_name = {e.name: e for e in examples}
    for index in (0, 3):
        example = by_name[f"001.Black_footed_Albatross/{index:04d}"]
        assert example.label == 0
        assert example.captions == reader_utils.read_captions(
            os.path.join(text, caption_files[index % len(caption_files)]))
    assert dataset.stats()["with_images"] == {k: len(v) for k, v in dataset.splits.items()}


def test_photos_of_classes_without_captions_are_skipped(cub_copy):
    shutil.rmtree(cub_copy / "text_c10" / "004.Groove_billed_Ani")
    dataset = cub.load_cub_real_by_class(cub_copy, seed=1)
    assert dataset.skipped == {reader_utils.CLASS_WITHOUT_CAPTIONS: 5}
    assert {_class_of(e.name) for v in dataset.splits.values() for e in v} == {
        "001.Black_footed_Albatross"}
    with pytest.raises(FileNotFoundError, match="images_by_class"):
        cub.load_cub_real_by_class(cub_copy / "text_c10")


def test_image_split_keeps_every_image_in_one_split():
    dataset = cub.load_cub(FIXTURE_ROOT, split="image", captions_only=True, seed=0)
    names = [e.name for split in dataset.splits.values() for e in split]
    assert len(names) == len(set(names)) == 209
    assert all(len(e.captions) == 10 for split in dataset.splits.values() for e in split)
    assert len(dataset.splits["test"]) == math.ceil(209 * 0.2)
