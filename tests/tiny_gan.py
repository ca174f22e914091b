"""Tiny GAN models and data for the GAN tests, and the worker processes of
the distributed tests.

As a script (each command runs in its own process because it needs its own
TensorFlow cluster or device setup):

    python tests/tiny_gan.py multiworker-fit OUT.npz
        one worker of a MultiWorkerMirroredStrategy cluster (TF_CONFIG set):
        fits the tiny GAN for a few steps and saves initial and final weights.
    python tests/tiny_gan.py replica-gradients OUT.npz
        one SGD step of a linear model on two logical CPUs with
        MirroredStrategy, and the same step on one device.
"""

import sys

import keras
import numpy as np
import tensorflow as tf

from sagan_tf.models import gan_losses
from sagan_tf.models.discriminator import Discriminator
from sagan_tf.models.gan import TextToImageGAN
from sagan_tf.models.generator import Generator
from sagan_tf.training import distribution

IMAGE_SIZE = 16
NOISE_DIM = 8
CONDITION_DIM = 8
BATCH = 8
STEPS = 3


def make_gan(num_classes=0, **gan_kwargs):
    generator = Generator(
        noise_dim=NOISE_DIM,
        condition_dim=CONDITION_DIM,
        image_size=IMAGE_SIZE,
        ngf=8,
        final_channels=8,
    )
    discriminator = Discriminator(
        image_size=IMAGE_SIZE, ndf=8, condition_dim=CONDITION_DIM, condition_units=8,
        num_classes=num_classes,
    )
    return TextToImageGAN(generator, discriminator, **{"seed": 0, **gan_kwargs})


def compile_gan(gan):
    gan.compile(
        d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
    )
    return gan


def batches(steps=STEPS, seed=0, num_classes=0):
    """A tf.data pipeline of `steps` GAN-CLS batches of random data (with labels if num_classes)."""
    rng = np.random.default_rng(seed)
    count = BATCH * steps
    data = {
        "image": rng.uniform(-1, 1, (count, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32"),
        "embedding": rng.normal(size=(count, CONDITION_DIM)).astype("float32"),
        "wrong_embedding": rng.normal(size=(count, CONDITION_DIM)).astype("float32"),
    }
    if num_classes:
        data["label"] = rng.integers(0, num_classes, count).astype("int32")
    return tf.data.Dataset.from_tensor_slices(data).batch(BATCH)


def multiworker_fit(output_path):
    keras.utils.set_random_seed(0)
    strategy = distribution.strategy_from_environment()
    with strategy.scope():
        gan = compile_gan(make_gan())
    initial = [v.numpy() for v in gan.weights]
    history = gan.fit(batches(), epochs=1, verbose=0)
    np.savez(
        output_path,
        replicas=strategy.num_replicas_in_sync,
        d_loss=history.history["d_loss"],
        initial=np.concatenate([w.ravel() for w in initial]),
        final=np.concatenate([v.numpy().ravel() for v in gan.weights]),
    )


def replica_gradients(output_path):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    rng = np.random.default_rng(0)
    features = rng.normal(size=(BATCH, 3)).astype("float32")
    targets = rng.normal(size=(BATCH, 1)).astype("float32")
    initial_kernel = rng.normal(size=(3, 1)).astype("float32")

    def sgd_step(strategy):
        with strategy.scope():
            model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
            model.set_weights([initial_kernel])
            optimizer = keras.optimizers.SGD(1.0)
            optimizer.build(model.trainable_variables)

        def step(batch):
            x, y = batch
            with tf.GradientTape() as tape:
                per_example = tf.reduce_sum(tf.square(model(x) - y), axis=-1)
                loss = gan_losses.global_batch_mean(per_example)
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))

        dataset = tf.data.Dataset.from_tensor_slices((features, targets)).batch(BATCH)
        batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
        tf.function(lambda b: strategy.run(step, args=(b,)))(batch)
        return model.get_weights()[0]

    two_replicas = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    np.savez(
        output_path,
        replicas=two_replicas.num_replicas_in_sync,
        distributed=sgd_step(two_replicas),
        single=sgd_step(tf.distribute.get_strategy()),
        expected=initial_kernel
        - 2 * features.T @ (features @ initial_kernel - targets) / BATCH,
    )


if __name__ == "__main__":
    command, output = sys.argv[1:]
    {"multiworker-fit": multiworker_fit, "replica-gradients": replica_gradients}[command](output)
