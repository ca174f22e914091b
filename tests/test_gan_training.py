import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from sagan_tf import cli
from sagan_tf import config as config_lib
from sagan_tf.data import registry
from sagan_tf.training import gan_training
from sagan_tf.training.callbacks import ExactBackupAndRestore
from sagan_tf.workdir import Workdir
from tests.cli_runner import last_json, run
from tests.conftest import REPO
from tests.tiny_configs import TINY_DATA, TINY_ENCODER, TINY_GAN, overrides

ARGS = overrides(TINY_DATA, TINY_ENCODER, TINY_GAN)


@pytest.fixture(scope="module")
def encoder_workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("gan") / "run")
    assert cli.main(["train-encoder", "--workdir", workdir, "--quiet", *ARGS]) == 0
    return workdir


def _copy(workdir, tmp_path, name):
    target = str(tmp_path / name)
    shutil.copytree(workdir, target)
    return target


@pytest.fixture(scope="module")
def trained_workdir(encoder_workdir, tmp_path_factory):
    workdir = _copy(encoder_workdir, tmp_path_factory.mktemp("trained"), "run")
    assert cli.main(["train-gan", "--workdir", workdir, "--quiet"]) == 0
    return workdir


def test_train_gan_writes_checkpoints_samples_and_logs(trained_workdir):
    results = json.load(open(os.path.join(trained_workdir, "gan", "results.json")))
    assert results["optimizer_steps"] == 2 * 3
    # One fit() call and its two validation passes, where iterators are released, were
    # timed (figures, not a speed test).
    assert len(results["fit_end_seconds"]) == 1 and results["fit_end_seconds"][0] >= 0
    assert results["validation_start_seconds"]["passes"] == 2
    for key in ("d_loss", "g_loss", "d_real", "d_wrong", "d_fake", "val_d_loss"):
        assert np.isfinite(results["final"][key]), key
    checkpoints = os.listdir(os.path.join(trained_workdir, "gan", "checkpoints"))
    assert {"generator-latest.keras", "discriminator-latest.keras"} <= set(checkpoints)
    assert sorted(os.listdir(os.path.join(trained_workdir, "samples", "train"))) == \
        ["epoch_0001.png", "epoch_0002.png"]
    assert glob.glob(os.path.join(trained_workdir, "logs", "gan", "events.out.tfevents.*"))


def test_generate_is_deterministic_for_a_seed(trained_workdir, tmp_path, capsys):
    from sagan_tf.inference import TextToImage

    workdir = Workdir(trained_workdir)
    model = TextToImage.from_workdir(workdir, config_lib.load(workdir.config_path))
    captions = ["A small red circle on a blue background.", "A big green star at the top."]
    first = model.generate(captions, samples_per_caption=3, seed=7)
    assert first.shape == (2, 3, 16, 16, 3) and np.abs(first).max() <= 1
    np.testing.assert_array_equal(first, model.generate(captions, samples_per_caption=3, seed=7))
    assert not np.array_equal(first, model.generate(captions, samples_per_caption=3, seed=8))
    out = str(tmp_path / "grid.png")
    status, stdout, _ = run(capsys, "generate", "--workdir", trained_workdir, *captions, "--n", "3",
                            "--seed", "7", "--out", out, "--json")
    assert status == 0 and last_json(stdout) == {"out": out, "rows": 2, "columns": 3, "seed": 7}
    walk = str(tmp_path / "walk.png")
    status, stdout, _ = run(capsys, "generate", "--workdir", trained_workdir, "--interpolate", *captions,
                            "--n", "2", "--steps", "5", "--out", walk, "--json")
    assert status == 0 and last_json(stdout)["columns"] == 5 and os.path.getsize(walk) > 0


def test_generate_bad_input(trained_workdir, encoder_workdir, capsys):
    status, _, err = run(capsys, "generate", "--workdir", trained_workdir)
    assert status == 2 and "give captions, or --interpolate" in err
    status, _, err = run(capsys, "generate", "--workdir", trained_workdir, "x", "--interpolate", "a", "b")
    assert status == 2 and "(not both)" in err
    status, _, err = run(capsys, "generate", "--workdir", trained_workdir, "x", "--n", "65")
    assert status == 2 and "--n must be between 1 and 64" in err
    status, _, err = run(capsys, "generate", "--workdir", trained_workdir, "--interpolate", "a", "b",
                         "--steps", "65")
    assert status == 2 and "--steps between 2 and 64" in err
    status, _, err = run(capsys, "generate", "--workdir", trained_workdir, *["x"] * 65)
    assert status == 2 and "at most 64 captions" in err
    for network, kind in (("gan/checkpoints/discriminator-latest.keras", "Discriminator"),
                          ("encoder/encoder.keras", "TextEncoder")):
        status, _, err = run(capsys, "generate", "--workdir", trained_workdir, "x",
                             "--checkpoint", os.path.join(trained_workdir, network))
        assert status == 2 and f"holds a {kind}, not a generator" in err
    status, _, err = run(capsys, "generate", "--workdir", trained_workdir, "x", "--checkpoint", "/nope.keras")
    assert status == 2 and "no generator checkpoint at /nope.keras" in err
    status, _, err = run(capsys, "generate", "--workdir", encoder_workdir, "a caption")
    assert status == 2 and "train-gan" in err


