import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tiny_gan
from sagan_tf.models import gan_losses
from sagan_tf.models.discriminator import Discriminator
from sagan_tf.models.gan import TextToImageGAN, sample_noise
from sagan_tf.training import precision
from sagan_tf.training.callbacks import AtomicBackupAndRestore

LOG_NAMES = {"d_loss", "g_loss", "d_real", "d_wrong", "d_fake"}


def snapshot(variables):
    return [v.numpy().copy() for v in variables]


def changed(before, variables):
    return all(not np.array_equal(b, v.numpy()) for b, v in zip(before, variables))


def first_batch(steps=1):
    return {key: value.numpy() for key, value in next(iter(tiny_gan.batches(steps))).items()}


@pytest.fixture(scope="module")
def trained():
    """A tiny GAN after one epoch of 3 steps, with its weights before training."""
    gan = tiny_gan.compile_gan(tiny_gan.make_gan())
    before = {"generator": snapshot(gan.generator.trainable_variables),
              "discriminator": snapshot(gan.discriminator.trainable_variables)}
    history = gan.fit(tiny_gan.batches(), epochs=1, verbose=0)
    return gan, before, history.history


def test_fit_updates_both_networks(trained):
    gan, before, history = trained
    assert changed(before["generator"], gan.generator.trainable_variables)
    assert changed(before["discriminator"], gan.discriminator.trainable_variables)
    assert gan.d_optimizer.iterations.numpy() == gan.g_optimizer.iterations.numpy() == tiny_gan.STEPS
    assert set(history) == LOG_NAMES
    assert all(np.isfinite(values[0]) for values in history.values())
    for name in ("d_real", "d_wrong", "d_fake"):
        assert 0.0 < history[name][0] < 1.0


def test_fit_under_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy()
    with strategy.scope():
        gan = tiny_gan.compile_gan(tiny_gan.make_gan())
    before = snapshot(gan.trainable_variables)
    history = gan.fit(tiny_gan.batches(steps=2), epochs=1, verbose=0).history
    assert changed(before, gan.trainable_variables)
    assert gan.g_optimizer.iterations.numpy() == 2
    assert set(history) == LOG_NAMES and np.isfinite(history["d_loss"][0])


def test_test_step_reports_without_updating():
    gan = tiny_gan.compile_gan(tiny_gan.make_gan())
    before = snapshot(gan.weights)
    logs = gan.evaluate(tiny_gan.batches(steps=1), verbose=0, return_dict=True)
    assert set(logs) == LOG_NAMES
    for saved, variable in zip(before, gan.weights):
        np.testing.assert_array_equal(saved, variable.numpy())
    # Real pairs do not depend on the noise: check them by hand.
    batch = first_batch()
    real = gan.discriminator([batch["image"], batch["embedding"]], training=False)
    wrong = gan.discriminator([batch["image"], batch["wrong_embedding"]], training=False)
    np.testing.assert_allclose(logs["d_real"], np.mean(keras.ops.sigmoid(real)), rtol=1e-5)
    np.testing.assert_allclose(logs["d_wrong"], np.mean(keras.ops.sigmoid(wrong)), rtol=1e-5)
    # An untrained discriminator is at chance level: L_G = log 2, L_D = 2 log 2.
    np.testing.assert_allclose(logs["g_loss"], np.log(2), atol=0.05)
    np.testing.assert_allclose(logs["d_loss"], 2 * np.log(2), atol=0.05)


def test_one_image_pass_for_both_real_pairs_gives_the_loss_of_three_full_calls():
    gan = tiny_gan.make_gan()
    batch = first_batch()
    images, matching, mismatched = (
        tf.constant(batch[key]) for key in ("image", "embedding", "wrong_embedding"))
    fakes = gan.generator([sample_noise(len(images), tiny_gan.NOISE_DIM), matching])
    logits, d_loss, _ = gan._discriminate(images, matching, mismatched, fakes, None, training=True)
    # Batch statistics are per call, and both real calls see the same images.
    full_calls = [gan.discriminator([x, c], training=True)
                  for x, c in ((images, matching), (images, mismatched), (fakes, matching))]
    for shared, full in zip(logits, full_calls):
        np.testing.assert_allclose(shared, full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d_loss, gan_losses.discriminator_loss(*full_calls), rtol=1e-5)


