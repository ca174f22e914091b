import csv
import glob
import json
import os

import numpy as np
import pytest

from sagan_tf import cli
from sagan_tf import config as config_lib
from tests.cli_runner import run
from sagan_tf.text.tokenizer import VocabularyMismatchError
from sagan_tf.training import encoder_training
from sagan_tf.workdir import Workdir
from tests.tiny_configs import TINY_DATA, TINY_ENCODER, overrides


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("enc") / "run")
    assert cli.main(["train-encoder", "--workdir", workdir, "--quiet", "--json",
                     *overrides(TINY_DATA, TINY_ENCODER), "--set", "encoder_train.lr_decay_patience=1"]) == 0
    return workdir


def test_train_encoder_saves_encoder_vocab_and_cache(trained_workdir):
    encoder_dir = os.path.join(trained_workdir, "encoder")
    (run,) = os.listdir(os.path.join(encoder_dir, "backup"))
    for name in ("encoder.keras", "encoder.json", "vocab.txt", "tokenizer.json",
                 "results.json", "sentence_vectors-train.npz", f"best/{run}.weights.h5"):
        assert os.path.exists(os.path.join(encoder_dir, name)), name
    assert os.listdir(os.path.join(trained_workdir, "logs", "encoder", run))  # TensorBoard
    results = json.load(open(os.path.join(encoder_dir, "results.json")))
    assert results["history"] == os.path.join(encoder_dir, "history", f"{run}.csv")
    assert results["epochs_run"] == 2 and 0 <= results["val_accuracy"] <= 1
    # Early stopping keeps the best epoch: the reported accuracy is that epoch's.
    with open(results["history"]) as f:
        rows = list(csv.DictReader(f))
    assert results["val_accuracy"] == pytest.approx(max(float(row["val_accuracy"]) for row in rows), abs=1e-6)
    # The learning-rate schedule ran and logged its rate.
    assert "learning_rate" in rows[0]
    assert results["colour_swap_pairs"] > 0 and 0 <= results["colour_swap_pair_accuracy"] <= 1


def test_load_frozen_encoder_and_cached_vectors_agree(trained_workdir):
    workdir = Workdir(trained_workdir)
    encoder, tokenizer = encoder_training.load_frozen_encoder(workdir)
    assert not encoder.trainable and encoder.output_dim == 16
    with np.load(os.path.join(workdir.encoder_dir, "sentence_vectors-validation.npz")) as cache:
        cached = cache["vectors"]
    from sagan_tf.data import registry
    from sagan_tf import config as config_lib
    config = config_lib.load(workdir.config_path)
    dataset = registry.load_dataset(config.data, workdir.data_cache_dir(config))
    again = encoder_training.cached_sentence_vectors(
        workdir, encoder, tokenizer, dataset.splits["validation"], "validation")
    np.testing.assert_allclose(again, cached, atol=1e-6)
    assert cached.shape == (3 * len(dataset.splits["validation"]), 16)


