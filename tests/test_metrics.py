"""IS, FID and KID agree with NumPy/SciPy versions of the published formulas."""

import numpy as np
import pytest
import scipy.linalg
import scipy.special

from sagan_tf.evaluation.metrics import frechet_distance, inception_score, kernel_distance


def reference_inception_score(logits, splits):
    probabilities = scipy.special.softmax(logits, axis=1)
    num_images = len(logits)
    scores = []
    for part in range(splits):
        start, end = part * num_images // splits, (part + 1) * num_images // splits
        p_y_given_x = probabilities[start:end]
        p_y = p_y_given_x.mean(axis=0, keepdims=True)
        kl = np.sum(p_y_given_x * (np.log(p_y_given_x) - np.log(p_y)), axis=1)
        scores.append(np.exp(kl.mean()))
    return np.mean(scores), np.std(scores)


def reference_frechet_distance(real, fake):
    mean_real, mean_fake = real.mean(axis=0), fake.mean(axis=0)
    cov_real, cov_fake = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    covariance_root = scipy.linalg.sqrtm(cov_real @ cov_fake).real
    return np.sum((mean_real - mean_fake) ** 2) + np.trace(
        cov_real + cov_fake - 2 * covariance_root
    )


def reference_mmd2(real, fake):
    """Unbiased MMD^2 with the cubic polynomial kernel, on a single block."""

    def kernel(x, y):
        return (x @ y.T / real.shape[1] + 1) ** 3

    def within(x):
        k = kernel(x, x)
        return (k.sum() - np.trace(k)) / (len(x) * (len(x) - 1))

    return within(real) + within(fake) - 2 * kernel(real, fake).mean()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def test_inception_score_matches_reference(rng):
    logits = rng.normal(scale=3.0, size=(503, 12)).astype(np.float32)
    mean, std = inception_score(logits, splits=10)
    expected_mean, expected_std = reference_inception_score(logits.astype(np.float64), 10)
    assert isinstance(mean, float) and isinstance(std, float)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-6)
    np.testing.assert_allclose(std, expected_std, rtol=1e-6)
    assert std > 0


def test_inception_score_of_uniform_predictions_is_one():
    mean, std = inception_score(np.zeros((100, 7)), splits=10)
    np.testing.assert_allclose([mean, std], [1.0, 0.0], atol=1e-9)


def test_inception_score_of_confident_distinct_predictions_is_class_count():
    num_classes = 10
    # Each split holds every class equally often, each image predicted with certainty.
    labels = np.tile(np.arange(num_classes), 50)
    logits = 50.0 * np.eye(num_classes)[labels]
    mean, std = inception_score(logits, splits=10)
    np.testing.assert_allclose(mean, num_classes, atol=1e-3)
    assert std < 1e-3


def test_frechet_distance_matches_reference(rng):
    real = rng.normal(size=(300, 16))
    fake = 0.5 * rng.normal(size=(250, 16)) @ rng.normal(size=(16, 16)) + 0.3
    distance = frechet_distance(real.astype(np.float32), fake.astype(np.float32))
    expected = reference_frechet_distance(
        real.astype(np.float32).astype(np.float64), fake.astype(np.float32).astype(np.float64)
    )
    assert isinstance(distance, float)
    assert distance > 1.0
    np.testing.assert_allclose(distance, expected, rtol=1e-6)


def test_frechet_distance_of_a_set_with_itself_is_zero(rng):
    features = rng.gamma(2.0, size=(200, 16))
    assert abs(frechet_distance(features, features)) < 1e-3


def test_kernel_distance_single_block_matches_reference(rng):
    real = rng.normal(size=(120, 8))
    fake = rng.normal(loc=0.5, size=(90, 8))
    kid, standard_error = kernel_distance(real, fake)
    np.testing.assert_allclose(kid, reference_mmd2(real, fake), rtol=1e-6)
    assert np.isnan(standard_error)  # one block: no spread to measure


def test_kernel_distance_blocks_average_per_block_estimates(rng):
    real = rng.normal(size=(60, 8))
    fake = rng.normal(loc=0.5, size=(45, 8))
    kid, standard_error = kernel_distance(real, fake, max_block_size=20)
    # 60 rows at most 20 per block -> 3 blocks: 20 real and 15 fake rows each, in order.
    blocks = [
        reference_mmd2(real[20 * block:20 * (block + 1)], fake[15 * block:15 * (block + 1)])
        for block in range(3)
    ]
    np.testing.assert_allclose(kid, np.mean(blocks), rtol=1e-6)
    np.testing.assert_allclose(standard_error, np.std(blocks, ddof=1) / np.sqrt(3), rtol=1e-6)


def test_kernel_distance_is_near_zero_for_the_same_distribution(rng):
    real = rng.normal(size=(500, 8))
    same = rng.normal(size=(500, 8))
    shifted = rng.normal(loc=0.5, size=(500, 8))
    kid_self, _ = kernel_distance(real, real)
    kid_same, _ = kernel_distance(real, same)
    kid_shifted, _ = kernel_distance(real, shifted)
    # Against itself the estimator is -2 (mean k - mean diag k) / (n - 1): O(1/n), not 0.
    assert abs(kid_self) < 0.05 * kid_shifted
    # Two samples of one distribution: the unbiased estimate is centred on 0.
    assert abs(kid_same) < 0.05 * kid_shifted


@pytest.mark.parametrize(
    "logits, splits, message",
    [
        (np.zeros((10,)), 2, "2-D"),
        (np.zeros((10, 3), dtype=np.int32), 2, "floating-point"),
        (np.zeros((5, 3)), 10, "at least 10 rows"),
        (np.full((10, 3), np.nan), 2, "NaN"),
        (np.zeros((10, 3)), 0, "splits"),
    ],
)
def test_inception_score_rejects_bad_input(logits, splits, message):
    with pytest.raises(ValueError, match=message):
        inception_score(logits, splits=splits)


def test_distances_reject_mismatched_features():
    with pytest.raises(ValueError, match="same feature size"):
        frechet_distance(np.zeros((10, 4)), np.zeros((10, 5)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        frechet_distance(np.zeros((1, 4)), np.zeros((10, 4)))


def test_kernel_distance_rejects_blocks_too_small():
    with pytest.raises(ValueError, match="each needs at least 6 rows"):
        kernel_distance(np.ones((30, 4)), np.ones((5, 4)), max_block_size=10)