def test_gan_int_adds_the_interpolated_term():
    gan = tiny_gan.compile_gan(tiny_gan.make_gan(gan_int=True, int_beta=0.25))
    logs = gan.evaluate(tiny_gan.batches(steps=1), verbose=0, return_dict=True)
    # Two terms, each near log 2 for an untrained discriminator.
    np.testing.assert_allclose(logs["g_loss"], 2 * np.log(2), atol=0.1)
    before = snapshot(gan.generator.trainable_variables)
    gan.fit(tiny_gan.batches(steps=1), verbose=0)
    assert changed(before, gan.generator.trainable_variables)


def test_reused_fakes_get_the_update_fresh_noise_gets_when_it_repeats_the_first():
    noise = sample_noise(tiny_gan.BATCH, tiny_gan.NOISE_DIM, seed=3)
    initial, generators, draws = None, [], []
    for reuse_fakes in (False, True):
        gan = tiny_gan.compile_gan(tiny_gan.make_gan(reuse_fakes=reuse_fakes))
        state = gan.seed_generator.state.numpy().copy()
        gan.fit(tiny_gan.batches(steps=1), verbose=0)
        draws.append(int((gan.seed_generator.state.numpy() - state)[1]))
        # The same noise for the generator update: G must then get the same
        # gradient through the D step's fakes, judged by the updated D.
        gan = tiny_gan.compile_gan(tiny_gan.make_gan(reuse_fakes=reuse_fakes))
        initial = initial or gan.get_weights()
        gan.set_weights(initial)
        gan._replica_noise = lambda batch_size: noise
        before = snapshot(gan.generator.trainable_variables)
        gan.fit(tiny_gan.batches(steps=1), verbose=0)
        assert changed(before, gan.generator.trainable_variables)
        generators.append(snapshot(gan.generator.trainable_variables))
    assert draws == [2, 1]
    for fresh, reused in zip(*generators):
        np.testing.assert_allclose(reused, fresh, rtol=1e-5, atol=1e-7)


def test_class_loss_adds_the_auxiliary_terms_and_logs():
    classes = 4
    gan = tiny_gan.compile_gan(tiny_gan.make_gan(num_classes=classes, class_loss_weight=0.5))
    plain = tiny_gan.compile_gan(tiny_gan.make_gan(num_classes=classes))
    plain.set_weights(gan.get_weights())
    data = tiny_gan.batches(steps=1, num_classes=classes)
    batch = next(iter(data))
    logs = gan.evaluate(data, verbose=0, return_dict=True)
    plain_logs = plain.evaluate(data, verbose=0, return_dict=True)
    assert set(logs) == LOG_NAMES | {"real_class_accuracy", "fake_class_accuracy"}
    assert set(plain_logs) == LOG_NAMES
    # The noise streams are the same (seed 0), so the difference is the class
    # terms: 0.5 x cross-entropy of the class head, recomputed here.
    images, embeddings, labels = batch["image"], batch["embedding"], batch["label"].numpy()
    _, real_classes = gan.discriminator([images, embeddings])
    real_term = -keras.ops.log_softmax(real_classes).numpy()[np.arange(len(labels)), labels]
    np.testing.assert_allclose(logs["d_loss"] - plain_logs["d_loss"], 0.5 * real_term.mean(), rtol=1e-4)
    assert logs["g_loss"] > plain_logs["g_loss"]
    before = snapshot(gan.discriminator.pair_head.get_layer("class_logits").trainable_variables)
    history = gan.fit(tiny_gan.batches(num_classes=classes), verbose=0).history
    assert changed(before, gan.discriminator.pair_head.get_layer("class_logits").trainable_variables)
    assert 0.0 <= history["fake_class_accuracy"][0] <= 1.0


