"""A small CNN trained on a data set's own real images: the `domain` feature network.

It stands in for Inception-v3 where Inception never saw the domain: its
score logits give the Inception Score and its penultimate features FID and
KID. It also reads back what a picture shows, every attribute of a shapes
image or the class of a photo, which the text–image alignment score checks
against the caption.

Everything lands in `<workdir>/classifier/`: the model (`classifier.keras`)
and `classifier.json` (how many images it was fitted on, its training
history and its accuracy on real images it never saw).
"""

import hashlib
import os

import keras
import numpy as np
import tensorflow as tf

from sagan_tf import files, pixels
from sagan_tf.data import pipeline
from sagan_tf.data import prepare
from sagan_tf.data import shapes_grammar as grammar
from sagan_tf.digests import config_digest, dataset_digest, weights_digest
from sagan_tf.evaluation import alignment
from sagan_tf.models.generator import resolution_steps

CLASSIFIER_DIR = "classifier"
MODEL_FILE = "classifier.keras"
METADATA_FILE = "classifier.json"
SHAPES_HEADS = {name: list(values) for name, values in grammar.ATTRIBUTES.items()}
# The Inception Score of shapes is taken over the data set's 60
# (shape, colour) classes as p(shape | x) * p(colour | x): unlike a 60-way
# head, the product can name the held-out pairs, which no training image shows.
SHAPES_SCORE_HEADS = ("shape", "color")
# Hash buckets (of ten) of the images the classifier is not fitted on.
HELD_BACK_PARTS = {0: "check", 1: "monitor"}


def conv_block(filters, name):
    """Two 3x3 conv-BN-ReLU layers."""
    layers = []
    for _ in range(2):
        layers += [keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
                   keras.layers.BatchNormalization(momentum=0.9),
                   keras.layers.ReLU()]
    return keras.Sequential(layers, name=name)


@keras.saving.register_keras_serializable(package="sagan_tf")
class DomainClassifier(keras.Model):
    """Images in [-1, 1] -> a dict of logits, one per head.

    Blocks of two 3x3 conv-BN-ReLU layers, each followed by a 2x2 max-pool,
    take the image down to 4x4. A `feature_dim` ReLU layer reads two views:
    the final map flattened (where things are: position survives) and the
    global max of every block's map (what is there, at every scale and
    wherever it sits; translation invariant, so it is learned from few
    images). Those are the features used for FID/KID; one linear head per
    attribute or class reads them.

    Args:
        heads: head name -> list of label names, e.g. {"class": class_names}.
        score_heads: heads whose joint distribution (the product of their
            softmaxes, flattened in order) is scored by the Inception Score.
        image_size: side of the square input images, 4 * 2**k with k >= 1.
        width: filters of the first block, doubled per block up to 8x.
        feature_dim: size of the penultimate features.
    """

    def __init__(self, heads, score_heads, image_size=64, width=32, feature_dim=256, **kwargs):
        super().__init__(**kwargs)
        heads = {name: list(labels) for name, labels in dict(heads).items()}
        score_heads = tuple(score_heads)
        if not heads or any(len(labels) < 2 for labels in heads.values()):
            raise ValueError(f"every head needs at least two labels, got {heads!r}")
        unknown = [name for name in score_heads if name not in heads]
        if not score_heads or unknown:
            raise ValueError(f"score_heads {score_heads!r} must name heads of {list(heads)}")
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 8, got {image_size!r}")
        self.heads = heads
        self.score_heads = score_heads
        self.image_size = image_size
        self.width = width
        self.feature_dim = feature_dim

        self.blocks = [conv_block(width * 2 ** min(block, 3), f"block{block}")
                       for block in range(resolution_steps(image_size))]
        self.downsample = keras.layers.MaxPooling2D(2, name="downsample")
        self.global_max = keras.layers.GlobalMaxPooling2D(name="global_max")
        self.flatten = keras.layers.Flatten(name="flatten")
        self.where_and_what = keras.layers.Concatenate(name="where_and_what")
        self.features_layer = keras.layers.Dense(feature_dim, activation="relu", name="features")
        self.head_layers = [keras.layers.Dense(len(labels), name=f"{name}_logits")
                            for name, labels in heads.items()]

    def outputs(self, images, training=False):
        """(head name -> logits, penultimate features) of a batch of images."""
        x = images
        what = []
        for block in self.blocks:
            x = block(x, training=training)
            what.append(self.global_max(x))
            x = self.downsample(x)
        features = self.features_layer(self.where_and_what([self.flatten(x), *what]))
        logits = {name: layer(features) for name, layer in zip(self.heads, self.head_layers)}
        return logits, features

    def call(self, images, training=False):
        return self.outputs(images, training=training)[0]

    def score_logits(self, head_logits):
        """Log-probabilities of the joint label of `score_heads`, [batch, product of sizes].

        Normalised log-probabilities are valid logits: their softmax is the product
        distribution itself.
        """
        joint = None
        for name in self.score_heads:
            log_p = tf.nn.log_softmax(tf.cast(head_logits[name], tf.float32), axis=-1)
            joint = log_p if joint is None else joint[:, :, None] + log_p[:, None, :]
            joint = tf.reshape(joint, (tf.shape(joint)[0], -1))
        return joint

    def encode(self, truths):
        """Label names -> {head: int32 [N]} for `truths`, one {head: label} dict per image."""
        targets = {}
        for name, labels in self.heads.items():
            index = {label: i for i, label in enumerate(labels)}
            try:
                targets[name] = np.array([index[truth[name]] for truth in truths], np.int32)
            except KeyError as error:
                raise ValueError(f"the classifier's {name!r} head does not know {error}") from None
        return targets

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "heads": self.heads,
            "score_heads": list(self.score_heads),
            "image_size": self.image_size,
            "width": self.width,
            "feature_dim": self.feature_dim,
        }


