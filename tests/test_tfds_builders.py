import os

import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from sagan_tf.data import shapes_grammar as grammar  # noqa: E402
from sagan_tf.data import tfds_builders  # noqa: E402

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "cub_real")


def test_shapes_builder_prepares_and_loads(tmp_path):
    builder = tfds_builders.CaptionedShapes(config="tiny", data_dir=str(tmp_path))
    builder.download_and_prepare()
    info = builder.info
    total = sum(info.splits[s].num_examples for s in ("train", "validation", "test"))
    assert total == 200
    ds = tfds.load("captioned_shapes/tiny", split="test", data_dir=str(tmp_path))
    shape_names = info.features["attributes"]["shape"].names
    color_names = info.features["attributes"]["color"].names
    held_out = 0
    for example in ds:
        assert example["image"].shape == (32, 32, 3)
        captions = [c.decode() for c in example["captions"].numpy()]
        assert len(captions) == 3
        truth = {"shape": shape_names[int(example["attributes"]["shape"])],
                 "color": color_names[int(example["attributes"]["color"])]}
        for caption in captions:
            parsed = grammar.parse_caption(caption)
            assert (parsed["shape"], parsed["color"]) == (truth["shape"], truth["color"])
        held_out += (truth["shape"], truth["color"]) in tfds_builders.shapes.HELD_OUT_PAIRS
    assert held_out > 0


def test_cub_builder_reads_the_manual_dir_without_downloading(tmp_path):
    builder = tfds_builders.CubCaptions(config="captions_only", data_dir=str(tmp_path))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=FIXTURE))
    assert builder.info.splits["test"].num_examples == 209  # the 4 captioned test classes
    example = next(iter(builder.as_dataset(split="test")))
    assert len(example["captions"]) == 10
    assert 0 <= int(example["label"]) < 200


def test_folder_builder_with_images(tmp_path):
    from PIL import Image
    root = tmp_path / "mine"
    (root / "images").mkdir(parents=True)
    (root / "captions").mkdir()
    for k in range(12):
        Image.new("RGB", (40, 30), (20 * k, 0, 0)).save(root / "images" / f"img{k}.png")
        (root / "captions" / f"img{k}.txt").write_text(f"a picture number {k}\nanother line\n")
    builder = tfds_builders.CaptionedImageFolder(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
    counts = {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")}
    assert sum(counts.values()) == 12
    example = next(iter(builder.as_dataset(split="train")))
    assert example["image"].shape == (76, 76, 3)
