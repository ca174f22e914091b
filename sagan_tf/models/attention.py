"""Structured self-attention over BiLSTM states (Lin et al. 2017).

Each of `hops` rows of the attention matrix A is a distribution over the
tokens of a caption; M = A·H stacks `hops` weighted sums of the hidden
states, so different rows can summarise different parts of the sentence.
"""

import keras
from keras import layers
from keras import ops


@keras.saving.register_keras_serializable(package="sagan_tf")
class StructuredSelfAttention(layers.Layer):
    """A = softmax(W_s2 · tanh(W_s1 · Hᵀ)) over tokens, M = A · H.

    Args:
        hops: r, the number of attention rows.
        attention_units: d_a, the width of the hidden scoring layer.

    Call arguments:
        hidden: float tensor [batch, tokens, features] (H, e.g. BiLSTM states).
        mask: optional boolean tensor [batch, tokens], False at padding.
            Padding gets exactly zero weight; a fully padded row gets all
            zeros rather than NaN.

    Returns:
        (M [batch, hops, features], A [batch, hops, tokens]).
    """

    def __init__(self, hops=30, attention_units=350, **kwargs):
        super().__init__(**kwargs)
        if hops < 1:
            raise ValueError(f"hops must be >= 1, got {hops}")
        if attention_units < 1:
            raise ValueError(f"attention_units must be >= 1, got {attention_units}")
        self.hops = hops
        self.attention_units = attention_units
        # Lin et al. use no biases: W_s1 is d_a × 2u and W_s2 is r × d_a.
        self.token_projection = layers.Dense(
            attention_units, activation="tanh", use_bias=False,
            dtype=self.dtype_policy, name="w_s1")
        self.hop_scores = layers.Dense(
            hops, use_bias=False, dtype=self.dtype_policy, name="w_s2")
        # Keras' masked softmax sends padding to a dtype-safe large negative
        # value and then zeroes it, which also covers fully padded rows.
        self.token_softmax = layers.Softmax(axis=-1, dtype=self.dtype_policy)

    def build(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(
                "StructuredSelfAttention expects hidden states of shape "
                f"[batch, tokens, features], got shape {input_shape}")
        self.token_projection.build(input_shape)
        self.hop_scores.build((*input_shape[:-1], self.attention_units))

    def call(self, hidden, mask=None):
        scores = self.hop_scores(self.token_projection(hidden))
        scores = ops.transpose(scores, (0, 2, 1))  # [batch, hops, tokens]
        if mask is not None:
            mask = ops.expand_dims(mask, axis=1)  # the same mask for every hop
        attention = self.token_softmax(scores, mask=mask)
        context = ops.matmul(attention, hidden)
        return context, attention

    def compute_mask(self, hidden, mask=None):
        # Attention pools the token axis away, so nothing is left to mask.
        return None

    def compute_output_shape(self, input_shape):
        batch, tokens, features = input_shape
        return (batch, self.hops, features), (batch, self.hops, tokens)

    def get_config(self):
        config = super().get_config()
        config.update({"hops": self.hops, "attention_units": self.attention_units})
        return config


def attention_penalty(attention):
    """Batch mean of ‖A·Aᵀ − I‖²_F (squared Frobenius norm).

    Zero when the hops attend to disjoint single tokens; it grows as hops
    repeat each other, which pushes the rows of A to cover different words.

    Args:
        attention: A, float tensor [batch, hops, tokens].

    Returns:
        A float32 scalar.
    """
    if len(attention.shape) != 3:
        raise ValueError(
            "attention_penalty expects attention of shape [batch, hops, tokens], "
            f"got shape {attention.shape}")
    # float32 even under mixed precision: the penalty is added to the loss.
    attention = ops.cast(attention, "float32")
    gram = ops.matmul(attention, ops.transpose(attention, (0, 2, 1)))
    identity = ops.eye(ops.shape(attention)[1], dtype="float32")
    return ops.mean(ops.sum(ops.square(gram - identity), axis=(1, 2)))