def heads_for(dataset):
    """(heads, score_heads) for a data set: shapes attributes, else its classes."""
    examples = [e for split in dataset.splits.values() for e in split]
    if any(e.attributes for e in examples):
        return SHAPES_HEADS, SHAPES_SCORE_HEADS
    if examples and all(e.label >= 0 for e in examples) and dataset.num_classes >= 2:
        return {"class": list(dataset.class_names)}, ("class",)
    raise ValueError(
        f"the {dataset.name} data set has neither caption attributes nor classes, so no domain "
        "classifier can be trained; use eval.feature_network=inception_v3")


def truth(dataset, example, caption=0):
    """What caption number `caption` of `example` says, as {head: label name}."""
    if example.attributes:
        return {name: example.attributes[caption][name] for name in SHAPES_HEADS}
    return {"class": dataset.class_names[example.label]}


def part_of(name):
    """Which part of the classifier's images (fit, monitor, check) an image is, by its name."""
    bucket = int(hashlib.sha1(name.encode()).hexdigest(), 16) % 10
    return HELD_BACK_PARTS.get(bucket, "fit")


def classifier_parts(dataset, size, cache_dir):
    """{"fit" | "monitor" | "check": (uint8 images, examples)} over every image of the data set.

    The classifier is a measuring instrument, so it learns from every real
    image, test split included: it must know CUB's unseen test classes and the
    held-out (shape, colour) pairs, whose absence from training is what the
    GAN is measured on, not the judge. A hash of each image's name deals 80 %
    to fitting, 10 % to monitoring and 10 % to checking, never fitted on.
    """
    rows = {}
    for split in ("train", "validation", "test"):
        if dataset.splits[split]:
            images, examples = prepare.split_images(dataset, split, size, cache_dir)
            # An image can back captions of several splits (CUB's caption split): count it once.
            for image, example in zip(images, examples):
                rows.setdefault(example.name, (image, example))
    parts = {}
    for image, example in rows.values():
        part = parts.setdefault(part_of(example.name), ([], []))
        part[0].append(image)
        part[1].append(example)
    return {part: (np.stack(images), examples) for part, (images, examples) in parts.items()}


def unseen_mask(examples):
    """Which of `examples` the classifier was never fitted on."""
    return np.array([part_of(e.name) != "fit" for e in examples], bool)


def training_dataset(classifier, images, examples, dataset, batch_size, shuffle, seed=0):
    targets = classifier.encode([truth(dataset, e) for e in examples])
    ds = tf.data.Dataset.from_tensor_slices((images, targets))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return pipeline.without_autotune_thread(
        ds.batch(batch_size).map(lambda x, y: (pixels.to_model_range(x), y)).prefetch(tf.data.AUTOTUNE))


