"""Conditional DCGAN generator: noise + sentence vector -> image (SPEC §2)."""

import numbers

import keras
from keras import layers

# DCGAN (Radford et al. 2016) initialises every weight from N(0, 0.02).
WEIGHT_INIT_STDDEV = 0.02
# PyTorch-style batch-norm statistics: GAN batches change quickly.
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPSILON = 1e-5


def resolution_steps(image_size):
    """Number of stride-2 blocks between 4x4 and `image_size` (4 * 2**k)."""
    is_integer = isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool)
    # A power of two >= 8 is exactly 4 * 2**k with k >= 1.
    if not is_integer or image_size < 8 or image_size & (image_size - 1):
        raise ValueError(
            f"image_size={image_size!r} is not supported: the generator can make "
            "8, 16, 32, 64, 128, ... pixel images (4 * 2**k with k >= 1)."
        )
    return int(image_size).bit_length() - 3


def weight_initializer():
    return keras.initializers.RandomNormal(stddev=WEIGHT_INIT_STDDEV)


def batch_norm(name, synchronized):
    return layers.BatchNormalization(
        momentum=BATCH_NORM_MOMENTUM,
        epsilon=BATCH_NORM_EPSILON,
        synchronized=synchronized,
        name=name,
    )


@keras.saving.register_keras_serializable(package="sagan_tf")
class Generator(keras.Model):
    """Maps `[z, phi]` to images in [-1, 1] of shape `[batch, S, S, 3]`.

    Dense -> 4x4x(8*ngf), then transposed-conv up-blocks with 4*ngf, 2*ngf,
    ngf, ngf, ... channels until `image_size`, a 3x3 conv to
    `final_channels`, and a 3x3 conv + tanh to RGB.

    Args:
        noise_dim: length of the noise vector z.
        condition_dim: length of the sentence vector phi(t).
        image_size: output side in pixels, 4 * 2**k with k >= 1.
        ngf: base number of generator filters.
        final_channels: channels of the last hidden feature map.
        synchronized_batch_norm: batch statistics over the global batch under
            a tf.distribute strategy, so that replicas keep identical moving
            statistics and training matches one device with the global batch.
    """

    def __init__(
        self,
        noise_dim=100,
        condition_dim=128,
        image_size=64,
        ngf=64,
        final_channels=48,
        synchronized_batch_norm=True,
        **kwargs,
    ):
        num_blocks = resolution_steps(image_size)
        noise = keras.Input(shape=(noise_dim,), name="noise")
        condition = keras.Input(shape=(condition_dim,), name="condition")

        x = layers.Concatenate(name="noise_and_condition")([noise, condition])
        x = layers.Dense(
            4 * 4 * 8 * ngf,
            use_bias=False,
            kernel_initializer=weight_initializer(),
            name="project",
        )(x)
        x = batch_norm("project_bn", synchronized_batch_norm)(x)
        x = layers.ReLU(name="project_relu")(x)
        x = layers.Reshape((4, 4, 8 * ngf), name="to_4x4")(x)
        for block in range(num_blocks):
            # Halve the channels each block, never below ngf: 4, 2, 1, 1, ... x ngf.
            channels = max(ngf, 8 * ngf // 2 ** (block + 1))
            x = layers.Conv2DTranspose(
                channels,
                4,
                strides=2,
                padding="same",
                use_bias=False,
                kernel_initializer=weight_initializer(),
                name=f"up{block}_conv",
            )(x)
            x = batch_norm(f"up{block}_bn", synchronized_batch_norm)(x)
            x = layers.ReLU(name=f"up{block}_relu")(x)
        x = layers.Conv2D(
            final_channels,
            3,
            padding="same",
            use_bias=False,
            kernel_initializer=weight_initializer(),
            name="refine_conv",
        )(x)
        x = batch_norm("refine_bn", synchronized_batch_norm)(x)
        x = layers.ReLU(name="refine_relu")(x)
        x = layers.Conv2D(
            3, 3, padding="same", kernel_initializer=weight_initializer(), name="rgb_conv"
        )(x)
        # float32 output whatever the mixed precision policy.
        images = layers.Activation("tanh", dtype="float32", name="rgb")(x)
        super().__init__(inputs=[noise, condition], outputs=images, **kwargs)

        self.noise_dim = noise_dim
        self.condition_dim = condition_dim
        self.image_size = image_size
        self.ngf = ngf
        self.final_channels = final_channels
        self.synchronized_batch_norm = synchronized_batch_norm

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "noise_dim": self.noise_dim,
            "condition_dim": self.condition_dim,
            "image_size": self.image_size,
            "ngf": self.ngf,
            "final_channels": self.final_channels,
            "synchronized_batch_norm": self.synchronized_batch_norm,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
