"""GAN-CLS losses (Reed et al. 2016), per example, from logits, in float32 (SPEC §4).

The losses return one value per example so the caller decides how to
average: for gradients under a `tf.distribute` strategy use
`global_batch_mean`, because the optimizer all-reduces (sums) the replicas'
gradients; for reporting use a plain mean.
"""

import tensorflow as tf
from keras import ops


def binary_crossentropy_from_logits(logits, label):
    """Per-example BCE of `logits` ([batch] or [batch, k]) against a constant label."""
    logits = ops.cast(logits, "float32")
    logits = ops.reshape(logits, (ops.shape(logits)[0], -1))
    per_logit = ops.binary_crossentropy(ops.full_like(logits, label), logits, from_logits=True)
    return ops.mean(per_logit, axis=-1)


def discriminator_loss(real_logits, wrong_logits, fake_logits):
    """L_D = BCE(s_r, 1) + (BCE(s_w, 0) + BCE(s_f, 0)) / 2, per example.

    Args:
        real_logits: D(real image, matching caption).
        wrong_logits: D(real image, mismatched caption).
        fake_logits: D(generated image, matching caption).
    """
    return binary_crossentropy_from_logits(real_logits, 1.0) + 0.5 * (
        binary_crossentropy_from_logits(wrong_logits, 0.0)
        + binary_crossentropy_from_logits(fake_logits, 0.0)
    )


def generator_loss(fake_logits):
    """Non-saturating L_G = BCE(D(G(z, h), h), 1), per example."""
    return binary_crossentropy_from_logits(fake_logits, 1.0)


def class_loss(class_logits, labels):
    """Per-example softmax cross-entropy of class logits against integer labels.

    The auxiliary-classifier term of TAC-GAN (Dash et al. 2017): the
    discriminator learns to name the class of real images, and the
    generator is pushed to draw images it names as the caption's class.
    """
    return ops.sparse_categorical_crossentropy(
        ops.cast(labels, "int32"), ops.cast(class_logits, "float32"), from_logits=True)


def global_batch_mean(per_example_loss):
    """This replica's share of the mean over the global batch.

    sum(local losses) / (local batch * replicas): summing these over the
    replicas, as the gradient all-reduce does, gives the global-batch mean.
    Without a strategy it is the plain mean.
    """
    return tf.nn.compute_average_loss(per_example_loss)