def test_class_loss_needs_labels_and_a_class_head():
    with pytest.raises(ValueError, match="needs a discriminator with a class head"):
        tiny_gan.make_gan(class_loss_weight=1.0)
    gan = tiny_gan.compile_gan(tiny_gan.make_gan(num_classes=3, class_loss_weight=1.0))
    with pytest.raises(ValueError, match="missing \\['label'\\]"):
        gan.fit(tiny_gan.batches(steps=1), verbose=0)


def test_sample_noise_is_deterministic_for_a_seed():
    gan = tiny_gan.make_gan()
    a = gan.sample_noise(4, seed=7)
    assert tuple(a.shape) == (4, tiny_gan.NOISE_DIM)
    np.testing.assert_array_equal(a, gan.sample_noise(4, seed=7))
    np.testing.assert_array_equal(a, gan.sample_noise(tf.constant(4), seed=tf.constant(7)))
    assert not np.allclose(a, gan.sample_noise(4, seed=8))
    # Without a seed: a stream, reproducible from the model's own seed.
    first, second = gan.sample_noise(4), gan.sample_noise(4)
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(first, tiny_gan.make_gan().sample_noise(4))


def test_module_sample_noise_serves_any_int64_seed():
    gan = tiny_gan.make_gan(noise="uniform")
    np.testing.assert_array_equal(
        sample_noise(3, tiny_gan.NOISE_DIM, "uniform", seed=9), gan.sample_noise(3, seed=9))
    # Serving draws seeds from the whole int64 range.
    big = tf.constant(2**63 - 5, tf.int64)
    z = sample_noise(tf.constant(2), 4, "normal", seed=big)
    assert tuple(z.shape) == (2, 4) and np.isfinite(z).all()
    np.testing.assert_array_equal(z, sample_noise(2, 4, "normal", seed=2**63 - 5))
    with pytest.raises(ValueError, match="noise must be one of"):
        sample_noise(2, 4, "gaussian")


@pytest.mark.parametrize("noise, low, high, std", [("normal", -np.inf, np.inf, 1.0),
                                                   ("uniform", -1.0, 1.0, np.sqrt(1 / 3))])
def test_noise_distributions(noise, low, high, std):
    z = tiny_gan.make_gan(noise=noise).sample_noise(4000, seed=1).numpy()
    assert z.min() >= low and z.max() <= high
    assert abs(z.mean()) < 0.02
    assert abs(z.std() - std) < 0.02


def test_generate_uses_the_given_noise_or_seed():
    gan = tiny_gan.make_gan()
    embeddings = first_batch()["embedding"][:3]
    images = gan.generate(embeddings, seed=3)
    assert tuple(images.shape) == (3, tiny_gan.IMAGE_SIZE, tiny_gan.IMAGE_SIZE, 3)
    np.testing.assert_array_equal(images, gan.generate(embeddings, seed=3))
    noise = gan.sample_noise(3, seed=3)
    np.testing.assert_allclose(images, gan.generate(embeddings, noise=noise))
    np.testing.assert_allclose(images, gan([noise, embeddings]))


def test_save_and_load_round_trip(trained, tmp_path):
    gan, _, _ = trained
    path = str(tmp_path / "gan.keras")
    gan.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, TextToImageGAN)
    assert loaded.get_config() == gan.get_config()
    for saved, restored in zip(gan.weights, loaded.weights):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())
    # The optimizers come back compiled, with their state.
    assert loaded.d_optimizer.iterations.numpy() == tiny_gan.STEPS
    for saved, restored in zip(gan.g_optimizer.variables, loaded.g_optimizer.variables):
        np.testing.assert_array_equal(saved.numpy(), restored.numpy())
    embeddings = first_batch()["embedding"]
    np.testing.assert_allclose(
        loaded.generate(embeddings, seed=5), gan.generate(embeddings, seed=5))


