import numpy as np
import pytest
import keras

from sagan_tf.models.attention import StructuredSelfAttention, attention_penalty

BATCH, LENGTH, FEATURES = 3, 12, 8


def _hidden_and_mask(seed=0):
    rng = np.random.default_rng(seed)
    hidden = rng.normal(size=(BATCH, LENGTH, FEATURES)).astype("float32")
    lengths = np.array([12, 5, 0])  # full, padded, and entirely padding
    mask = np.arange(LENGTH)[None, :] < lengths[:, None]
    return hidden, mask


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_attention_matches_the_formula_of_lin_et_al():
    hidden, _ = _hidden_and_mask()
    layer = StructuredSelfAttention(hops=4, attention_units=6)
    context, attention = layer(hidden)
    w_s1 = layer.token_projection.kernel.numpy()  # [2u, d_a]
    w_s2 = layer.hop_scores.kernel.numpy()  # [d_a, r]
    # A = softmax(W_s2 · tanh(W_s1 · Hᵀ)) per caption, softmax over tokens.
    expected_attention = _softmax(
        np.einsum("ar,bna->brn", w_s2, np.tanh(hidden @ w_s1)))
    np.testing.assert_allclose(attention, expected_attention, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(context, expected_attention @ hidden, rtol=1e-5, atol=1e-5)


def test_rows_sum_to_one_and_padding_gets_exactly_zero_weight():
    hidden, mask = _hidden_and_mask()
    context, attention = StructuredSelfAttention(hops=4, attention_units=6)(hidden, mask=mask)
    attention = np.asarray(attention)
    np.testing.assert_allclose(attention[:2].sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(attention[1, :, 5:] == 0.0)
    assert np.all(attention[1, :, :5] > 0.0)
    # A caption of only padding attends to nothing instead of producing NaN.
    assert np.all(attention[2] == 0.0)
    assert np.all(np.asarray(context)[2] == 0.0)


def test_padding_content_does_not_leak_into_the_output():
    hidden, mask = _hidden_and_mask()
    layer = StructuredSelfAttention(hops=2, attention_units=6)
    noisy = hidden.copy()
    noisy[~mask] = 100.0
    np.testing.assert_array_equal(layer(hidden, mask=mask)[0], layer(noisy, mask=mask)[0])


def test_mask_propagates_from_an_embedding_with_mask_zero():
    token_ids = np.array([[4, 7, 9, 0, 0, 0]], dtype="int32")
    embedded = keras.layers.Embedding(20, FEATURES, mask_zero=True)(token_ids)
    _, attention = StructuredSelfAttention(hops=3, attention_units=6)(embedded)
    assert np.all(np.asarray(attention)[0, :, 3:] == 0.0)
    np.testing.assert_allclose(np.asarray(attention).sum(axis=-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("hops", [1, 2, 4, 8])
def test_output_shapes(hops):
    hidden, mask = _hidden_and_mask()
    layer = StructuredSelfAttention(hops=hops, attention_units=6)
    context, attention = layer(hidden, mask=mask)
    assert context.shape == (BATCH, hops, FEATURES)
    assert attention.shape == (BATCH, hops, LENGTH)
    assert layer.compute_output_shape((None, LENGTH, FEATURES)) == (
        (None, hops, FEATURES), (None, hops, LENGTH))
    assert layer.compute_mask(hidden, mask) is None


def test_penalty_equals_numpy_on_random_attention():
    rng = np.random.default_rng(1)
    attention = _softmax(rng.normal(size=(5, 4, 12))).astype("float32")
    gram = attention @ attention.transpose(0, 2, 1)
    expected = np.mean(np.sum((gram - np.eye(4)) ** 2, axis=(1, 2)))
    np.testing.assert_allclose(float(attention_penalty(attention)), expected, rtol=1e-5)


def test_penalty_is_zero_for_distinct_one_hot_rows():
    attention = np.zeros((2, 4, 12), dtype="float32")
    attention[0, [0, 1, 2, 3], [0, 3, 5, 11]] = 1.0
    attention[1, [0, 1, 2, 3], [7, 2, 9, 4]] = 1.0
    assert float(attention_penalty(attention)) == 0.0


def test_penalty_counts_repeated_hops():
    # r identical one-hot rows: A·Aᵀ is all ones, so ‖A·Aᵀ − I‖²_F = r² − r.
    attention = np.zeros((1, 4, 12), dtype="float32")
    attention[0, :, 3] = 1.0
    assert float(attention_penalty(attention)) == pytest.approx(12.0)


def test_config_round_trip():
    layer = StructuredSelfAttention(hops=3, attention_units=5, name="attn")
    clone = StructuredSelfAttention.from_config(layer.get_config())
    assert (clone.hops, clone.attention_units, clone.name) == (3, 5, "attn")


def test_bad_arguments_and_shapes_raise_clear_errors():
    with pytest.raises(ValueError, match="hops"):
        StructuredSelfAttention(hops=0)
    with pytest.raises(ValueError, match="attention_units"):
        StructuredSelfAttention(attention_units=0)
    with pytest.raises(ValueError, match=r"\[batch, tokens, features\]"):
        StructuredSelfAttention(hops=2, attention_units=3)(np.zeros((2, 8), "float32"))
    with pytest.raises(ValueError, match=r"\[batch, hops, tokens\]"):
        attention_penalty(np.zeros((4, 12), "float32"))
