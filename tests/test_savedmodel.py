import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from sagan_tf import cli
from sagan_tf.deploy import savedmodel
from sagan_tf.models.gan import sample_noise
from tests.deploy_fixture import (  # noqa: F401  (pytest fixtures)
    AWKWARD_CAPTIONS, CAPTIONS, IMAGE_SIZE, MAX_BATCH, MAX_LENGTH, NOISE_DIM, keras_images,
    load_models, savedmodel_export, tiny_workdir)

SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
SAGAN_TF = os.path.join(os.path.dirname(sys.executable), "sagan-tf")


@pytest.fixture(scope="module")
def loaded(savedmodel_export):
    return tf.saved_model.load(savedmodel_export["path"])


def strings(captions):
    return tf.constant(captions, tf.string)


def test_export_writes_the_next_version_and_never_overwrites(tiny_workdir, savedmodel_export):
    workdir, _ = tiny_workdir
    first = savedmodel_export["path"]
    base = os.path.dirname(first)
    assert savedmodel_export["version"] == 1 and os.path.basename(first) == "1"
    assert base == workdir.join("export", "text2image")
    pb_before = open(os.path.join(first, "saved_model.pb"), "rb").read()

    # The installed command in a fresh process, as a user runs it.
    run = subprocess.run([SAGAN_TF, "export", "--workdir", workdir.path, "--format", "savedmodel", "--json"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["version"] == 2 and result["path"] == os.path.join(base, "2")
    assert open(os.path.join(first, "saved_model.pb"), "rb").read() == pb_before
    # Only integer versions are left: no staging folder a server could trip on.
    assert sorted(os.listdir(base)) == ["1", "2"]
    for version in ("1", "2"):
        assert os.listdir(os.path.join(base, version, "assets")) == ["vocab.txt"]
        # Readable by a server running as another user (staging folders start private).
        assert os.stat(os.path.join(base, version)).st_mode & 0o777 == 0o755


def test_next_version_counts_only_integer_names(tmp_path):
    assert savedmodel.next_version(str(tmp_path / "missing")) == 1
    for name in ("1", "3", "latest", ".4-staging", "²"):
        (tmp_path / name).mkdir()
    assert savedmodel.next_version(str(tmp_path)) == 4


def test_export_refuses_a_folder_that_is_not_a_models_folder(tiny_workdir, tmp_path, capsys):
    workdir, _ = tiny_workdir
    encoder_files = sorted(os.listdir(workdir.encoder_dir))
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    versions_and_a_file = tmp_path / "model"
    (versions_and_a_file / "1").mkdir(parents=True)
    (versions_and_a_file / "7").write_text("not a version folder")
    for out, message in ((workdir.encoder_dir, "holds more than version folders (encoder.json"),
                         (str(a_file), "is a file"),
                         (str(versions_and_a_file), "holds more than version folders (7)")):
        assert cli.main(["export", "--workdir", workdir.path, "--format", "savedmodel", "--out", out]) == 2
        assert message in capsys.readouterr().err
    assert sorted(os.listdir(workdir.encoder_dir)) == encoder_files
    assert sorted(os.listdir(versions_and_a_file)) == ["1", "7"]


def test_tokenizer_layer_round_trips_its_config(tiny_workdir):
    workdir, _ = tiny_workdir
    layer = savedmodel.VocabularyFileTokenizer(os.path.join(workdir.encoder_dir, "vocab.txt"), MAX_LENGTH)
    clone = savedmodel.VocabularyFileTokenizer.from_config(layer.get_config())
    captions = strings(AWKWARD_CAPTIONS)
    np.testing.assert_array_equal(clone(captions), layer(captions))
    assert clone(captions).shape == (len(AWKWARD_CAPTIONS), MAX_LENGTH)


def test_signatures_take_and_return_what_the_issue_says(loaded):
    assert set(loaded.signatures) == set(savedmodel.SIGNATURES)
    extra_inputs = {
        "serving_default": {},
        "generate_seeded": {"seed": ((), tf.int64)},
        "generate_with_noise": {"z": ((None, NOISE_DIM), tf.float32)},
    }
    for name, extra in extra_inputs.items():
        signature = loaded.signatures[name]
        inputs = signature.structured_input_signature[1]
        expected = {"captions": ((None,), tf.string), **extra}
        assert {k: (tuple(s.shape), s.dtype) for k, s in inputs.items()} == expected, name
        outputs = {k: (tuple(s.shape), s.dtype) for k, s in signature.structured_outputs.items()}
        assert outputs == {"images": ((None, IMAGE_SIZE, IMAGE_SIZE, 3), tf.uint8),
                           "token_ids": ((None, MAX_LENGTH), tf.int32)}, name


def test_in_graph_tokens_equal_the_training_tokenizer_on_awkward_captions(tiny_workdir, loaded):
    _, tokenizer, _ = load_models(tiny_workdir[0])
    ids = []
    for start in range(0, len(AWKWARD_CAPTIONS), MAX_BATCH):
        batch = AWKWARD_CAPTIONS[start:start + MAX_BATCH]
        ids.append(loaded.signatures["generate_seeded"](
            captions=strings(batch), seed=tf.constant(0, tf.int64))["token_ids"].numpy())
    ids = np.concatenate(ids)
    np.testing.assert_array_equal(ids, tokenizer(AWKWARD_CAPTIONS).numpy())
    start, end = ids[0, :2]
    assert list(ids[0]) == [start, end] + [0] * (MAX_LENGTH - 2)  # empty caption
    assert list(ids[1, :5]) == [start, 1, 1, 1, end]  # unknown words are OOV
    assert 0 not in ids[2] and end not in ids[2]  # cut at max_length


def test_invalid_utf8_is_read_as_replacement_characters(loaded):
    def token_ids(caption):
        return loaded.signatures["generate_seeded"](
            captions=tf.constant([caption]), seed=tf.constant(0, tf.int64))["token_ids"].numpy()

    # Each bad byte becomes one U+FFFD token, neither dropped nor an error.
    np.testing.assert_array_equal(token_ids(b"red \xff\xfe circle"),
                                  token_ids("red \ufffd\ufffd circle".encode()))


def test_images_match_the_keras_model_on_the_same_noise(tiny_workdir, loaded):
    encoder, tokenizer, generator = load_models(tiny_workdir[0])
    captions = CAPTIONS[:MAX_BATCH]
    z = np.random.default_rng(1).normal(size=(len(captions), NOISE_DIM)).astype(np.float32)
    served = loaded.signatures["generate_with_noise"](captions=strings(captions), z=tf.constant(z))
    expected = keras_images(encoder, generator, tokenizer(captions).numpy(), z)
    expected_pixels = np.round((expected + 1) * 127.5).astype(int)
    difference = np.abs(served["images"].numpy().astype(int) - expected_pixels)
    # Identical pixels except where float round-off crosses a rounding boundary.
    assert difference.max() <= 1 and (difference == 0).mean() > 0.99
    assert served["images"].numpy().std() > 20  # real pictures, not flat grey

    seeded = loaded.signatures["generate_seeded"](captions=strings(captions), seed=tf.constant(42, tf.int64))
    noise = sample_noise(len(captions), NOISE_DIM, "normal", 42)
    again = loaded.signatures["generate_with_noise"](captions=strings(captions), z=tf.constant(noise))
    np.testing.assert_array_equal(seeded["images"], again["images"])


def test_same_seed_same_images_and_serving_default_draws_fresh_noise(loaded):
    captions = strings(CAPTIONS[:2])

    def seeded(seed):
        return loaded.signatures["generate_seeded"](captions=captions, seed=tf.constant(seed, tf.int64))["images"]

    np.testing.assert_array_equal(seeded(7), seeded(7))
    assert np.any(seeded(7).numpy() != seeded(8).numpy())
    first, second = (loaded.signatures["serving_default"](captions=captions)["images"].numpy() for _ in range(2))
    assert first.shape == (2, IMAGE_SIZE, IMAGE_SIZE, 3) and np.any(first != second)


@pytest.mark.parametrize("signature, inputs, message", [
    ("generate_seeded", {"captions": [], "seed": 1}, "no captions"),
    ("serving_default", {"captions": ["a"] * (MAX_BATCH + 1)}, f"more than {MAX_BATCH} captions"),
    ("generate_with_noise", {"captions": ["a", "b"], "z": np.zeros((3, NOISE_DIM))}, "one row per caption"),
    ("generate_with_noise", {"captions": ["a"], "z": np.full((1, NOISE_DIM), np.nan)}, "finite"),
])
def test_bad_requests_fail_with_a_message_and_the_model_keeps_serving(loaded, signature, inputs, message):
    dtypes = {"captions": tf.string, "seed": tf.int64, "z": tf.float32}
    tensors = {name: tf.constant(value, dtypes[name]) for name, value in inputs.items()}
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        loaded.signatures[signature](**tensors)
    images = loaded.signatures["serving_default"](captions=strings(["a red circle"]))["images"]
    assert images.shape == (1, IMAGE_SIZE, IMAGE_SIZE, 3)


def test_a_single_caption_string_is_a_batch_of_one(loaded):
    """A columnar REST body {"inputs": "a caption"} reaches the graph as a scalar."""
    seed = tf.constant(3, tf.int64)
    one = loaded.signatures["generate_seeded"](captions=strings([CAPTIONS[0]]), seed=seed)
    scalar = loaded.signatures["generate_seeded"](captions=tf.constant(CAPTIONS[0]), seed=seed)
    np.testing.assert_array_equal(scalar["images"], one["images"])
    np.testing.assert_array_equal(scalar["token_ids"], one["token_ids"])
    z = tf.zeros((1, NOISE_DIM))
    np.testing.assert_array_equal(
        loaded.signatures["generate_with_noise"](captions=tf.constant(CAPTIONS[0]), z=z)["images"],
        loaded.signatures["generate_with_noise"](captions=strings([CAPTIONS[0]]), z=z)["images"])


def test_noise_of_the_wrong_width_is_refused_inside_the_graph(tiny_workdir):
    """Python clients check feeds against the signature; TF Serving's C++ server need not."""
    from sagan_tf.inference import TextToImage

    workdir, config = tiny_workdir
    functions = savedmodel.ServingFunctions(TextToImage.from_workdir(workdir, config),
                                            os.path.join(workdir.encoder_dir, "vocab.txt"), MAX_BATCH)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"z must have {NOISE_DIM} columns"):
        functions.generate_with_noise(strings(["a red circle"]), tf.zeros((1, NOISE_DIM - 3)))
    images = functions.generate_with_noise(strings(["a red circle"]), tf.zeros((1, NOISE_DIM)))["images"]
    assert images.shape == (1, IMAGE_SIZE, IMAGE_SIZE, 3)


def test_vocabulary_travels_inside_the_savedmodel(tiny_workdir, savedmodel_export, tmp_path):
    workdir, _ = tiny_workdir
    moved = shutil.copytree(savedmodel_export["path"], tmp_path / "7")
    vocabulary = os.path.join(workdir.encoder_dir, "vocab.txt")
    os.rename(vocabulary, vocabulary + ".away")
    try:
        reloaded = tf.saved_model.load(str(moved))
        ids = reloaded.signatures["generate_seeded"](
            captions=strings([CAPTIONS[0]]), seed=tf.constant(0, tf.int64))["token_ids"].numpy()
    finally:
        os.rename(vocabulary + ".away", vocabulary)
    _, tokenizer, _ = load_models(workdir)
    np.testing.assert_array_equal(ids, tokenizer([CAPTIONS[0]]).numpy())


def test_saved_model_cli_shows_and_runs_the_export(loaded, savedmodel_export, tmp_path):
    path = savedmodel_export["path"]
    shown = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", path, "--all"],
                           capture_output=True, text=True, check=True).stdout
    for name in savedmodel.SIGNATURES:
        assert f"signature_def['{name}']" in shown
    for line in ("dtype: DT_STRING", "dtype: DT_INT64", "dtype: DT_UINT8",
                 f"shape: (-1, {IMAGE_SIZE}, {IMAGE_SIZE}, 3)", f"shape: (-1, {NOISE_DIM})"):
        assert line in shown

    captions = [CAPTIONS[0], ""]
    subprocess.run([SAVED_MODEL_CLI, "run", "--dir", path, "--tag_set", "serve",
                    "--signature_def", "generate_seeded",
                    "--input_exprs", f"captions={captions!r};seed=5",
                    "--outdir", str(tmp_path), "--overwrite"],
                   capture_output=True, text=True, check=True)
    expected = loaded.signatures["generate_seeded"](captions=strings(captions), seed=tf.constant(5, tf.int64))
    np.testing.assert_array_equal(np.load(tmp_path / "images.npy"), expected["images"])
    np.testing.assert_array_equal(np.load(tmp_path / "token_ids.npy"), expected["token_ids"])


def test_export_command_refuses_tflite_flags_and_missing_models(tiny_workdir, tmp_path, capsys):
    workdir, _ = tiny_workdir
    args = ["export", "--format", "savedmodel"]
    assert cli.main([*args, "--workdir", workdir.path, "--quantize", "float16"]) == 2
    assert "--quantize and --batch apply to --format tflite only" in capsys.readouterr().err
    assert cli.main([*args, "--workdir", str(tmp_path / "empty")]) == 2
    assert "no trained text encoder" in capsys.readouterr().err
