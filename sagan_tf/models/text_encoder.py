"""Caption encoder: token ids -> sentence vector φ(t).

Three kinds share one interface so the GAN and the experiments can swap them:

- `self_attention` (the model of the spec): Embedding → BiLSTM (both
  directions concatenated, H) → structured self-attention (M = A·H) →
  flatten M → Dense → Dense.
- `lstm_last`: Embedding → LSTM, its state at the last real token → Dense → Dense.
- `mean`: masked mean of the word embeddings → Dense → Dense (order-blind).

Token ids follow Keras `TextVectorization`: 0 is padding (masked out
everywhere), 1 is out-of-vocabulary. Padding must come after the words.

Activations: ReLU on the hidden layer, tanh on φ(t). The GAN consumes φ(t)
as a conditioning input next to the noise, and tanh keeps it in [-1, 1]
however long the encoder was trained, so the GAN sees inputs of a fixed scale.
"""

import keras
from keras import layers
from keras import ops

from sagan_tf.models.attention import StructuredSelfAttention

ENCODER_KINDS = ("self_attention", "lstm_last", "mean")


@keras.saving.register_keras_serializable(package="sagan_tf")
class TextEncoder(keras.Model):
    """Maps int token ids [batch, length] to sentence vectors [batch, output_dim].

    Args:
        vocab_size: number of token ids, padding (0) and OOV (1) included.
        kind: one of "self_attention", "lstm_last", "mean".
        embedding_dim: e, the word embedding width.
        lstm_units: u, units per LSTM direction (ignored by "mean").
        hops: r, attention rows (self_attention only).
        attention_units: d_a, attention scoring width (self_attention only).
        hidden_units: width of the ReLU layer before φ(t).
        output_dim: width of φ(t).
        dropout: dropout rate on the pooled sentence features and the hidden layer.

    The weights depend only on these arguments, so the encoder is built at
    construction: `load_weights` works on a fresh instance, and any batch
    size and length (static or not) can be fed.
    """

    def __init__(self, vocab_size, kind="self_attention", embedding_dim=512,
                 lstm_units=512, hops=30, attention_units=350, hidden_units=256,
                 output_dim=128, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if kind not in ENCODER_KINDS:
            raise ValueError(
                f"kind must be one of {', '.join(ENCODER_KINDS)}, got {kind!r}")
        if vocab_size < 2:
            raise ValueError(
                f"vocab_size must be >= 2 (padding id 0 plus tokens), got {vocab_size}")
        sizes = {"embedding_dim": embedding_dim, "lstm_units": lstm_units,
                 "hops": hops, "attention_units": attention_units,
                 "hidden_units": hidden_units, "output_dim": output_dim}
        for name, size in sizes.items():
            if size < 1:
                raise ValueError(f"{name} must be >= 1, got {size}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.vocab_size = vocab_size
        self.kind = kind
        self.embedding_dim = embedding_dim
        self.lstm_units = lstm_units
        self.hops = hops
        self.attention_units = attention_units
        self.hidden_units = hidden_units
        self.output_dim = output_dim
        self.dropout = dropout

        dtype = self.dtype_policy
        # Unit-scale word vectors, the scale of pre-trained ones. Keras'
        # default U(-0.05, 0.05) feeds the LSTM inputs so small that its states
        # hardly depend on the words: on CUB captions both LSTM kinds then sat
        # at chance for epochs while the penalty drove the hops one-hot.
        self.embedding = layers.Embedding(
            vocab_size, embedding_dim, mask_zero=True,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=1.0),
            dtype=dtype, name="embedding")
        self.sequence_encoder = None
        self.attention = None
        if kind == "self_attention":
            self.sequence_encoder = layers.Bidirectional(
                layers.LSTM(lstm_units, return_sequences=True, dtype=dtype),
                merge_mode="concat", dtype=dtype, name="bilstm")
            self.attention = StructuredSelfAttention(
                hops, attention_units, dtype=dtype, name="attention")
        elif kind == "lstm_last":
            # With a mask, a Keras LSTM returns its state at the last real token.
            self.sequence_encoder = layers.LSTM(lstm_units, dtype=dtype, name="lstm")
        self.feature_dropout = layers.Dropout(dropout, dtype=dtype, name="dropout")
        self.hidden_projection = layers.Dense(
            hidden_units, activation="relu", dtype=dtype, name="hidden")
        self.sentence_projection = layers.Dense(
            output_dim, activation="tanh", dtype=dtype, name="sentence_vector")
        self.build((None, None))

    @property
    def has_attention(self):
        return self.kind == "self_attention"

    @property
    def sentence_features_dim(self):
        """Width of the pooled features that feed the Dense layers."""
        if self.kind == "self_attention":
            return self.hops * 2 * self.lstm_units
        if self.kind == "lstm_last":
            return self.lstm_units
        return self.embedding_dim

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(
                f"TextEncoder expects token ids of shape [batch, length], got {input_shape}")
        batch, length = input_shape
        self.embedding.build(input_shape)
        if self.sequence_encoder is not None:
            self.sequence_encoder.build((batch, length, self.embedding_dim))
        if self.attention is not None:
            self.attention.build((batch, length, 2 * self.lstm_units))
        self.hidden_projection.build((batch, self.sentence_features_dim))
        self.sentence_projection.build((batch, self.hidden_units))

    def call(self, token_ids, training=False):
        vector, _ = self.encode_with_attention(token_ids, training=training)
        return vector

    def encode_with_attention(self, token_ids, training=False):
        """Returns (φ(t) [batch, output_dim], A [batch, hops, length] or None).

        A is None for the baselines; the trainer adds `attention_penalty(A)`
        to the loss when it is not.
        """
        if len(token_ids.shape) != 2:
            raise ValueError(
                "TextEncoder expects token ids of shape [batch, length], "
                f"got shape {token_ids.shape}")
        if "int" not in keras.backend.standardize_dtype(token_ids.dtype):
            raise ValueError(
                f"TextEncoder expects integer token ids, got dtype {token_ids.dtype}")
        mask = ops.not_equal(token_ids, 0)
        embedded = self.embedding(token_ids)
        attention = None
        if self.kind == "self_attention":
            hidden = self.sequence_encoder(embedded, mask=mask, training=training)
            context, attention = self.attention(hidden, mask=mask)
            features = ops.reshape(context, (-1, self.sentence_features_dim))
        elif self.kind == "lstm_last":
            features = self.sequence_encoder(embedded, mask=mask, training=training)
        else:
            features = _masked_mean(embedded, mask)
        features = self.feature_dropout(features, training=training)
        hidden = self.hidden_projection(features)
        hidden = self.feature_dropout(hidden, training=training)
        return self.sentence_projection(hidden), attention

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update({
            "vocab_size": self.vocab_size,
            "kind": self.kind,
            "embedding_dim": self.embedding_dim,
            "lstm_units": self.lstm_units,
            "hops": self.hops,
            "attention_units": self.attention_units,
            "hidden_units": self.hidden_units,
            "output_dim": self.output_dim,
            "dropout": self.dropout,
        })
        return config


def _masked_mean(embedded, mask):
    """Mean over real tokens; an all-padding row gives zeros, not NaN."""
    weights = ops.expand_dims(ops.cast(mask, embedded.dtype), axis=-1)
    total = ops.sum(embedded * weights, axis=1)
    count = ops.maximum(ops.sum(weights, axis=1), 1.0)
    return total / count
