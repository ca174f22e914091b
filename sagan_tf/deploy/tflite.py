"""TFLite export for phones: token ids + noise in, image out.

Two models, one signature each, both for a fixed batch size:

- `text2image.tflite`, signature `text_to_image`:
  token_ids int32 [B, max_length], noise float32 [B, noise_dim]
  -> image float32 [B, S, S, 3] in [-1, 1];
- `generator.tflite`, signature `generate`:
  sentence_vector float32 [B, D], noise float32 [B, noise_dim] -> image.

Shapes are static because the BiLSTM converts to built-in ops only then,
and because a dynamic batch makes the int8 model about 150x slower. The
converter may use built-in ops only, so the standard interpreter runs the
files without Flex (select TF) ops. Beside the models: `vocab.txt` and
`model_card.json`, which documents inputs, outputs, value ranges, the
tokenizer's rules and the noise, and the error of the file against the
Keras models measured at export.
"""

import hashlib
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
# tf.lite raises this class but does not export its name.
from tensorflow.lite.python.convert import ConverterError

from sagan_tf import errors, files
from sagan_tf.inference import TextToImage
from sagan_tf.text.tokenizer import END, OOV_ID, START, VOCAB_FILE, token_rules

QUANTIZATIONS = ("none", "float16", "dynamic_int8")
# The largest |TFLite - Keras| on images in [-1, 1] each variant is held to
# (tests/test_tflite.py). float16 rounds every weight to 11 significant
# bits; dynamic-range int8 stores weights in 8 bits and quantizes
# activations on the fly. Measured (max over 48 captions, 3 tiny nets with
# He-scaled random weights): float32 1.4e-6, float16 1.1e-3 to 2.4e-3, int8
# 3.4e-2 to 6.7e-2; full-size spec model: 1.6e-6, 6e-4, 3.6e-2. The usual
# 1e-3 / 1e-2 rules of thumb do not hold for int8 (nor always for float16),
# so the bounds state what the converter delivers, with some margin. The
# tests also hold the mean error to a tenth of the bound: for int8 the
# 1e-2 that the max misses holds for a typical pixel.
TOLERANCES = {"none": 1e-5, "float16": 5e-3, "dynamic_int8": 1e-1}
TEXT_TO_IMAGE_FILE = "text2image.tflite"
GENERATOR_FILE = "generator.tflite"
MODEL_CARD_FILE = "model_card.json"
SIGNATURE_KEYS = {TEXT_TO_IMAGE_FILE: "text_to_image", GENERATOR_FILE: "generate"}
# ASCII whitespace: what the in-graph `tf.strings.split` splits on.
SEPARATORS = " \t\n\v\f\r"
PARITY_BATCHES = 4


def build_archive(model, batch):
    """An ExportArchive with both signatures of `model` (a TextToImage), static shapes."""
    noise = tf.TensorSpec([batch, model.noise_dim], tf.float32, name="noise")
    token_ids = tf.TensorSpec([batch, model.tokenizer.max_length], tf.int32, name="token_ids")
    sentence_vector = tf.TensorSpec([batch, model.encoder.output_dim], tf.float32, name="sentence_vector")

    def text_to_image(token_ids, noise):
        return {"image": model.text_to_image(token_ids, noise)}

    def generate(sentence_vector, noise):
        return {"image": model.generator([noise, sentence_vector], training=False)}

    archive = keras.export.ExportArchive()
    archive.add_endpoint(SIGNATURE_KEYS[TEXT_TO_IMAGE_FILE], text_to_image, [token_ids, noise])
    archive.add_endpoint(SIGNATURE_KEYS[GENERATOR_FILE], generate, [sentence_vector, noise])
    return archive