def test_config_round_trip():
    gan = tiny_gan.make_gan(noise="uniform", gan_int=True, int_beta=0.3, seed=11, reuse_fakes=True)
    rebuilt = TextToImageGAN.from_config(gan.get_config())
    assert rebuilt.get_config() == gan.get_config()
    settings = (rebuilt.noise, rebuilt.gan_int, rebuilt.int_beta, rebuilt.noise_dim, rebuilt.reuse_fakes)
    assert settings == ("uniform", True, 0.3, 8, True)
    assert rebuilt.generator.get_config() == gan.generator.get_config()


class StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 1:
            raise RuntimeError("interrupted")


def test_backup_and_restore_resumes_optimizer_state(tmp_path):
    backup = str(tmp_path / "backup")
    gan = tiny_gan.compile_gan(tiny_gan.make_gan())
    with pytest.raises(RuntimeError, match="interrupted"):
        gan.fit(tiny_gan.batches(), epochs=2, verbose=0,
                callbacks=[AtomicBackupAndRestore(backup), StopAfterFirstEpoch()])
    assert AtomicBackupAndRestore.read_position(backup) == {"epoch": 1}
    # A later save killed half-way leaves its scratch file, never a torn backup.
    with open(os.path.join(backup, ".incoming-latest.weights.h5"), "wb") as f:
        f.write(b"\x89HDF\r\n torn")
    resumed = tiny_gan.compile_gan(tiny_gan.make_gan())
    history = resumed.fit(tiny_gan.batches(), epochs=2, verbose=0, callbacks=[AtomicBackupAndRestore(backup)])
    # Only the second epoch ran, on top of the first epoch's optimizer state.
    assert len(history.history["d_loss"]) == 1
    assert resumed.d_optimizer.iterations.numpy() == 2 * tiny_gan.STEPS
    assert AtomicBackupAndRestore.read_position(backup) == {"epoch": 2}
    assert sorted(os.listdir(backup)) == ["latest.weights.h5"]


def test_a_backup_in_keras_format_still_resumes(tmp_path):
    backup = str(tmp_path / "backup")
    gan = tiny_gan.compile_gan(tiny_gan.make_gan())
    with pytest.raises(RuntimeError, match="interrupted"):
        gan.fit(tiny_gan.batches(), epochs=2, verbose=0,
                callbacks=[keras.callbacks.BackupAndRestore(backup), StopAfterFirstEpoch()])
    assert AtomicBackupAndRestore.read_position(backup)["epoch"] == 1
    resumed = tiny_gan.compile_gan(tiny_gan.make_gan())
    history = resumed.fit(tiny_gan.batches(), epochs=2, verbose=0, callbacks=[AtomicBackupAndRestore(backup)])
    assert len(history.history["d_loss"]) == 1
    assert resumed.d_optimizer.iterations.numpy() == 2 * tiny_gan.STEPS
    # A weights file with no position anywhere is refused, not resumed at epoch 0.
    os.remove(os.path.join(backup, "training_metadata.json"))
    gan.save_weights(os.path.join(backup, "latest.weights.h5"))
    with pytest.raises(ValueError, match="records no training position; delete"):
        AtomicBackupAndRestore.read_position(backup)


def test_a_backup_of_another_network_is_a_clear_error(tmp_path):
    backup = str(tmp_path / "backup")
    gan = tiny_gan.compile_gan(tiny_gan.make_gan())
    gan.fit(tiny_gan.batches(), epochs=1, verbose=0, callbacks=[AtomicBackupAndRestore(backup)])
    with_class_head = tiny_gan.compile_gan(tiny_gan.make_gan(num_classes=3))
    with pytest.raises(ValueError, match=f"the backup in {backup} does not fit the model .*; delete {backup}"):
        with_class_head.fit(tiny_gan.batches(num_classes=3), epochs=2, verbose=0,
                            callbacks=[AtomicBackupAndRestore(backup)])


