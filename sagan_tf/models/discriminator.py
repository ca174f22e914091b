"""Matching-aware conditional discriminator: (image, sentence vector) -> logit (SPEC §3)."""

import keras
from keras import layers

from sagan_tf.models.generator import batch_norm, resolution_steps, weight_initializer

LEAKY_RELU_SLOPE = 0.2


def image_tower(image_size, ndf, synchronized_batch_norm):
    """`images -> [batch, 4, 4, channels]` features: strided 4x4 convs (ndf, 2*ndf, ... <= 8*ndf)."""
    num_blocks = resolution_steps(image_size)
    images = keras.Input(shape=(image_size, image_size, 3), name="images")
    x = images
    for block in range(num_blocks):
        x = layers.Conv2D(
            min(8 * ndf, ndf * 2**block),
            4,
            strides=2,
            padding="same",
            # DCGAN: no batch norm on the layer that sees raw pixels, so it
            # keeps its bias; the others' bias would be cancelled by the norm.
            use_bias=block == 0,
            kernel_initializer=weight_initializer(),
            name=f"down{block}_conv",
        )(x)
        if block > 0:
            x = batch_norm(f"down{block}_bn", synchronized_batch_norm)(x)
        x = layers.LeakyReLU(LEAKY_RELU_SLOPE, name=f"down{block}_lrelu")(x)
    return keras.Model(images, x, name="image_tower")


def pair_head(feature_shape, condition_dim, condition_units, joint_channels,
              synchronized_batch_norm, num_classes):
    """`[4x4 image features, phi] -> logits` (and class logits from the features alone)."""
    features = keras.Input(shape=feature_shape, name="image_features")
    condition = keras.Input(shape=(condition_dim,), name="condition")
    c = layers.Dense(
        condition_units, kernel_initializer=weight_initializer(), name="condition_dense"
    )(condition)
    c = layers.LeakyReLU(LEAKY_RELU_SLOPE, name="condition_lrelu")(c)
    c = layers.Reshape((1, 1, condition_units), name="condition_1x1")(c)
    # Nearest-neighbour upsampling of a 1x1 map is a tile, and a TFLite built-in.
    c = layers.UpSampling2D(4, name="condition_tiled")(c)

    x = layers.Concatenate(name="image_and_condition")([features, c])
    x = layers.Conv2D(
        joint_channels, 1, use_bias=False, kernel_initializer=weight_initializer(),
        name="joint_conv",
    )(x)
    x = batch_norm("joint_bn", synchronized_batch_norm)(x)
    x = layers.LeakyReLU(LEAKY_RELU_SLOPE, name="joint_lrelu")(x)
    # Logits in float32 whatever the mixed precision policy.
    x = layers.Conv2D(
        1, 4, padding="valid", kernel_initializer=weight_initializer(),
        dtype="float32", name="logit_conv",
    )(x)
    outputs = layers.Flatten(dtype="float32", name="logits")(x)
    if num_classes:
        # From the image features only: the class must be visible in the picture.
        class_logits = layers.Dense(
            num_classes, kernel_initializer=weight_initializer(), dtype="float32", name="class_logits"
        )(layers.Flatten(name="flat_features")(features))
        outputs = [outputs, class_logits]
    return keras.Model([features, condition], outputs, name="pair_head")


@keras.saving.register_keras_serializable(package="sagan_tf")
class Discriminator(keras.Model):
    """Maps `[images, phi]` to one real/fake logit per pair, `[batch, 1]` float32.

    With `num_classes > 0` it returns `[logits, class_logits]`: a TAC-GAN
    auxiliary head also names the class of the image from the image alone
    (`[batch, num_classes]` float32).

    Strided 4x4 convs (ndf, 2*ndf, 4*ndf, 8*ndf, 8*ndf, ...) bring the image
    down to 4x4; phi is compressed to `condition_units` and tiled over the
    4x4 grid, concatenated, mixed by a 1x1 conv and read out by a 4x4 conv.

    Two nested models make it up, `image_tower` (images -> 4x4 features) and
    `pair_head` ([features, phi] -> outputs), so that a training step can
    judge one batch of images under two captions with one pass through the
    image layers.

    Args:
        image_size: input side in pixels, 4 * 2**k with k >= 1.
        ndf: base number of discriminator filters.
        condition_dim: length of the sentence vector phi(t).
        condition_units: size phi is compressed to before tiling.
        synchronized_batch_norm: batch statistics over the global batch under
            a tf.distribute strategy (see `Generator`).
        num_classes: size of the auxiliary class head; 0 (the SPEC's
            discriminator) leaves it out.
    """

    def __init__(
        self,
        image_size=64,
        ndf=64,
        condition_dim=128,
        condition_units=128,
        synchronized_batch_norm=True,
        num_classes=0,
        **kwargs,
    ):
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        tower = image_tower(image_size, ndf, synchronized_batch_norm)
        head = pair_head(tuple(tower.output.shape[1:]), condition_dim, condition_units,
                         8 * ndf, synchronized_batch_norm, num_classes)
        images = keras.Input(shape=(image_size, image_size, 3), name="images")
        condition = keras.Input(shape=(condition_dim,), name="condition")
        outputs = head([tower(images), condition])
        super().__init__(inputs=[images, condition], outputs=outputs, **kwargs)

        self.image_size = image_size
        self.ndf = ndf
        self.condition_dim = condition_dim
        self.condition_units = condition_units
        self.synchronized_batch_norm = synchronized_batch_norm
        self.num_classes = num_classes

    @property
    def image_tower(self):
        return self.get_layer("image_tower")

    @property
    def pair_head(self):
        return self.get_layer("pair_head")

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "image_size": self.image_size,
            "ndf": self.ndf,
            "condition_dim": self.condition_dim,
            "condition_units": self.condition_units,
            "synchronized_batch_norm": self.synchronized_batch_norm,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