def test_resumed_run_continues_from_its_backup(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    args = ["train-encoder", "--workdir", workdir, "--quiet", *overrides(TINY_DATA, TINY_ENCODER)]
    assert cli.main(args + ["--set", "encoder_train.epochs=1"]) == 0
    # A finished run's backup says epoch 1; asking for 3 runs only 2 more.
    assert cli.main(args + ["--set", "encoder_train.epochs=3"]) == 0
    (history,) = glob.glob(os.path.join(workdir, "encoder", "history", "*.csv"))
    lines = open(history).read().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["0", "1", "2"]


def test_a_finished_run_is_kept_and_other_settings_train_afresh(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    args = ["train-encoder", "--workdir", workdir, "--quiet", *overrides(TINY_DATA, TINY_ENCODER)]
    assert cli.main(args) == 0
    encoder_file = os.path.join(workdir, "encoder", "encoder.keras")
    trained = open(encoder_file, "rb").read()
    # The same settings again: nothing to do, nothing rewritten.
    status, out, _ = run(capsys, *args, "--json")
    assert status == 0 and "already trained with these settings" in out
    assert open(encoder_file, "rb").read() == trained
    (history,) = glob.glob(os.path.join(workdir, "encoder", "history", "*.csv"))
    assert len(open(history).read().splitlines()) == 1 + 2
    # Another learning rate is another run, with its own backup and log, from epoch 0;
    # with a learning-rate schedule it logs one more column, under its own header.
    assert cli.main(args + ["--set", "encoder_train.learning_rate=0.01",
                            "--set", "encoder_train.lr_decay_patience=1"]) == 0
    assert len(os.listdir(os.path.join(workdir, "encoder", "backup"))) == 2
    histories = sorted(glob.glob(os.path.join(workdir, "encoder", "history", "*.csv")))
    assert len(histories) == 2
    for path in histories:
        with open(path) as f:
            rows = list(csv.DictReader(f))
        assert [row["epoch"] for row in rows] == ["0", "1"] and None not in rows[0]


def test_the_best_epoch_is_kept_across_resumes_and_runs_are_told_apart(tmp_path):
    import keras
    from sagan_tf.training.callbacks import KeepBest

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    path = str(tmp_path / "best.weights.h5")

    def epochs(keeper, scores, first_epoch=0):
        keeper.set_model(model)
        keeper.on_train_begin()
        kept = {}
        for epoch, score in enumerate(scores, start=first_epoch):
            model.layers[0].kernel.assign(np.full((2, 1), float(epoch), np.float32))
            keeper.on_epoch_end(epoch, {"val_accuracy": score})
            kept[epoch] = model.get_weights()
        return kept

    weights = epochs(KeepBest(path, "run-a"), [0.5, 0.7, 0.6])
    # Resumed (a new fit(), a new callback): a worse epoch does not replace the best of before.
    resumed = KeepBest(path, "run-a")
    epochs(resumed, [0.65], first_epoch=3)
    assert resumed.restore() == 1
    np.testing.assert_array_equal(model.get_weights()[0], weights[1][0])
    # A finished run resumed runs no epoch and still ends on its best one.
    finished = KeepBest(path, "run-a")
    epochs(finished, [])
    assert finished.restore() == 1
    # A file holding another run's best is not taken for this run's (the encoder keeps one file per run).
    other = KeepBest(path, "run-b")
    assert other.recorded() is None
    epochs(other, [0.1])
    assert other.restore() == 0 and KeepBest(path, "run-a").recorded() is None


def test_a_finished_run_resumed_under_another_patience_keeps_its_encoder(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    args = ["train-encoder", "--workdir", workdir, "--quiet", "--json", *overrides(TINY_DATA, TINY_ENCODER),
            "--set", "encoder_train.epochs=8", "--set", "encoder_train.learning_rate=0.02",
            "--set", "encoder_train.patience=20", "--set", "encoder_train.cache_embeddings=false"]
    status, out, _ = run(capsys, *args)
    first = json.loads(out.strip().splitlines()[-1])
    assert first["best_epoch"] < first["epochs_trained"] == 8  # these settings' best is not the last epoch
    metadata = json.load(open(os.path.join(workdir, "encoder", "encoder.json")))
    # patience is not part of the backup's name: this resumes the finished run, which has no epoch left.
    status, out, _ = run(capsys, *args, "--set", "encoder_train.patience=1")
    assert status == 0
    again = json.loads(out.strip().splitlines()[-1])
    assert again["epochs_run"] == 0 and again["epochs_trained"] == 8
    assert again["best_epoch"] == first["best_epoch"] and again["val_accuracy"] == first["val_accuracy"]
    assert json.load(open(os.path.join(workdir, "encoder", "encoder.json")))["encoder_id"] == metadata["encoder_id"]


def test_a_run_stopped_under_another_vocabulary_leaves_the_saved_encoder_usable(tmp_path, capsys):
    import keras

    class StopAtFirstEpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise KeyboardInterrupt

    workdir = Workdir(str(tmp_path / "run"))
    assert cli.main(["train-encoder", "--workdir", workdir.path, "--quiet", *overrides(TINY_DATA, TINY_ENCODER)]) == 0
    vocabulary = open(os.path.join(workdir.encoder_dir, "vocab.txt")).read()
    config = config_lib.load(workdir.config_path, ["data.max_length=5", "data.min_word_count=3"])
    from sagan_tf.data import registry
    dataset = registry.load_dataset(config.data, workdir.data_cache_dir(config))
    with pytest.raises(KeyboardInterrupt):
        encoder_training.train_encoder(workdir, config, dataset, verbose=0, extra_callbacks=[StopAtFirstEpochEnd()])
    assert open(os.path.join(workdir.encoder_dir, "vocab.txt")).read() == vocabulary
    encoder_training.load_frozen_encoder(workdir)  # still the encoder and the vocabulary it was trained on
    status, _, err = run(capsys, "attention", "--workdir", workdir.path, "a red circle", "--json")
    assert status == 0, err


def test_attention_command_writes_png_and_weights(trained_workdir, tmp_path, capsys):
    out = str(tmp_path / "att.png")
    status, stdout, _ = run(capsys, "attention", "--workdir", trained_workdir, "--json", "--out", out,
                            "A small red circle on a blue background.")
    assert status == 0 and open(out, "rb").read(4) == b"\x89PNG"
    result = json.loads(stdout.strip().splitlines()[-1])
    weights = np.array(result["attention"])
    assert weights.shape == (4, len(result["words"]))
    assert result["words"][0] == "<start>" and result["words"][-1] == "<end>"
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-4)
    assert all(len(repr(w).split(".")[-1]) <= 5 for row in result["attention"] for w in row)  # 5 places


def test_awkward_captions_do_not_crash_attention(trained_workdir, tmp_path, capsys):
    for caption in ("", "zzzz qqqq", "Ünïcödé ☃ red", "red " * 200):
        status, _, err = run(capsys, "attention", "--workdir", trained_workdir, "--out",
                             str(tmp_path / "a.png"), caption)
        assert status == 0, err


def test_commands_need_a_trained_encoder(tmp_path, capsys):
    status, _, err = run(capsys, "attention", "--workdir", str(tmp_path / "empty"), "a caption")
    assert status == 2 and "no trained text encoder" in err and "train-encoder" in err


def test_other_vocabulary_is_refused(trained_workdir, tmp_path, capsys):
    import shutil
    copy = str(tmp_path / "copy")
    shutil.copytree(trained_workdir, copy)
    vocab = os.path.join(copy, "encoder", "vocab.txt")
    lines = open(vocab).read().splitlines()
    lines[5], lines[6] = lines[6], lines[5]
    open(vocab, "w").write("\n".join(lines) + "\n")
    with pytest.raises(VocabularyMismatchError):
        encoder_training.load_frozen_encoder(Workdir(copy))
    status, _, err = run(capsys, "attention", "--workdir", copy, "a caption")
    assert status == 2 and "another vocabulary" in err


def test_baseline_kind_has_no_attention_map(tmp_path, capsys):
    workdir = str(tmp_path / "mean")
    assert cli.main(["train-encoder", "--workdir", workdir, "--quiet", "--set", "encoder.kind=mean",
                     "--set", "encoder_train.epochs=1", *overrides(TINY_DATA, TINY_ENCODER[:-2])]) == 0
    status, _, err = run(capsys, "attention", "--workdir", workdir, "a caption")
    assert status == 2 and "no attention" in err


def test_captions_only_training(tmp_path):
    fixture = os.path.join(os.path.dirname(__file__), "fixtures", "cub_real")
    workdir = str(tmp_path / "cub")
    assert cli.main(["train-encoder", "--workdir", workdir, "--quiet", "--set", "data.name=cub",
                     "--set", f"data.root={fixture}", "--set", "data.split=image",
                     "--set", "data.captions_only=true", *overrides(TINY_ENCODER)]) == 0
    results = json.load(open(os.path.join(workdir, "encoder", "results.json")))
    assert results["epochs_run"] == 2
    assert not os.path.exists(os.path.join(workdir, "encoder", "sentence_vectors-train.npz"))


def test_tuner_runs_two_trials_and_writes_a_usable_config(tmp_path, capsys):
    workdir = str(tmp_path / "tune")
    args = ["tune", "--workdir", workdir, "--max-trials", "2", "--epochs", "1", "--quiet", "--json",
            *overrides(TINY_DATA, TINY_ENCODER)]
    status, out, err = run(capsys, *args)
    assert status == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert len(result["trials"]) == 2 and "hops" in out and "learning_rate" in out
    assert result["best"]["hops"] in (1, 2, 4, 8, 16, 30)
    # Resuming the finished search runs no new trial.
    status, out, _ = run(capsys, *args)
    assert len(json.loads(out.strip().splitlines()[-1])["trials"]) == 2
    # The search trains none of the workdir's models: it leaves no config or encoder there.
    assert sorted(os.listdir(workdir)) == ["data", "tune"]
    # Seeded: the same settings in another workdir try the same points.
    status, out, _ = run(capsys, *[str(tmp_path / "again") if a == workdir else a for a in args])
    assert [t["hops"] for t in json.loads(out.strip().splitlines()[-1])["trials"]] == \
        [t["hops"] for t in result["trials"]]
    assert [t["learning_rate"] for t in json.loads(out.strip().splitlines()[-1])["trials"]] == \
        [t["learning_rate"] for t in result["trials"]]
    # The best settings train.
    status, out, err = run(capsys, "train-encoder", "--config", result["config"], "--workdir",
                           str(tmp_path / "best"), "--quiet", "--json", "--set", "encoder_train.epochs=1")
    assert status == 0, err
    assert json.loads(out.strip().splitlines()[-1])["kind"] == "self_attention"


def test_own_images_without_classes_txt_get_told_to_add_one(tmp_path, capsys):
    root = tmp_path / "mine"
    for index in range(12):
        (root / "captions").mkdir(parents=True, exist_ok=True)
        (root / "captions" / f"p{index}.txt").write_text(f"a picture number {index}\n")
    status, _, err = run(capsys, "train-encoder", "--workdir", str(tmp_path / "w"), "--quiet",
                         "--set", "data.name=folder", "--set", f"data.root={root}",
                         "--set", "data.captions_only=true")
    assert status == 2 and "needs at least two classes" in err and "classes.txt" in err


def test_captions_added_to_own_data_are_trained_on_not_called_already_trained(tmp_path, capsys):
    root = tmp_path / "mine"
    (root / "captions").mkdir(parents=True)

    def add(first, last):
        for index in range(first, last):
            colour = ("red", "blue")[index % 2]
            (root / "captions" / f"p{index}.txt").write_text(f"a {colour} thing number {index}\n")
        (root / "classes.txt").write_text("".join(f"p{i} {('red', 'blue')[i % 2]}\n" for i in range(last)))

    add(0, 40)
    args = ["train-encoder", "--workdir", str(tmp_path / "w"), "--quiet", "--set", "data.name=folder",
            "--set", f"data.root={root}", "--set", "data.captions_only=true", "--set", "encoder_train.epochs=1",
            *overrides(TINY_ENCODER[:-2])]
    assert run(capsys, *args)[0] == 0
    status, out, _ = run(capsys, *args)
    assert status == 0 and "already trained" in out
    add(40, 60)  # the same config, more captions
    status, out, _ = run(capsys, *args)
    assert status == 0 and "already trained" not in out
    assert len(os.listdir(tmp_path / "w" / "encoder" / "backup")) == 2  # a run of its own


def test_hyperband_says_when_its_brackets_hold_fewer_trials_than_asked(tmp_path, capsys):
    status, out, err = run(capsys, "tune", "--workdir", str(tmp_path / "hb"), "--algorithm", "hyperband",
                           "--max-trials", "3", "--epochs", "1", "--quiet", "--json",
                           *overrides(TINY_DATA, TINY_ENCODER))
    assert status == 0, err
    trials = len(json.loads(out.strip().splitlines()[-1])["trials"])
    assert trials < 3 and f"ended after {trials} of 3 trials" in out
    assert any(name.startswith("hyperband-") for name in os.listdir(tmp_path / "hb" / "tune"))


def test_a_search_is_named_by_what_it_leaves_fixed(tiny_shapes):
    import dataclasses

    from sagan_tf.training.tuning import search_name

    config = config_lib.load(None)
    name = search_name(config, tiny_shapes, "random", 5)
    assert name.startswith("random-")
    assert search_name(config, tiny_shapes, "hyperband", 5).startswith("hyperband-")
    assert search_name(config, tiny_shapes, "random", 6) != name  # epochs per trial
    fewer = dataclasses.replace(tiny_shapes, splits={**tiny_shapes.splits,
                                                     "train": tiny_shapes.splits["train"][:-1]})
    assert search_name(config, fewer, "random", 5) != name  # the same config, other examples
    for key, value in (("data.num_images", 300), ("encoder.lstm_units", 32),
                       ("encoder_train.batch_size", 16)):
        assert search_name(config_lib.load(None, [f"{key}={value}"]), tiny_shapes, "random", 5) != name, key
    # What the search sets itself does not start another search.
    for key, value in (("encoder.hops", 4), ("encoder.attention_units", 64), ("encoder.penalty_weight", 0.0),
                       ("encoder_train.learning_rate", 0.01), ("encoder_train.epochs", 99)):
        assert search_name(config_lib.load(None, [f"{key}={value}"]), tiny_shapes, "random", 5) == name, key


def test_tuner_refuses_trials_of_no_epochs():
    from sagan_tf.training import tuning

    with pytest.raises(ValueError, match="epochs per trial must be at least 1, got -1"):
        tuning.search(None, None, None, max_trials=1, epochs=-1)


def test_auxiliary_attribute_heads_train_and_keep_the_interface(tmp_path):
    workdir = str(tmp_path / "aux")
    assert cli.main(["train-encoder", "--workdir", workdir, "--quiet", "--set", "encoder_train.epochs=1",
                     "--set", "encoder_train.auxiliary_attributes=true", *overrides(TINY_DATA, TINY_ENCODER[:-2])]) == 0
    results = json.load(open(os.path.join(workdir, "encoder", "results.json")))
    assert 0 <= results["val_accuracy"] <= 1 and results["colour_swap_pairs"] > 0
    encoder, _ = encoder_training.load_frozen_encoder(Workdir(workdir))
    assert encoder.output_dim == 16
    # The trained classifier carries a head per auxiliary attribute: background, size, position.
    import h5py
    kernels = {}
    (best,) = glob.glob(os.path.join(workdir, "encoder", "best", "*.weights.h5"))
    with h5py.File(best) as weights:
        weights.visititems(lambda name, item: kernels.update({name: item.shape})
                           if "auxiliary_logits" in name and name.endswith("vars/0") else None)
    assert sorted(shape[-1] for shape in kernels.values()) == sorted(
        len(values) for values in encoder_training.AUXILIARY_ATTRIBUTES.values())


def test_auxiliary_labels_line_up_with_captions(tiny_shapes):
    from sagan_tf.data import shapes_grammar as grammar
    from sagan_tf.text.tokenizer import CaptionTokenizer
    examples = tiny_shapes.splits["train"][:5]
    tokenizer = CaptionTokenizer.adapt([c for e in examples for c in e.captions], max_length=30)
    ids, labels = encoder_training.caption_arrays(tokenizer, examples, auxiliary=True)
    assert labels.shape == (15, 4) and ids.shape == (15, 30)
    captions = [c for e in examples for c in e.captions]
    for caption, (label, background, size, position) in zip(captions, labels):
        parsed = grammar.parse_caption(caption)
        assert label == examples[0].label if caption in examples[0].captions else True
        assert grammar.COLORS[background] == parsed["background"]
        assert grammar.SIZES[size] == parsed["size"] and grammar.POSITIONS[position] == parsed["position"]


def test_weight_decay_shrinks_weights_the_loss_does_not_touch():
    import keras
    weights = keras.Variable(np.ones((3,), np.float32))
    for decay, expected in ((0.0, 1.0), (0.1, 1.0 - 0.01 * 0.1)):
        model = keras.Sequential([keras.layers.Dense(1)])
        encoder_training.compile_classifier(model, learning_rate=0.01, weight_decay=decay)
        weights.assign(np.ones((3,), np.float32))
        # A zero gradient: only the decoupled decay moves the weights.
        model.optimizer.apply_gradients([(np.zeros((3,), np.float32), weights)])
        np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-6)


def test_learning_rate_is_cut_to_a_third_when_validation_accuracy_stalls():
    import keras

    from sagan_tf.config import EncoderTrainConfig
    assert encoder_training.learning_rate_schedule(EncoderTrainConfig()) == []  # off by default
    (schedule,) = encoder_training.learning_rate_schedule(EncoderTrainConfig(lr_decay_patience=2))
    model = keras.Sequential([keras.layers.Dense(1)])
    encoder_training.compile_classifier(model, learning_rate=0.09)
    schedule.set_model(model)
    schedule.on_train_begin()
    rates = []
    for epoch, val_accuracy in enumerate([0.5, 0.6, 0.6, 0.6, 0.55, 0.7]):
        schedule.on_epoch_end(epoch, {"val_accuracy": val_accuracy})
        rates.append(float(model.optimizer.learning_rate))
    # Two epochs without a better 0.6 cut the rate; a new best (0.7) does not.
    np.testing.assert_allclose(rates, [0.09, 0.09, 0.09, 0.03, 0.03, 0.03], rtol=1e-6)


def test_cosine_decay_anneals_the_rate_to_zero_over_the_run():
    import keras

    from sagan_tf.config import EncoderTrainConfig
    assert encoder_training.cosine_decay_steps(EncoderTrainConfig(), 1000) == 0  # off by default
    train_config = EncoderTrainConfig(cosine_decay=True, epochs=3, batch_size=64)
    steps = encoder_training.cosine_decay_steps(train_config, 130)  # 3 batches per epoch
    assert steps == 9 and encoder_training.cosine_decay_steps(train_config, 130, epochs=5) == 15
    model = keras.Sequential([keras.layers.Dense(1)])
    encoder_training.compile_classifier(model, learning_rate=0.02, decay_steps=steps)
    rates = []
    for step in (0, 3, 9):
        model.optimizer.iterations.assign(step)
        rates.append(float(model.optimizer.learning_rate))
    # lr · (1 + cos(π t / T)) / 2: full rate, three quarters, zero.
    np.testing.assert_allclose(rates, [0.02, 0.02 * (1 + np.cos(np.pi / 3)) / 2, 0.0], atol=1e-8)


def test_tuner_trials_use_the_configured_weight_decay_and_label_smoothing(tiny_shapes):
    import keras_tuner as kt

    from sagan_tf.config import Config
    from sagan_tf.training.tuning import EncoderHyperModel
    config = Config()
    config.encoder.embedding_dim = config.encoder.lstm_units = 8
    config.encoder_train.weight_decay = 0.2
    config.encoder_train.label_smoothing = 0.1
    classifier = EncoderHyperModel(config, tiny_shapes, vocab_size=20).build(kt.HyperParameters())
    assert classifier.optimizer.weight_decay == pytest.approx(0.2)
    assert classifier.label_smoothing == pytest.approx(0.1)
    annealed = EncoderHyperModel(config, tiny_shapes, vocab_size=20, decay_steps=40).build(kt.HyperParameters())
    annealed.optimizer.iterations.assign(40)  # the end of the search's epoch budget
    assert float(annealed.optimizer.learning_rate) == pytest.approx(0.0, abs=1e-9)
    assert float(classifier.optimizer.learning_rate) > 0  # constant without it
