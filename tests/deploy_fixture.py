"""A tiny workdir for the deployment tests, made without training, and the
session fixtures built on it (import them into a test module to use them).

The encoder and tokenizer are saved the way `train-encoder` saves them and
the generator where `train-gan` leaves its latest checkpoint, so exporters
read it like a real run. Fresh initialisations give near-zero sentence
vectors and (DCGAN's N(0, 0.02)) near-constant grey images, which any export
matches trivially; the weights are redrawn at a scale that spreads both over
[-1, 1], so the parity tests compare real vectors and pictures.
"""

import os
import types

import keras
import numpy as np
import pytest

from sagan_tf import config as config_lib
from sagan_tf.models.generator import Generator
from sagan_tf.text.tokenizer import CaptionTokenizer
from sagan_tf.training import encoder_training
from sagan_tf.workdir import Workdir

CAPTIONS = [
    "a small red circle in the top left corner on a blue background",
    "on a white canvas sits a large green square at the bottom",
    "there is a tiny yellow star on the right, the backdrop is black",
    "purple backdrop with a pink diamond in the middle, huge in size",
    "a medium cyan triangle at the upper right on a orange background",
    "this image has a black background and a big white cross on the left",
]
# Captions each tokenizer must treat exactly like the training tokenizer.
AWKWARD_CAPTIONS = [
    "",  # <start> <end>
    "zebra quokka xylophone",  # only unknown words
    " ".join(["red"] * 30),  # longer than max_length: cut
    "A RED Circle, on a BLUE background!!",
    "3 circles, 2x bigger: 100% red",
    "Ünïcödé Café crème",  # precomposed accents
    "Cafe\u0301 au lait",  # a combining accent becomes a token
    "ΟΔΟΣ İstanbul STRASSE straße",  # final sigma, dotted capital I, ß
    "红色的圆 🐦 ☀️",  # CJK, emoji, variation selector
    "red\u00a0circle\ton\nblue\u3000sky\x0bnow",  # only ASCII whitespace separates
    "  leading and trailing spaces  ",
    "<start> <pad> [UNK] <end>",  # look-alikes of the markers are split like any text
]
MAX_LENGTH = 10
NOISE_DIM = 8
CONDITION_DIM = 8
IMAGE_SIZE = 16
MAX_BATCH = 4
OVERRIDES = [
    f"gan.noise_dim={NOISE_DIM}", "gan.ngf=8", f"data.image_size={IMAGE_SIZE}",
    f"data.max_length={MAX_LENGTH}", "encoder.embedding_dim=8", "encoder.lstm_units=8",
    "encoder.hops=2", "encoder.attention_units=8", "encoder.hidden_units=16",
    f"encoder.output_dim={CONDITION_DIM}", f"export.max_batch={MAX_BATCH}",
]


def make_tiny_workdir(path, seed=0):
    """Writes encoder/, gan/checkpoints/generator-latest.keras and config.yaml under `path`."""
    workdir = Workdir(path).ensure()
    config = config_lib.from_dict({}, OVERRIDES)
    config.save(workdir.config_path)
    keras.utils.set_random_seed(seed)

    tokenizer = CaptionTokenizer.adapt(CAPTIONS, max_length=MAX_LENGTH)
    encoder = encoder_training.build_encoder(config.encoder, tokenizer.vocabulary_size)
    spread_weights(encoder, np.random.default_rng(seed))
    dataset = types.SimpleNamespace(name="shapes", class_names=["shape"])
    encoder_training.save_encoder(workdir.encoder_dir, encoder, tokenizer, dataset)

    generator = Generator(noise_dim=NOISE_DIM, condition_dim=CONDITION_DIM, image_size=IMAGE_SIZE,
                          ngf=8, final_channels=8)
    spread_weights(generator, np.random.default_rng(seed))
    checkpoints = os.path.join(workdir.gan_dir, "checkpoints")
    os.makedirs(checkpoints, exist_ok=True)
    generator.save(os.path.join(checkpoints, "generator-latest.keras"))
    return workdir, config


@pytest.fixture(scope="session")
def tiny_workdir(tmp_path_factory):
    """(Workdir, Config) shared by the deployment tests: they may add exports
    under its export/ folder but must leave the models as they are."""
    return make_tiny_workdir(str(tmp_path_factory.mktemp("deploy") / "run"))


@pytest.fixture(scope="session")
def savedmodel_export(tiny_workdir):
    """The result dict of the first SavedModel export of the tiny workdir."""
    from sagan_tf.deploy.savedmodel import export_savedmodel

    return export_savedmodel(*tiny_workdir)


def spread_weights(model, rng):
    """He-scaled kernels and varied batch-norm statistics, like a trained net."""
    for variable in model.weights:
        shape = tuple(variable.shape)
        if len(shape) > 1:
            value = rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
        elif variable.name in ("gamma", "moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        else:
            value = rng.normal(0.0, 0.1, shape)
        variable.assign(value.astype("float32"))


def load_models(workdir):
    """(encoder, tokenizer, generator) exactly as saved in the workdir."""
    encoder, tokenizer = encoder_training.load_frozen_encoder(workdir)
    generator = keras.models.load_model(
        os.path.join(workdir.gan_dir, "checkpoints", "generator-latest.keras"))
    return encoder, tokenizer, generator


def keras_images(encoder, generator, token_ids, noise):
    """The reference: float32 images in [-1, 1] from the Keras models."""
    vectors = np.asarray(encoder(np.asarray(token_ids, np.int32), training=False))
    return np.asarray(generator([np.asarray(noise, np.float32), vectors], training=False))