def test_generate_draws_empty_and_unknown_captions_with_a_warning(trained_workdir, tmp_path, capsys):
    status, _, err = run(capsys, "generate", "--workdir", trained_workdir, "", "a zorgle circle ünïcödé",
                         "a red circle", "--n", "1", "--out", str(tmp_path / "odd.png"))
    assert status == 0 and os.path.isfile(tmp_path / "odd.png")
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: an empty caption draws a picture of nothing in particular",
                        "warning: 'a zorgle circle ünïcödé' has words the encoder never saw (read as unknown): "
                        "zorgle, ünïcödé"]


def test_train_gan_needs_an_encoder(tmp_path, capsys):
    status, _, err = run(capsys, "train-gan", "--workdir", str(tmp_path / "w"), *ARGS)
    assert status == 2 and "no trained text encoder" in err


def test_image_size_the_networks_cannot_make(encoder_workdir, tmp_path, capsys):
    workdir = _copy(encoder_workdir, tmp_path, "w48")
    status, _, err = run(capsys, "train-gan", "--workdir", workdir, "--set", "data.image_size=48")
    assert status == 2 and "data.image_size must be a power of two" in err
    # Refused before anything is written: the workdir keeps its config.
    assert "image_size: 16" in open(os.path.join(workdir, "config.yaml")).read()


def test_mixed_bfloat16_training_runs(encoder_workdir, tmp_path, capsys):
    workdir = _copy(encoder_workdir, tmp_path, "bf16")
    status, out, err = run(capsys, "train-gan", "--workdir", workdir, "--quiet", "--json",
                           "--set", "train.precision=mixed_bfloat16", "--set", "train.epochs=1")
    assert status == 0, err
    result = last_json(out)
    assert result["precision"] == result["precision_requested"] == "mixed_bfloat16"
    assert np.isfinite(result["final"]["d_loss"])
    import keras
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored afterwards


def test_a_diverged_run_stops_with_one_line_before_backing_up_the_diverged_step(encoder_workdir, tmp_path, capsys):
    workdir = _copy(encoder_workdir, tmp_path, "diverged")
    status, _, err = run(capsys, "train-gan", "--workdir", workdir, "--quiet", "--set", "train.learning_rate=1e8",
                         "--set", "train.backup_every_steps=1")
    assert status == 2 and "Traceback" not in err
    found = re.search(r"error: [dg]_loss became (nan|inf) at step (\d+) of epoch (\d+); training stopped", err)
    assert found, err
    # The backup, taken every step, holds the step before the broken one (the
    # end of the last epoch when it broke at an epoch's first step).
    step, epoch = int(found.group(2)), int(found.group(3))
    (backup_dir,) = glob.glob(os.path.join(workdir, "gan", "backup", "*", "worker_0"))
    assert ExactBackupAndRestore.resume_point(backup_dir) == (epoch - 1, step - 1)


def _metadata(workdir):
    """The training position of worker 0's backup, or None before the first one."""
    directories = glob.glob(os.path.join(workdir, "gan", "backup", "*", "worker_0"))
    return ExactBackupAndRestore.read_position(directories[0]) if directories else None


