import numpy as np
import pytest

from sagan_tf.data import pipeline


def _index_and_images(tiny_shapes, split="train"):
    examples = tiny_shapes.splits[split]
    images = tiny_shapes.images[[e.image_index for e in examples]]
    return pipeline.CaptionIndex.from_examples(examples), images, examples


def test_caption_index_offsets(tiny_shapes):
    index, images, examples = _index_and_images(tiny_shapes)
    assert len(index.texts) == 3 * len(examples) == index.offsets[-1]
    assert index.owners[index.offsets[5]] == 5
    assert index.groups[index.offsets[5]] == examples[5].label


def test_gan_batches_pair_matching_and_mismatched_captions(tiny_shapes):
    index, images, _ = _index_and_images(tiny_shapes)
    caption_ids = np.arange(len(index.texts))[:, None]
    ds = pipeline.gan_dataset(images, index, {"caption": caption_ids}, batch_size=16, seed=0)
    seen = 0
    for batch in ds.take(5):
        assert batch["image"].shape == (16, 32, 32, 3)
        image = batch["image"].numpy()
        assert image.min() >= -1 and image.max() <= 1
        match = batch["caption"].numpy()[:, 0]
        wrong = batch["wrong_caption"].numpy()[:, 0]
        # The matching caption belongs to the image in the batch.
        for k in range(16):
            expected = images[index.owners[match[k]]].astype(np.float32) / 127.5 - 1
            np.testing.assert_allclose(image[k], expected, atol=1e-6)
        # The mismatched caption is of another class; the label is the matching caption's.
        assert (index.groups[match] != index.groups[wrong]).all()
        np.testing.assert_array_equal(batch["label"].numpy(), index.labels[match])
        seen += 16
    assert seen == 80


def test_gan_pipeline_is_deterministic_for_a_seed(tiny_shapes):
    index, images, _ = _index_and_images(tiny_shapes)
    ids = {"caption": np.arange(len(index.texts))[:, None]}
    first = [b["wrong_caption"].numpy() for b in pipeline.gan_dataset(images, index, ids, 8, seed=4).take(3)]
    again = [b["wrong_caption"].numpy() for b in pipeline.gan_dataset(images, index, ids, 8, seed=4).take(3)]
    other = [b["wrong_caption"].numpy() for b in pipeline.gan_dataset(images, index, ids, 8, seed=5).take(3)]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a_started_stream_goes_on_where_a_whole_one_stands(tiny_shapes):
    """`start` skips drawn examples: over epoch ends, with the same order, crops and captions."""
    index, images, _ = _index_and_images(tiny_shapes)
    ids = {"caption": np.arange(len(index.texts))[:, None]}
    per_epoch = len(images) // 8

    def batches(start, count):
        ds = pipeline.gan_dataset(images, index, ids, 8, seed=4, augment=True, image_size=28, repeat=True,
                                  start=start * 8)
        return [{k: v.numpy() for k, v in b.items()} for b in ds.take(count)]

    whole = batches(0, per_epoch + 3)
    for start in (2, per_epoch - 1, per_epoch + 1):
        for a, b in zip(whole[start:], batches(start, 2)):
            for key in a:
                np.testing.assert_array_equal(a[key], b[key])


def test_augment_crops_to_image_size(tiny_shapes):
    index, images, _ = _index_and_images(tiny_shapes)
    batch = next(iter(pipeline.gan_dataset(images, index, {"c": np.zeros((len(index.texts), 1))}, 4,
                                           augment=True, image_size=24)))
    assert batch["image"].shape == (4, 24, 24, 3)


def test_single_class_data_is_refused():
    from sagan_tf.data.records import Example
    examples = [Example(name="a", captions=["x"], label=0), Example(name="b", captions=["y"], label=0)]
    index = pipeline.CaptionIndex.from_examples(examples)
    with pytest.raises(ValueError, match="at least two classes"):
        pipeline.gan_dataset(np.zeros((2, 8, 8, 3), np.uint8), index, {"c": np.zeros((2, 1))}, 2)


def test_encoder_dataset_batches(tiny_shapes):
    ds = pipeline.encoder_dataset(np.ones((10, 4), np.int32), np.arange(10), batch_size=4)
    sizes = [int(x.shape[0]) for x, _ in ds]
    assert sizes == [4, 4, 2]


def test_fit_pipelines_start_no_autotune_thread(tiny_shapes):
    # The thread whose missed wake-up held fit() idle where it released an iterator.
    index, images, _ = _index_and_images(tiny_shapes)
    gan = pipeline.gan_dataset(images, index, {"caption": np.arange(len(index.texts))[:, None]}, 8)
    encoder = pipeline.encoder_dataset(np.ones((10, 4), np.int32), np.arange(10), batch_size=4)
    for ds in (gan, encoder):
        assert ds.options().autotune.enabled is False
    # Parallel map and prefetch still run, at fixed widths.
    assert len(list(gan.take(3))) == 3


def test_gan_shards_split_the_images_and_draw_distinct_noise_streams(tiny_shapes):
    index, images, _ = _index_and_images(tiny_shapes)
    ids = {"caption": np.arange(len(index.texts))[:, None]}

    def owners(shard):
        ds = pipeline.gan_dataset(images, index, ids, 4, shuffle=False, drop_remainder=False, shard=shard)
        return [int(index.owners[c]) for batch in ds for c in batch["caption"].numpy()[:, 0]]

    first, second = owners((0, 2)), owners((1, 2))
    assert sorted(first + second) == list(range(len(images)))
    assert first[:3] == [0, 2, 4] and second[:3] == [1, 3, 5]
