"""One worker of the two-process MultiWorkerMirroredStrategy test.

Run with TF_CONFIG set; trains a tiny GAN for a few steps with `fit` and
writes the final generator and discriminator weights to the npz file named
on the command line.
"""

import sys

import numpy as np
import tensorflow as tf

import keras
from sagan_tf.models.discriminator import Discriminator
from sagan_tf.models.gan import TextToImageGAN
from sagan_tf.models.generator import Generator
from sagan_tf.training import distribution

IMAGE_SIZE = 16
CONDITION_DIM = 8
GLOBAL_BATCH = 8
STEPS = 3


def tiny_gan():
    generator = Generator(
        noise_dim=8, condition_dim=CONDITION_DIM, image_size=IMAGE_SIZE, ngf=8, final_channels=8
    )
    discriminator = Discriminator(
        image_size=IMAGE_SIZE, ndf=8, condition_dim=CONDITION_DIM, condition_units=8
    )
    return TextToImageGAN(generator, discriminator, seed=0)


def synthetic_batches():
    rng = np.random.default_rng(0)
    count = GLOBAL_BATCH * STEPS
    data = {
        "image": rng.uniform(-1, 1, (count, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32"),
        "embedding": rng.normal(size=(count, CONDITION_DIM)).astype("float32"),
        "wrong_embedding": rng.normal(size=(count, CONDITION_DIM)).astype("float32"),
    }
    return tf.data.Dataset.from_tensor_slices(data).batch(GLOBAL_BATCH)


def main(output_path):
    keras.utils.set_random_seed(0)
    strategy = distribution.strategy_from_environment()
    with strategy.scope():
        gan = tiny_gan()
        gan.compile(
            d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        )
    initial = [w.numpy() for w in gan.weights]
    history = gan.fit(synthetic_batches(), epochs=1, verbose=0)
    final = [w.numpy() for w in gan.weights]
    np.savez(
        output_path,
        replicas=strategy.num_replicas_in_sync,
        d_loss=history.history["d_loss"][-1],
        **{f"initial_{i}": w for i, w in enumerate(initial)},
        **{f"final_{i}": w for i, w in enumerate(final)},
    )


if __name__ == "__main__":
    main(sys.argv[1])
