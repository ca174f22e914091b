"""Inception Score, Frechet distance and kernel distance over precomputed outputs.

Thin wrappers over `tfgan.eval` that take whole NumPy arrays (classifier
logits or pool features of every image) and return Python floats. All
arithmetic runs in float64: tfgan computes in the dtype it is given.
"""

import numpy as np
import tensorflow as tf

from sagan_tf.evaluation.tfgan_compat import tfgan


def _as_float64_matrix(array, name, min_rows):
    array = np.asarray(array)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array [num_images, features], got shape {array.shape}."
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name} must be a floating-point array, got dtype {array.dtype}.")
    if array.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {array.shape[0]}.")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return tf.constant(array, dtype=tf.float64)


def _as_activation_pair(real_activations, fake_activations):
    real = _as_float64_matrix(real_activations, "real_activations", min_rows=2)
    fake = _as_float64_matrix(fake_activations, "fake_activations", min_rows=2)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"real_activations and fake_activations must have the same feature size, "
            f"got {real.shape[1]} and {fake.shape[1]}."
        )
    return real, fake


def inception_score(logits, splits=10):
    """Inception Score of pre-softmax classifier logits, as `(mean, std)`.

    Follows the published protocol (Salimans et al., 2016): the images are cut,
    in order, into `splits` contiguous parts; each part is scored as
    exp(E_x[KL(p(y|x) || p(y))]) with its own marginal p(y); the result is the
    mean and (population) standard deviation of the part scores.
    """
    if not isinstance(splits, int) or splits < 1:
        raise ValueError(f"splits must be a positive integer, got {splits!r}.")
    logits = _as_float64_matrix(logits, "logits", min_rows=splits)
    num_images = logits.shape[0]
    bounds = [part * num_images // splits for part in range(splits + 1)]
    scores = [
        float(tfgan.eval.classifier_score_from_logits(logits[start:end]))
        for start, end in zip(bounds[:-1], bounds[1:])
    ]
    return float(np.mean(scores)), float(np.std(scores))


def frechet_distance(real_activations, fake_activations):
    """Frechet distance between Gaussians fitted to two sets of features (FID).

    ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)), with unbiased
    covariances.
    """
    real, fake = _as_activation_pair(real_activations, fake_activations)
    return float(tfgan.eval.frechet_classifier_distance_from_activations(real, fake))


def kernel_distance_blocks(num_real, num_fake, max_block_size=1024):
    """The number of blocks `kernel_distance` cuts both sets into; ValueError when a block would hold < 2 rows."""
    if not isinstance(max_block_size, int) or max_block_size < 2:
        raise ValueError(f"max_block_size must be an integer >= 2, got {max_block_size!r}.")
    num_blocks = -(-max(num_real, num_fake) // max_block_size)
    if min(num_real, num_fake) < 2 * num_blocks:
        raise ValueError(
            f"kernel_distance splits both sets into {num_blocks} blocks, so each needs at "
            f"least {2 * num_blocks} rows; got {num_real} real and {num_fake} fake."
        )
    return num_blocks


def kernel_distance(real_activations, fake_activations, max_block_size=1024):
    """Kernel distance (KID, Binkowski et al., 2018) as `(kid, standard_error)`.

    The unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3. tfgan cuts
    both sets, in order, into the same number of near-equal blocks of at most
    `max_block_size` rows, estimates MMD^2 per block and averages; the second
    value is the standard error of that average across blocks, NaN when
    there is a single block.
    """
    real, fake = _as_activation_pair(real_activations, fake_activations)
    kernel_distance_blocks(real.shape[0], fake.shape[0], max_block_size)
    kid, standard_error = tfgan.eval.kernel_classifier_distance_and_std_from_activations(
        real, fake, max_block_size=max_block_size
    )
    return float(kid), float(standard_error)
