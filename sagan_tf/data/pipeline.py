"""tf.data input pipelines for encoder pre-training and GAN training.

The GAN pipeline yields, per example, an image, one of its own captions and
a mismatched caption: one from an image of another class where classes
exist (from another image otherwise), as GAN-CLS's matching-aware
discriminator needs.

Both pipelines run without tf.data's autotuning thread (see
`without_autotune_thread`).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from sagan_tf import pixels


@dataclasses.dataclass
class CaptionIndex:
    """The captions of one split, flattened, with the image each belongs to."""

    texts: list
    # Row of the split's image array that each caption describes.
    owners: np.ndarray
    # Class of each caption (or its owner's row when the data has no classes).
    groups: np.ndarray
    # [num_images + 1] start offsets of each image's captions in `texts`.
    offsets: np.ndarray

    @classmethod
    def from_examples(cls, examples):
        texts, owners, groups, offsets = [], [], [], [0]
        for row, example in enumerate(examples):
            texts.extend(example.captions)
            owners.extend([row] * len(example.captions))
            groups.extend([example.label if example.label >= 0 else row] * len(example.captions))
            offsets.append(len(texts))
        return cls(texts, np.array(owners, np.int32), np.array(groups, np.int32),
                   np.array(offsets, np.int64))

    @property
    def labels(self):
        return self.groups


def without_autotune_thread(ds):
    """`ds` with tf.data's autotuning off, so that its iterators start no autotuning thread.

    In TF 2.21 that thread can miss the wake-up it gets when its iterator is
    released and sleep out its optimisation period first: fit() then sits
    idle for up to a minute where Keras drops an iterator, at the start of a
    validation pass (the previous pass's iterator) and at fit()'s end.
    Without autotuning, a parallel map runs one call per core and prefetch
    sizes its buffer on its own, which is all these in-memory pipelines need.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def encoder_dataset(token_ids, labels, batch_size, shuffle=True, seed=0):
    """(token ids, class label) batches for caption classification."""
    ds = tf.data.Dataset.from_tensor_slices((token_ids, labels))
    if shuffle:
        ds = ds.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    return without_autotune_thread(ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))


def _pick_captions(starts, counts, groups):
    """Returns a function image row -> (matching caption id, mismatched caption id)."""
    num_captions = tf.cast(tf.shape(groups)[0], tf.int64)
    if len(np.unique(groups)) < 2:
        raise ValueError("mismatched captions need at least two classes (or two images)")

    def pick(row, stream_seed):
        seeds = tf.random.experimental.stateless_split(stream_seed, 2)
        start = tf.gather(starts, row)
        count = tf.gather(counts, row)
        match = start + tf.random.stateless_uniform([], seeds[0], 0, count, dtype=tf.int64)
        group = tf.gather(groups, match)

        def draw(step):
            key = tf.random.experimental.stateless_fold_in(seeds[1], step)
            return tf.random.stateless_uniform([], key, 0, num_captions, dtype=tf.int64)

        # Rejection sampling: expected tries are num_classes / (num_classes - 1).
        _, wrong = tf.while_loop(
            lambda step, candidate: tf.equal(tf.gather(groups, candidate), group),
            lambda step, candidate: (step + 1, draw(step + 1)),
            (tf.constant(0, tf.int64), draw(0)))
        return match, wrong

    return pick


def gan_dataset(images, index, captions, batch_size, seed=0, shuffle=True,
                augment=False, image_size=None, repeat=False, drop_remainder=True, shard=(0, 1), start=0):
    """Batches of {image, <caption>, wrong_<caption>, label} for GAN-CLS training.

    images: uint8 [N, H, W, 3] (H may exceed `image_size`: random crops).
    captions: dict name -> array with one row per caption of `index`
      (e.g. {"embedding": sentence vectors} or {"tokens": token ids}).
    "label" is the matching caption's class (`index.labels`).
    shard: (index, count): only every count-th image from the index-th on,
      one replica's share; mismatched captions still come from all images.
    start: examples of this (shard's) stream already drawn, where a resumed
      run left off: the stream goes on from there with the order, crops and
      captions it would have had.
    """
    image_size = image_size or images.shape[1]
    starts = tf.constant(index.offsets[:-1])
    counts = tf.constant(np.diff(index.offsets))
    labels = tf.constant(index.groups)
    pick = _pick_captions(starts, counts, labels)
    caption_tables = {name: tf.constant(value) for name, value in captions.items()}
    image_table = tf.constant(images)

    def make_example(row, stream_seed):
        match, wrong = pick(row, stream_seed)
        image = tf.gather(image_table, row)
        if augment:
            crop_seed = tf.random.experimental.stateless_fold_in(stream_seed, 7)
            image = tf.image.stateless_random_crop(image, [image_size, image_size, 3], crop_seed)
            image = tf.image.stateless_random_flip_left_right(image, crop_seed)
        elif image.shape[0] != image_size:
            image = tf.image.resize_with_crop_or_pad(image, image_size, image_size)
        example = {"image": pixels.to_model_range(image), "label": tf.gather(labels, match)}
        for name, table in caption_tables.items():
            example[name] = tf.gather(table, match)
            example["wrong_" + name] = tf.gather(table, wrong)
        return example

    rows = tf.data.Dataset.range(len(images))
    if shard[1] > 1:
        rows = rows.shard(shard[1], shard[0])
    if shuffle:
        rows = rows.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        rows = rows.repeat()
    # A counter-based seed per element keeps the pipeline deterministic under
    # parallel map; shards number their elements apart.
    stream = tf.data.Dataset.counter(start).map(
        lambda i: tf.stack([tf.cast(seed, tf.int64), i * shard[1] + shard[0]]))
    ds = tf.data.Dataset.zip((rows.skip(start), stream))
    ds = ds.map(make_example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return without_autotune_thread(ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE))
