"""Pre-training of the text encoder as a caption → class classifier.

The encoder learns sentence vectors by predicting the class (e.g. the bird
species) of each caption; the GAN later uses the encoder's φ(t), not the
logits. For the self-attention encoder the loss also carries the attention
penalty λ·‖A·Aᵀ − I‖²_F so that the hops look at different words.
"""

import keras
import tensorflow as tf
from keras import layers
from keras import ops

from sagan_tf.models.attention import attention_penalty
from sagan_tf.models.text_encoder import TextEncoder


@keras.saving.register_keras_serializable(package="sagan_tf")
class CaptionClassifier(keras.Model):
    """TextEncoder + Dense(num_classes) logits, trained with its own steps.

    Compile with an optimizer only (`model.compile(optimizer=...)`); `fit`
    takes batches of (token_ids, labels) or (token_ids, labels, sample_weight)
    and logs `loss` (cross-entropy + penalty_weight·penalty), `penalty`,
    `accuracy` and `top5_accuracy` (`val_`-prefixed on validation data).

    Args:
        encoder: a `TextEncoder` (set `encoder.trainable = False` to freeze it).
        num_classes: number of caption classes.
        penalty_weight: λ, the weight of the attention penalty.
        auxiliary_classes: sizes of extra softmax heads trained beside the
            class head; labels are then [batch, 1 + len(auxiliary_classes)].
        label_smoothing: ε of the training cross-entropy (targets 1 − ε + ε/k
            and ε/k); validation reports the plain cross-entropy.
    """

    def __init__(self, encoder, num_classes, penalty_weight=1.0, auxiliary_classes=(), label_smoothing=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(encoder, TextEncoder):
            raise ValueError(
                f"encoder must be a TextEncoder, got {type(encoder).__name__}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if penalty_weight < 0:
            raise ValueError(f"penalty_weight must be >= 0, got {penalty_weight}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.encoder = encoder
        self.num_classes = num_classes
        self.penalty_weight = penalty_weight
        self.label_smoothing = label_smoothing
        self.class_logits = layers.Dense(
            num_classes, dtype=self.dtype_policy, name="class_logits")
        # Extra targets (e.g. the shapes' background, size and position) make
        # the sentence vector carry what the class label alone would drop.
        self.auxiliary_classes = [int(n) for n in auxiliary_classes]
        self.auxiliary_logits = [
            layers.Dense(n, dtype=self.dtype_policy, name=f"auxiliary_logits_{i}")
            for i, n in enumerate(self.auxiliary_classes)]
        self.cross_entropy = keras.losses.CategoricalCrossentropy(from_logits=True)
        # Many captions fit several classes ("a bird with a white belly");
        # smoothing keeps the head from staking everything on one.
        self.smoothed_cross_entropy = keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=label_smoothing)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.penalty_tracker = keras.metrics.Mean(name="penalty")
        self.accuracy_metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self.top5_metric = keras.metrics.SparseTopKCategoricalAccuracy(
            k=5, name="top5_accuracy")
        self.build((None, None))

    @property
    def metrics(self):
        # Listed here so Keras resets them at the start of every epoch.
        return [self.loss_tracker, self.penalty_tracker,
                self.accuracy_metric, self.top5_metric]

    def build(self, input_shape):
        # The encoder builds itself; only the head is left.
        for head in [self.class_logits, *self.auxiliary_logits]:
            head.build((input_shape[0], self.encoder.output_dim))

    def call(self, token_ids, training=False):
        logits, _, _ = self._logits_and_penalty(token_ids, training)
        return logits

    def _logits_and_penalty(self, token_ids, training):
        vector, attention = self.encoder.encode_with_attention(token_ids, training=training)
        # float32 logits keep the softmax stable under mixed precision.
        logits = ops.cast(self.class_logits(vector), "float32")
        auxiliary = [ops.cast(head(vector), "float32") for head in self.auxiliary_logits]
        penalty = 0.0 if attention is None else attention_penalty(attention)
        return logits, auxiliary, penalty

    def _split_labels(self, labels):
        """Labels are [batch] class ids, or [batch, 1 + auxiliary heads] with auxiliary heads."""
        if not self.auxiliary_logits:
            return labels, []
        return labels[:, 0], [labels[:, i + 1] for i in range(len(self.auxiliary_logits))]

    def _total_loss(self, labels, auxiliary_labels, logits, auxiliary, penalty, sample_weight, training):
        cross_entropy = self.smoothed_cross_entropy if training else self.cross_entropy
        loss = 0.0
        for head_labels, head_logits in zip([labels, *auxiliary_labels], [logits, *auxiliary]):
            targets = ops.one_hot(head_labels, ops.shape(head_logits)[-1])
            loss += cross_entropy(targets, head_logits, sample_weight=sample_weight)
        return loss + self.penalty_weight * penalty

    def _update_metrics(self, loss, penalty, labels, logits, sample_weight):
        self.loss_tracker.update_state(loss)
        self.penalty_tracker.update_state(penalty)
        self.accuracy_metric.update_state(labels, logits, sample_weight=sample_weight)
        self.top5_metric.update_state(labels, logits, sample_weight=sample_weight)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data):
        token_ids, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        labels, auxiliary_labels = self._split_labels(labels)
        with tf.GradientTape() as tape:
            logits, auxiliary, penalty = self._logits_and_penalty(token_ids, training=True)
            loss = self._total_loss(labels, auxiliary_labels, logits, auxiliary, penalty, sample_weight,
                                    training=True)
            # A no-op unless the optimizer is a float16 LossScaleOptimizer.
            scaled_loss = self.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled_loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return self._update_metrics(loss, penalty, labels, logits, sample_weight)

    def test_step(self, data):
        token_ids, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        labels, auxiliary_labels = self._split_labels(labels)
        logits, auxiliary, penalty = self._logits_and_penalty(token_ids, training=False)
        loss = self._total_loss(labels, auxiliary_labels, logits, auxiliary, penalty, sample_weight,
                                training=False)
        return self._update_metrics(loss, penalty, labels, logits, sample_weight)

    def get_config(self):
        config = super().get_config()
        config.update({
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "num_classes": self.num_classes,
            "penalty_weight": self.penalty_weight,
            "auxiliary_classes": self.auxiliary_classes,
            "label_smoothing": self.label_smoothing,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