def build_classifier(dataset, image_size, width, feature_dim=256):
    heads, score_heads = heads_for(dataset)
    return DomainClassifier(heads, score_heads, image_size=image_size, width=width,
                            feature_dim=feature_dim)


def fit_classifier(classifier, dataset, parts, epochs, batch_size=32, seed=0, verbose=0):
    """Fits on parts["fit"] (with parts["monitor"], if any, as validation data); returns the history.

    The learning rate decays to zero on a cosine: the last epochs settle,
    which short runs need to reach their best accuracy.
    """
    keras.utils.set_random_seed(seed)
    images, examples = parts["fit"]
    fit = training_dataset(classifier, images, examples, dataset, batch_size, shuffle=True, seed=seed)
    monitor = None
    if "monitor" in parts:
        monitor = training_dataset(classifier, *parts["monitor"], dataset, 256, shuffle=False)
    steps = epochs * -(-len(images) // batch_size)
    classifier.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, steps)),
        loss={name: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
              for name in classifier.heads},
        metrics={name: ["accuracy"] for name in classifier.heads})
    history = classifier.fit(fit, validation_data=monitor, epochs=epochs, verbose=verbose, shuffle=False)
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def classifier_dir(workdir):
    return workdir.join(CLASSIFIER_DIR)


def classifier_settings(config, dataset):
    """Names what shapes the classifier's weights: the data and the eval.classifier_* training settings."""
    eval_config = config.eval
    return config_digest(config.data, dataset_digest(dataset), {"epochs": eval_config.classifier_epochs,
                                       "width": eval_config.classifier_width, "seed": eval_config.seed})


def train_domain_classifier(workdir, config, dataset, verbose=1):
    """Trains and saves the workdir's domain classifier; returns a dict of results.

    A classifier already trained with the same settings is kept (its
    recorded results are returned): it may have judged earlier reports.
    """
    out_dir = classifier_dir(workdir)
    path = classifier_path(workdir)
    metadata_path = os.path.join(out_dir, METADATA_FILE)
    settings = classifier_settings(config, dataset)
    if os.path.isfile(path) and os.path.isfile(metadata_path):
        saved = files.read_json(metadata_path, "classifier metadata file")
        if saved.get("settings") == settings:
            print(f"the domain classifier in {out_dir} is already trained with these settings; "
                  f"delete {out_dir} to train it again")
            return saved
    size = config.data.image_size
    parts = classifier_parts(dataset, size, workdir.data_cache_dir(config))
    if "fit" not in parts or "check" not in parts:
        raise ValueError(f"the {dataset.name} data set needs images to fit the classifier on and "
                         "test images to check it on")
    classifier = build_classifier(dataset, size, config.eval.classifier_width)
    history = fit_classifier(classifier, dataset, parts, config.eval.classifier_epochs,
                             seed=config.eval.seed, verbose=verbose)
    check_images, check_examples = parts["check"]
    ceiling = alignment.score_images(classifier, pixels.to_model_range(check_images),
                                     [truth(dataset, e) for e in check_examples])
    result = {
        "classifier": path,
        "classifier_id": weights_digest(classifier),
        "settings": settings,
        "dataset": dataset.name,
        "image_size": size,
        "images": {part: len(examples) for part, (_, examples) in parts.items()},
        "epochs_run": len(history["loss"]),
        "history": history,
        "real_accuracy": ceiling,
    }
    with files.replaced_under_record(metadata_path, result):
        files.save_keras_file(classifier, path)
    return result


def classifier_path(workdir):
    return os.path.join(classifier_dir(workdir), MODEL_FILE)


def load_domain_classifier(workdir, path=None):
    """The classifier in `path` (default: the workdir's); FileNotFoundError when there is none."""
    if path is None:
        path = classifier_path(workdir)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"no domain classifier in {workdir.path} (expected {path}); "
                f"run `sagan-tf train-classifier --workdir {workdir.path}` first")
    elif not os.path.isfile(path):
        raise FileNotFoundError(f"--classifier {path}: no such file (name a classifier.keras that "
                                "`sagan-tf train-classifier` wrote)")
    return files.load_keras_file(path, "domain classifier", DomainClassifier)