def convert(saved_model_dir, signature_key, quantize, **converter_attributes):
    """One signature of a SavedModel as TFLite bytes, built-in ops only.

    `converter_attributes` are set on the TFLiteConverter before converting
    (benchmarks/int8_converter_settings.py compares quantizer switches).
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[signature_key])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    for attribute, value in converter_attributes.items():
        # A misspelt switch would otherwise become a new attribute and change nothing.
        if not hasattr(converter, attribute):
            raise ValueError(f"TFLiteConverter has no attribute {attribute!r}")
        setattr(converter, attribute, value)
    try:
        return converter.convert()
    except ConverterError as error:
        raise ValueError(f"the {signature_key!r} model does not convert to TFLite built-in ops "
                         f"({quantize}): {errors.first_line(error, limit=None)}") from None


def convert_models(saved_model_dir, out_dir, quantize, **converter_attributes):
    """Both TFLite files from an archive written by `build_archive`: {file name: path}."""
    paths = {}
    for name, key in SIGNATURE_KEYS.items():
        paths[name] = os.path.join(out_dir, name)
        with open(paths[name], "wb") as f:
            f.write(convert(saved_model_dir, key, quantize, **converter_attributes))
    return paths


def signature_runner(path, num_threads=2):
    """The single signature of a .tflite file, ready to call with keyword arrays."""
    return Interpreter(model_path=path, num_threads=num_threads).get_signature_runner()


def parity_inputs(model, batch, rng):
    """Token ids shaped like real captions (<start> words <end> padding) and noise."""
    start, end = model.token_ids([""])[0, :2]
    length = model.tokenizer.max_length
    token_ids = np.zeros((batch, length), np.int32)
    for row in token_ids:
        words = rng.integers(OOV_ID, model.tokenizer.vocabulary_size, rng.integers(1, length - 1))
        row[:len(words) + 2] = [start, *words, end]
    noise = np.asarray(model.noise(batch, int(rng.integers(2**31))), np.float32)
    return token_ids, noise


def measure_parity(model, paths, batch, seed=0):
    """|TFLite - Keras| of each file over PARITY_BATCHES random batches.

    Returns {file name: {"max": largest error, "mean": mean error}} on
    images in [-1, 1]: the max is what TOLERANCES bound; the mean says how
    far a typical pixel moves (one uint8 level is 2 / 255 = 0.0078).
    """
    rng = np.random.default_rng(seed)
    runners = {name: signature_runner(path) for name, path in paths.items()}
    differences = {name: [] for name in paths}
    for _ in range(PARITY_BATCHES):
        token_ids, noise = parity_inputs(model, batch, rng)
        vectors = np.asarray(model.encoder(token_ids, training=False))
        expected = model.images(vectors, noise)
        outputs = {
            TEXT_TO_IMAGE_FILE: runners[TEXT_TO_IMAGE_FILE](token_ids=token_ids, noise=noise),
            GENERATOR_FILE: runners[GENERATOR_FILE](sentence_vector=vectors, noise=noise),
        }
        for name, output in outputs.items():
            differences[name].append(np.abs(output["image"] - expected))
    return {name: {"max": float(np.max(found)), "mean": float(np.mean(found))}
            for name, found in differences.items()}


def export_tflite(workdir, config, out_dir=None, quantize="none", batch=None, checkpoint=None):
    """Writes text2image.tflite, generator.tflite, vocab.txt and model_card.json.

    Args:
        workdir: a `Workdir` with a trained encoder and generator.
        config: its `Config` (gan.noise, export.tflite_batch).
        out_dir: the folder to write (default: `<workdir>/export/tflite-<quantize>`).
        quantize: "none" (float32), "float16" or "dynamic_int8".
        batch: the fixed batch size (default: export.tflite_batch).
        checkpoint: a generator .keras file (default: the latest).

    Returns:
        The model card (a dict) with `out_dir` added.
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    batch = config.export.tflite_batch if batch is None else batch
    if batch < 1:
        raise ValueError(f"the batch size must be at least 1, got {batch}")
    model = TextToImage.from_workdir(workdir, config, checkpoint)
    out_dir = os.path.abspath(out_dir or os.path.join(workdir.export_dir, f"tflite-{quantize}"))
    with files.folder_written_atomically(out_dir, [*SIGNATURE_KEYS, VOCAB_FILE, MODEL_CARD_FILE]) as scratch:
        with tempfile.TemporaryDirectory() as saved_model_dir:
            build_archive(model, batch).write_out(saved_model_dir, verbose=False)
            paths = convert_models(saved_model_dir, scratch, quantize)
        vocab_path = os.path.join(scratch, VOCAB_FILE)
        shutil.copyfile(os.path.join(workdir.encoder_dir, VOCAB_FILE), vocab_path)
        card = model_card(model, quantize, batch, paths, measure_parity(model, paths, batch), vocab_path)
        files.write_json(os.path.join(scratch, MODEL_CARD_FILE), card)
    return {**card, "out_dir": out_dir}


def file_sha256(path):
    """The SHA-256 of a file, in hex: the card names the exact files it describes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_card(model, quantize, batch, paths, errors, vocab_path):
    """What a phone app needs to feed the files and read their output."""
    length, noise_dim = model.tokenizer.max_length, model.noise_dim
    image_size = int(model.generator.outputs[0].shape[1])
    noise_range = ("z ~ N(0, 1), one row per image" if model.noise_kind == "normal"
                   else "z ~ U(-1, 1), one row per image")
    noise = _tensor("noise", [batch, noise_dim], "float32", noise_range)
    image = _tensor("image", [batch, image_size, image_size, 3], "float32",
                    "[-1, 1], RGB; pixel = round((x + 1) * 127.5)")
    inputs = {
        TEXT_TO_IMAGE_FILE: [_tensor("token_ids", [batch, length], "int32",
                                     f"[0, {model.tokenizer.vocabulary_size - 1}]: ids from the tokenizer below"),
                             noise],
        GENERATOR_FILE: [_tensor("sentence_vector", [batch, model.encoder.output_dim], "float32",
                                 "[-1, 1]: the text encoder's output φ(t)"),
                         noise],
    }
    return {
        "quantize": quantize,
        "batch_size": batch,
        "models": {
            name: {
                "signature": SIGNATURE_KEYS[name],
                "inputs": inputs[name],
                "outputs": [image],
                "bytes": os.path.getsize(path),
                "sha256": file_sha256(path),
                "max_abs_error_vs_keras": errors[name]["max"],
                "mean_abs_error_vs_keras": errors[name]["mean"],
                "tolerance": TOLERANCES[quantize],
            }
            for name, path in paths.items()
        },
        "parity": (f"max and mean |TFLite - Keras float32| over {PARITY_BATCHES} batches of random "
                   "token ids and noise, measured at export"),
        "noise": {"size": noise_dim, "distribution": model.noise_kind},
        "tokenizer": {
            "vocabulary_file": VOCAB_FILE,
            "vocabulary_sha256": file_sha256(vocab_path),
            "vocabulary_size": model.tokenizer.vocabulary_size,
            "max_length": length,
            **token_rules(),
            "separators": SEPARATORS,
            "rules": [
                "lower-case the caption (Unicode full case mapping, as Python's str.lower)",
                "put spaces around every character that is not a Unicode letter (L*), number (N*) "
                "or separator: punctuation, symbols, emoji and combining marks become tokens of their own",
                "split on the separators (ASCII whitespace)",
                f"wrap the tokens in {START} ... {END}",
                f"token id = line number in {VOCAB_FILE} (0-based); a token not there gets oov_id",
                f"keep the first max_length ids (a longer caption loses {END}); pad with pad_id to max_length",
            ],
        },
    }


def _tensor(name, shape, dtype, value_range):
    return {"name": name, "shape": shape, "dtype": dtype, "range": value_range}