def test_a_save_that_fails_keeps_the_previous_backup(tmp_path, monkeypatch):
    backup = str(tmp_path / "backup")
    gan = tiny_gan.compile_gan(tiny_gan.make_gan())
    gan.fit(tiny_gan.batches(), epochs=1, verbose=0, callbacks=[AtomicBackupAndRestore(backup)])
    saved = gan.d_optimizer.iterations.numpy()

    def torn_save(filepath, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"\x89HDF")
        raise KeyboardInterrupt

    monkeypatch.setattr(gan, "save_weights", torn_save)
    with pytest.raises(KeyboardInterrupt):
        gan.fit(tiny_gan.batches(), epochs=2, initial_epoch=1, verbose=0,
                callbacks=[AtomicBackupAndRestore(backup)])
    resumed = tiny_gan.compile_gan(tiny_gan.make_gan())
    resumed.fit(tiny_gan.batches(), epochs=1, verbose=0, callbacks=[AtomicBackupAndRestore(backup)])
    assert resumed.d_optimizer.iterations.numpy() == saved  # restored, nothing left to run
    assert sorted(os.listdir(backup)) == ["latest.weights.h5"]


@pytest.fixture
def policy(request):
    with precision.policy_scope(request.param):
        yield request.param


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"], indirect=True)
def test_mixed_precision_fit(policy):
    keras.utils.set_random_seed(0)
    gan = tiny_gan.compile_gan(tiny_gan.make_gan())
    scaled = isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaled == (policy == "mixed_float16")
    assert gan.generator.get_layer("up0_conv").compute_dtype == policy.split("_")[1]
    before = snapshot(gan.discriminator.trainable_variables)
    # Loss scaling skips the first float16 steps, whose gradients overflow.
    history = gan.fit(tiny_gan.batches(steps=4), verbose=0).history
    assert all(np.isfinite(values[0]) for values in history.values())
    assert all(variable.dtype == "float32" for variable in gan.weights)
    assert changed(before, gan.discriminator.trainable_variables)
    assert gan.generate(first_batch()["embedding"], seed=1).dtype == "float32"


def test_batches_without_the_gan_cls_keys_are_refused():
    gan = tiny_gan.compile_gan(tiny_gan.make_gan())
    batch = first_batch()
    del batch["wrong_embedding"]
    with pytest.raises(ValueError, match="missing \\['wrong_embedding'\\]"):
        gan.fit(tf.data.Dataset.from_tensors(batch), verbose=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"noise": "gaussian"}, "noise must be one of"),
    ({"int_beta": 1.5}, "int_beta must be in"),
    ({"num_classes": 2, "class_loss_weight": -1.0}, "class_loss_weight must be >= 0"),
    ({"noise_dim": 100}, "does not match the generator's noise input"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_gan.make_gan(**kwargs)


def test_incompatible_networks_are_refused():
    gan = tiny_gan.make_gan()
    wide_condition = Discriminator(
        image_size=tiny_gan.IMAGE_SIZE, ndf=4, condition_dim=16, condition_units=4)
    with pytest.raises(ValueError, match="length 8, the discriminator of length 16"):
        TextToImageGAN(gan.generator, wide_condition)
    larger_images = Discriminator(
        image_size=32, ndf=4, condition_dim=tiny_gan.CONDITION_DIM, condition_units=4)
    with pytest.raises(ValueError, match=r"images of shape \(16, 16, 3\)"):
        TextToImageGAN(gan.generator, larger_images)
    images = keras.Input((tiny_gan.IMAGE_SIZE, tiny_gan.IMAGE_SIZE, 3))
    condition = keras.Input((tiny_gan.CONDITION_DIM,))
    flat = keras.layers.Concatenate()([keras.layers.Flatten()(images), condition])
    plain = keras.Model([images, condition], keras.layers.Dense(1)(flat))
    with pytest.raises(ValueError, match="an `image_tower` and a `pair_head`"):
        TextToImageGAN(gan.generator, plain)