def test_killed_run_resumes_with_the_same_number_of_steps(encoder_workdir, tmp_path):
    workdir = _copy(encoder_workdir, tmp_path, "killed")
    steps, epochs = 8, 2
    command = [sys.executable, "-m", "sagan_tf", "train-gan", "--workdir", workdir, "--quiet", "--json",
               "--set", f"train.steps_per_epoch={steps}", "--set", f"train.epochs={epochs}",
               "--set", "train.backup_every_steps=1"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    killed_at = None
    while time.time() < deadline and process.poll() is None:
        metadata = _metadata(workdir)
        if metadata and metadata["steps_done"] >= 3:
            process.send_signal(signal.SIGKILL)
            killed_at = metadata
            break
        time.sleep(0.02)
    process.wait()
    assert killed_at is not None and process.returncode == -signal.SIGKILL
    finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    # Exactly the optimizer steps of an uninterrupted run: nothing replayed, nothing lost.
    assert result["optimizer_steps"] == steps * epochs
    assert _metadata(workdir) == {"epoch": epochs, "steps_done": 0}


class InterruptAt(keras.callbacks.Callback):
    """Raises KeyboardInterrupt, as Ctrl-C and SIGTERM do in train-gan, at one moment of one epoch."""

    def __init__(self, moment, epoch):
        super().__init__()
        self.moment, self.epoch, self.current = moment, epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch
        if self.moment == "epoch_begin" and epoch == self.epoch:
            raise KeyboardInterrupt

    def on_train_batch_end(self, batch, logs=None):
        if self.moment == "step" and self.current == self.epoch and batch == 1:
            raise KeyboardInterrupt

    def on_test_begin(self, logs=None):
        if self.moment == "validation" and self.current == self.epoch:
            raise KeyboardInterrupt

    def on_epoch_end(self, epoch, logs=None):
        if self.moment == "epoch_end" and epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.mark.parametrize("moment, epoch", [("validation", 0), ("epoch_end", 1)])
def test_a_run_interrupted_at_an_epochs_end_neither_repeats_nor_loses_it(encoder_workdir, tmp_path, moment, epoch):
    """Validation runs after the epoch's last step; checkpoints, samples and the log at its end."""
    workdir = Workdir(_copy(encoder_workdir, tmp_path, moment))
    config = config_lib.load(workdir.config_path, ["train.backup_every_steps=1"])
    dataset = registry.load_dataset(config.data, workdir.data_cache_dir(config))
    with pytest.raises(KeyboardInterrupt):
        gan_training.train_gan(workdir, config, dataset, verbose=0, extra_callbacks=[InterruptAt(moment, epoch)])
    result = gan_training.train_gan(workdir, config, dataset, verbose=0)
    assert result["optimizer_steps"] == config.train.epochs * config.train.steps_per_epoch
    assert result["final"]["d_loss"] == pytest.approx(result["final"]["d_loss"])  # recorded, not empty
    assert sorted(os.listdir(os.path.join(workdir.samples_dir, "train"))) == ["epoch_0001.png", "epoch_0002.png"]
    with open(os.path.join(workdir.gan_dir, "history.csv")) as f:
        epochs_logged = {int(line.split(",")[0]) for line in f.read().splitlines()[1:]}
    assert epochs_logged == {0, 1}


def _generator_weights(workdir):
    generator = keras.saving.load_model(workdir.latest_generator, compile=False)
    return [np.asarray(w) for w in generator.get_weights()]


@pytest.mark.parametrize("moment, epoch", [("step", 0), ("step", 1), ("epoch_begin", 1)])
def test_a_resumed_run_trains_on_the_data_an_uninterrupted_run_would(encoder_workdir, tmp_path, moment, epoch):
    """The same images, crops, captions and noise after a resume: the same generator."""
    generators = []
    for name, interrupt in [("whole", False), ("resumed", True)]:
        workdir = Workdir(_copy(encoder_workdir, tmp_path, name))
        config = config_lib.load(workdir.config_path, ["train.backup_every_steps=1", "data.augment=true"])
        dataset = registry.load_dataset(config.data, workdir.data_cache_dir(config))
        if interrupt:
            with pytest.raises(KeyboardInterrupt):
                gan_training.train_gan(workdir, config, dataset, verbose=0,
                                       extra_callbacks=[InterruptAt(moment, epoch)])
        gan_training.train_gan(workdir, config, dataset, verbose=0)
        generators.append(_generator_weights(workdir))
    whole, resumed = generators
    for a, b in zip(whole, resumed):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_sigterm_leaves_a_resumable_backup(encoder_workdir, tmp_path):
    workdir = _copy(encoder_workdir, tmp_path, "term")
    command = [sys.executable, "-m", "sagan_tf", "train-gan", "--workdir", workdir, "--quiet",
               "--set", "train.steps_per_epoch=50", "--set", "train.epochs=1",
               "--set", "train.backup_every_steps=1"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        metadata = _metadata(workdir)
        if metadata and metadata["steps_done"] >= 2:
            process.send_signal(signal.SIGTERM)
            break
        time.sleep(0.02)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "interrupted" in err
    metadata = _metadata(workdir)
    assert metadata["epoch"] == 0 and 2 <= metadata["steps_done"] < 50


def test_class_loss_trains_end_to_end_with_the_automatic_precision(encoder_workdir, tmp_path, capsys):
    from sagan_tf.training import precision

    workdir = _copy(encoder_workdir, tmp_path, "tac")
    status, out, err = run(capsys, "train-gan", "--workdir", workdir, "--quiet", "--json",
                           "--set", "gan.class_loss_weight=1.0", "--set", "train.epochs=1",
                           "--set", "train.precision=auto")
    assert status == 0, err
    result = last_json(out)
    assert result["precision_requested"] == "auto"
    assert result["precision"] == precision.resolve("auto") in ("float32", "mixed_bfloat16", "mixed_float16")
    final = result["final"]
    assert 0.0 <= final["real_class_accuracy"] <= 1.0 and 0.0 <= final["fake_class_accuracy"] <= 1.0
    import keras
    discriminator = keras.saving.load_model(
        os.path.join(workdir, "gan", "checkpoints", "discriminator-latest.keras"))
    assert discriminator.num_classes == 60 and discriminator.outputs[1].shape == (None, 60)


def test_class_loss_needs_classes():
    from sagan_tf import config as config_module
    from sagan_tf.data.records import CaptionedDataset, Example
    config = config_module.load(None, ["gan.class_loss_weight=1.0"])
    unlabelled = CaptionedDataset(name="folder", class_names=[], splits={
        "train": [Example("a", ["a bird"]), Example("b", ["a red bird"])], "validation": [], "test": []})
    with pytest.raises(ValueError, match="needs a class for every training image"):
        gan_training.class_count(config, unlabelled)
    config.gan.class_loss_weight = 0.0
    assert gan_training.class_count(config, unlabelled) == 0


def test_iterator_release_clock_times_the_gap_before_each_validation_pass():
    from sagan_tf.training.callbacks import IteratorReleaseClock
    clock = IteratorReleaseClock()
    assert clock.seconds_since_last_epoch() is None
    clock.on_train_batch_end(0)
    time.sleep(0.05)  # the release of the previous pass's iterator
    clock.on_test_begin()
    clock.on_test_begin()  # an evaluate() outside fit's epochs adds nothing
    clock.on_epoch_end(0)
    time.sleep(0.02)
    assert len(clock.validation_starts) == 1 and clock.validation_starts[0] >= 0.05
    assert clock.seconds_since_last_epoch() >= 0.02


def test_a_trained_gan_is_never_overwritten_or_orphaned(trained_workdir, tmp_path, capsys):
    workdir = _copy(trained_workdir, tmp_path, "guarded")
    generator = os.path.join(workdir, "gan", "checkpoints", "generator-latest.keras")
    encoder = os.path.join(workdir, "encoder", "encoder.keras")
    before = {path: open(path, "rb").read() for path in (generator, encoder)}
    # Another learning rate is another run: it would overwrite the generator.
    status, _, err = run(capsys, "train-gan", "--workdir", workdir, "--quiet", "--set", "train.learning_rate=1e-3")
    assert status == 2 and "holds a generator from another run" in err
    # Retraining the encoder under other settings would leave the GAN without its encoder.
    status, _, err = run(capsys, "train-encoder", "--workdir", workdir, "--quiet",
                         "--set", "encoder_train.learning_rate=1e-2")
    assert status == 2 and "holds a GAN trained on the encoder" in err and "data.cache_dir=" in err
    assert {path: open(path, "rb").read() for path in before} == before
    # The same settings again: nothing to train, and the recorded results stay.
    results = json.load(open(os.path.join(workdir, "gan", "results.json")))
    status, out, _ = run(capsys, "train-gan", "--workdir", workdir, "--quiet", "--json")
    assert status == 0 and "has trained its 2 epochs already" in out
    assert last_json(out) == results and results["final"]
    # Without its backup (deleted to save space) a finished run is still finished, but cannot go on.
    without_backup = _copy(workdir, tmp_path, "without_backup")
    shutil.rmtree(os.path.join(without_backup, "gan", "backup"))
    status, out, _ = run(capsys, "train-gan", "--workdir", without_backup, "--quiet", "--json")
    assert status == 0 and last_json(out) == results
    status, _, err = run(capsys, "train-gan", "--workdir", without_backup, "--quiet", "--set", "train.epochs=3")
    assert status == 2 and "its backup is gone" in err and "optimizer state" in err
    assert open(os.path.join(without_backup, "gan", "checkpoints", "generator-latest.keras"), "rb").read() == \
        before[generator]
    # More epochs continue the run: 2 x 3 optimizer steps done, 3 more.
    status, out, err = run(capsys, "train-gan", "--workdir", workdir, "--quiet", "--json", "--set", "train.epochs=3")
    assert status == 0, err
    assert last_json(out)["optimizer_steps"] == 3 * 3
    # An extension to 4 epochs cut short, then the finished length asked again: the results stay.
    results = json.load(open(os.path.join(workdir, "gan", "results.json")))
    config = config_lib.load(os.path.join(workdir, "config.yaml"), ["train.epochs=4", "train.backup_every_steps=1"])
    dataset = registry.load_dataset(config.data, Workdir(workdir).data_cache_dir(config))
    with pytest.raises(KeyboardInterrupt):
        gan_training.train_gan(Workdir(workdir), config, dataset, verbose=0,
                               extra_callbacks=[InterruptAt("validation", 3)])
    status, out, _ = run(capsys, "train-gan", "--workdir", workdir, "--quiet", "--json", "--set", "train.epochs=3")
    assert status == 0 and "a run towards more epochs stopped in epoch 4" in out
    assert last_json(out) == results


def test_an_interrupted_run_does_not_resume_over_another_runs_generator(encoder_workdir, tmp_path, capsys):
    workdir = Workdir(_copy(encoder_workdir, tmp_path, "two_runs"))
    config = config_lib.load(workdir.config_path, ["train.learning_rate=1e-3", "train.backup_every_steps=1"])
    dataset = registry.load_dataset(config.data, workdir.data_cache_dir(config))
    with pytest.raises(KeyboardInterrupt):  # run A stops in its first epoch, before any generator
        gan_training.train_gan(workdir, config, dataset, verbose=0, extra_callbacks=[InterruptAt("validation", 0)])
    status, _, err = run(capsys, "train-gan", "--workdir", workdir.path, "--quiet",
                         "--set", "train.learning_rate=2e-4")  # run B finishes
    assert status == 0, err
    finished = open(workdir.latest_generator, "rb").read()
    status, _, err = run(capsys, "train-gan", "--workdir", workdir.path, "--quiet",
                         "--set", "train.learning_rate=1e-3")  # run A again, from its backup
    assert status == 2 and "holds a generator from another run" in err and "this run would overwrite it" in err
    assert open(workdir.latest_generator, "rb").read() == finished


def test_a_generator_is_not_used_with_an_encoder_it_was_not_trained_on(trained_workdir, tmp_path, capsys):
    workdir = _copy(trained_workdir, tmp_path, "retrained")
    trained_on = os.path.join(workdir, "gan", "trained_on.json")
    record = json.load(open(trained_on))
    assert record["encoder_id"] == json.load(open(os.path.join(workdir, "encoder", "encoder.json")))["encoder_id"]
    # As if the encoder had been retrained after the GAN (by hand: the CLI refuses to).
    json.dump({**record, "encoder_id": "another"}, open(trained_on, "w"))
    for command in (["generate", "a caption"], ["export", "--format", "tflite"]):
        status, _, err = run(capsys, *command, "--workdir", workdir)
        assert status == 2 and "trained on another text encoder" in err, command
    # The record travels with the generator: one named from another workdir is checked against it too.
    status, _, err = run(capsys, "generate", "a caption", "--workdir", trained_workdir,
                         "--checkpoint", os.path.join(workdir, "gan", "checkpoints", "generator-latest.keras"))
    assert status == 2 and "was trained on another text encoder than the one in" in err and "says so" in err
    status, _, _ = run(capsys, "generate", "a caption", "--workdir", workdir, "--out", str(tmp_path / "g.png"),
                       "--checkpoint", os.path.join(trained_workdir, "gan", "checkpoints", "generator-latest.keras"))
    assert status == 0  # the other workdir's generator was trained on this (copied) encoder


def test_a_generator_gets_the_noise_it_was_trained_on(trained_workdir, tmp_path, capsys):
    assert json.load(open(os.path.join(trained_workdir, "gan", "trained_on.json")))["noise"] == "normal"
    for command in (["generate", "a caption"], ["export", "--format", "tflite"],
                    ["export", "--format", "savedmodel", "--out", str(tmp_path / "served")]):
        status, _, err = run(capsys, *command, "--workdir", trained_workdir, "--set", "gan.noise=uniform")
        assert status == 2 and "was trained on gan.noise=normal; gan.noise=uniform would feed it" in err, command
    assert not (tmp_path / "served").exists()


def test_the_training_seed_fixes_the_initial_networks():
    def initial_weights(seed):
        config = config_lib.load(None, [*TINY_GAN, "data.image_size=16", f"train.seed={seed}"])
        gan = gan_training.build_gan(config, 16, tf.distribute.get_strategy())
        return [np.asarray(w) for w in gan.generator.weights + gan.discriminator.weights]

    first, again, other = initial_weights(0), initial_weights(0), initial_weights(1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))
