import numpy as np
import pytest
import keras
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from sagan_tf.models.attention import attention_penalty
from sagan_tf.models.caption_classifier import CaptionClassifier
from sagan_tf.models.text_encoder import ENCODER_KINDS, TextEncoder

LENGTH = 12
START, END = 2, 3
CLASS_TOKENS = np.array([10, 11, 12, 13])  # the word that names a caption's class
TINY = dict(vocab_size=50, embedding_dim=8, lstm_units=8, hops=3, attention_units=6,
            hidden_units=16, output_dim=8)


def tiny_encoder(kind="self_attention", **overrides):
    keras.utils.set_random_seed(0)
    return TextEncoder(kind=kind, **{**TINY, **overrides})


def captions(*word_lists):
    """`<start> words <end>` then padding to LENGTH, as TextVectorization would."""
    token_ids = np.zeros((len(word_lists), LENGTH), dtype="int32")
    for row, words in enumerate(word_lists):
        token_ids[row, :len(words) + 2] = [START, *words, END]
    return token_ids


def class_dataset(size, seed):
    """Captions of 3-8 filler words, one of which names the class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(CLASS_TOKENS), size)
    word_lists = []
    for label in labels:
        words = rng.integers(14, 50, rng.integers(3, 9))
        words[rng.integers(len(words))] = CLASS_TOKENS[label]
        word_lists.append(words)
    return captions(*word_lists), labels


SENTENCES = captions([5, 6, 7, 8], [9, 1, 20], [30, 31, 32, 33, 34, 35, 36, 37])


# --- TextEncoder ----------------------------------------------------------

@pytest.mark.parametrize("kind", ENCODER_KINDS)
def test_all_kinds_share_one_interface(kind):
    encoder = tiny_encoder(kind)
    vector = encoder(SENTENCES)
    same_vector, attention = encoder.encode_with_attention(SENTENCES)
    assert vector.shape == (3, TINY["output_dim"])
    np.testing.assert_array_equal(vector, same_vector)
    assert np.all(np.abs(vector) < 1.0)  # tanh output
    assert encoder.has_attention == (kind == "self_attention")
    if kind == "self_attention":
        assert attention.shape == (3, TINY["hops"], LENGTH)
    else:
        assert attention is None


@pytest.mark.parametrize("hops", [1, 2, 4, 8])
def test_self_attention_shapes_for_several_hops(hops):
    encoder = tiny_encoder(hops=hops)
    vector, attention = encoder.encode_with_attention(SENTENCES)
    assert vector.shape == (3, TINY["output_dim"])
    assert attention.shape == (3, hops, LENGTH)
    # M = A·H is flattened into the hidden layer: hops × 2u inputs.
    assert encoder.hidden_projection.kernel.shape == (hops * 2 * TINY["lstm_units"],
                                                      TINY["hidden_units"])


def test_attention_covers_exactly_the_real_tokens():
    _, attention = tiny_encoder().encode_with_attention(SENTENCES)
    attention = np.asarray(attention)
    real = SENTENCES != 0
    np.testing.assert_allclose(attention.sum(axis=-1), 1.0, rtol=1e-6)
    assert np.all(attention.transpose(1, 0, 2)[:, ~real] == 0.0)
    assert np.all(attention.transpose(1, 0, 2)[:, real] > 0.0)


@pytest.mark.parametrize("kind", ENCODER_KINDS)
def test_appending_padding_does_not_change_the_vector(kind):
    encoder = tiny_encoder(kind)
    longer = np.pad(SENTENCES, ((0, 0), (0, 7)))
    np.testing.assert_allclose(encoder(longer), encoder(SENTENCES), atol=1e-6)


@pytest.mark.parametrize("kind", ["self_attention", "lstm_last"])
def test_untrained_sentence_vectors_already_depend_on_the_words(kind):
    # Unit-scale embeddings: with Keras' default U(-0.05, 0.05) the spread
    # across captions was 0.003 here (25x smaller) and CUB training stalled.
    token_ids, _ = class_dataset(64, seed=0)
    encoder = tiny_encoder(kind, embedding_dim=32, lstm_units=32, hops=4, attention_units=16,
                           hidden_units=64, output_dim=32)
    vectors = np.asarray(encoder(token_ids))
    assert vectors.std(axis=0).mean() > 0.03


def test_mean_is_order_blind_and_the_lstm_kinds_are_not():
    words = [5, 17, 23, 40, 8]
    permuted = captions(words, [40, 8, 5, 23, 17])
    mean_vectors = np.asarray(tiny_encoder("mean")(permuted))
    np.testing.assert_allclose(mean_vectors[0], mean_vectors[1], atol=1e-6)
    for kind in ("self_attention", "lstm_last"):
        vectors = np.asarray(tiny_encoder(kind)(permuted))
        assert np.abs(vectors[0] - vectors[1]).max() > 1e-4, kind


def test_dropout_is_active_only_in_training():
    encoder = tiny_encoder(dropout=0.5)
    np.testing.assert_array_equal(encoder(SENTENCES), encoder(SENTENCES))
    assert not np.allclose(encoder(SENTENCES, training=True), encoder(SENTENCES))


@pytest.mark.parametrize("kind", ENCODER_KINDS)
def test_keras_file_round_trip_gives_identical_vectors(kind, tmp_path):
    encoder = tiny_encoder(kind)
    encoder.save(tmp_path / "encoder.keras")
    restored = keras.models.load_model(tmp_path / "encoder.keras")
    assert isinstance(restored, TextEncoder)
    assert restored.get_config() == encoder.get_config()
    np.testing.assert_array_equal(restored(SENTENCES), encoder(SENTENCES))


def test_weights_file_round_trip_into_a_fresh_encoder(tmp_path):
    encoder = tiny_encoder()
    encoder.save_weights(tmp_path / "encoder.weights.h5")
    fresh = TextEncoder(**TINY)
    assert not np.array_equal(fresh(SENTENCES), encoder(SENTENCES))
    fresh.load_weights(tmp_path / "encoder.weights.h5")
    np.testing.assert_array_equal(fresh(SENTENCES), encoder(SENTENCES))


def test_builds_on_a_symbolic_input_inside_a_functional_model():
    encoder = tiny_encoder()
    token_ids = keras.Input((LENGTH,), dtype="int32")
    vector = encoder(token_ids)
    assert vector.shape == (None, TINY["output_dim"])
    wrapper = keras.Model(token_ids, vector)
    np.testing.assert_allclose(wrapper(SENTENCES), encoder(SENTENCES), atol=1e-6)


@pytest.mark.parametrize("kind", ENCODER_KINDS)
def test_static_shapes_convert_to_tflite_builtins(kind):
    encoder = tiny_encoder(kind)
    signature = [tf.TensorSpec([1, LENGTH], tf.int32)]
    encode = tf.function(lambda token_ids: encoder(token_ids), input_signature=signature)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [encode.get_concrete_function()], encoder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], SENTENCES[1:2])
    interpreter.invoke()
    vector = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(vector, encoder(SENTENCES[1:2]), atol=1e-5)


def test_bad_arguments_and_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="kind"):
        TextEncoder(vocab_size=50, kind="transformer")
    with pytest.raises(ValueError, match="vocab_size"):
        TextEncoder(vocab_size=1)
    with pytest.raises(ValueError, match="hops"):
        TextEncoder(**{**TINY, "hops": 0})
    with pytest.raises(ValueError, match="dropout"):
        TextEncoder(**TINY, dropout=1.0)
    encoder = tiny_encoder("mean")
    with pytest.raises(ValueError, match=r"\[batch, length\]"):
        encoder(np.array([2, 5, 3], dtype="int32"))
    with pytest.raises(ValueError, match="integer token ids"):
        encoder(SENTENCES.astype("float32"))


# --- CaptionClassifier ----------------------------------------------------

def fit_classifier(kind, epochs):
    token_ids, labels = class_dataset(256, seed=1)
    val_ids, val_labels = class_dataset(64, seed=2)
    train = tf.data.Dataset.from_tensor_slices((token_ids, labels)).shuffle(256, seed=0).batch(32)
    validation = tf.data.Dataset.from_tensor_slices((val_ids, val_labels)).batch(32)
    classifier = CaptionClassifier(tiny_encoder(kind), num_classes=len(CLASS_TOKENS))
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = classifier.fit(train, validation_data=validation, epochs=epochs, shuffle=False,
                             verbose=0)
    return classifier, history.history, (val_ids, val_labels)


@pytest.mark.parametrize("kind", ENCODER_KINDS)
def test_training_learns_which_word_names_the_class(kind):
    epochs = 10
    classifier, history, (val_ids, val_labels) = fit_classifier(kind, epochs)
    assert set(history) == {"loss", "penalty", "accuracy", "top5_accuracy", "val_loss",
                            "val_penalty", "val_accuracy", "val_top5_accuracy"}
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] >= 0.9
    assert history["val_accuracy"][-1] >= 0.9
    if kind == "self_attention":
        assert history["penalty"][-1] > 0.0
    else:
        assert history["penalty"] == [0.0] * epochs
    # Metrics are reset between runs: evaluate reports this data's own accuracy.
    logits = classifier.predict(val_ids, verbose=0)
    logs = classifier.evaluate(val_ids, val_labels, verbose=0, return_dict=True)
    assert logs["accuracy"] == pytest.approx(np.mean(logits.argmax(-1) == val_labels))
    assert logs["top5_accuracy"] == 1.0  # 4 classes: the true one is always in the top 5


def test_loss_is_cross_entropy_plus_weighted_penalty():
    token_ids, labels = class_dataset(16, seed=3)
    classifier = CaptionClassifier(tiny_encoder(), num_classes=4, penalty_weight=0.5)
    classifier.compile(optimizer="adam")
    logs = classifier.evaluate(token_ids, labels, batch_size=16, verbose=0, return_dict=True)
    logits = np.asarray(classifier(token_ids), dtype="float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    cross_entropy = -np.mean(log_probs[np.arange(16), labels])
    _, attention = classifier.encoder.encode_with_attention(token_ids)
    penalty = float(attention_penalty(attention))
    assert penalty > 0.0
    assert logs["penalty"] == pytest.approx(penalty, rel=1e-5)
    assert logs["loss"] == pytest.approx(cross_entropy + 0.5 * penalty, rel=1e-5)


def test_label_smoothing_applies_to_the_training_loss_only():
    token_ids, labels = class_dataset(16, seed=3)
    classifier = CaptionClassifier(tiny_encoder(), num_classes=4, penalty_weight=0.5, label_smoothing=0.2)
    classifier.compile(optimizer=keras.optimizers.SGD(0.0))
    # Confident logits, where the smoothed and plain losses differ clearly.
    kernel = classifier.class_logits.kernel
    kernel.assign(kernel * 30.0)
    logits = np.asarray(classifier(token_ids), dtype="float64")
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    targets = np.full((16, 4), 0.2 / 4)
    targets[np.arange(16), labels] += 0.8
    smoothed = -np.mean((targets * log_probs).sum(-1))
    plain = -np.mean(log_probs[np.arange(16), labels])
    _, attention = classifier.encoder.encode_with_attention(token_ids)
    penalty = float(attention_penalty(attention))
    train_logs = classifier.train_on_batch(token_ids, labels, return_dict=True)
    assert train_logs["loss"] == pytest.approx(smoothed + 0.5 * penalty, rel=1e-5)
    val_logs = classifier.evaluate(token_ids, labels, batch_size=16, verbose=0, return_dict=True)
    assert val_logs["loss"] == pytest.approx(plain + 0.5 * penalty, rel=1e-5)
    assert abs(smoothed - plain) > 0.1


def test_classifier_keras_file_round_trip(tmp_path):
    classifier = CaptionClassifier(tiny_encoder("mean"), num_classes=4, penalty_weight=0.3, label_smoothing=0.1)
    classifier.compile(optimizer="adam")
    classifier.fit(*class_dataset(32, seed=4), batch_size=16, verbose=0)
    classifier.save(tmp_path / "classifier.keras")
    restored = keras.models.load_model(tmp_path / "classifier.keras")
    assert isinstance(restored.encoder, TextEncoder)
    assert (restored.num_classes, restored.penalty_weight, restored.label_smoothing, restored.encoder.kind) == (
        4, 0.3, 0.1, "mean")
    np.testing.assert_array_equal(restored(SENTENCES), classifier(SENTENCES))
    np.testing.assert_array_equal(restored.encoder(SENTENCES), classifier.encoder(SENTENCES))


def test_classifier_rejects_bad_arguments():
    with pytest.raises(ValueError, match="TextEncoder"):
        CaptionClassifier(keras.layers.Dense(4), num_classes=4)
    with pytest.raises(ValueError, match="num_classes"):
        CaptionClassifier(tiny_encoder("mean"), num_classes=1)
    with pytest.raises(ValueError, match="penalty_weight"):
        CaptionClassifier(tiny_encoder("mean"), num_classes=4, penalty_weight=-1.0)
    with pytest.raises(ValueError, match="label_smoothing"):
        CaptionClassifier(tiny_encoder("mean"), num_classes=4, label_smoothing=1.0)
