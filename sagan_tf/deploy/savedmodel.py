"""SavedModel export for TF Serving: caption strings in, uint8 images out.

`<base>/<version>/` is TF Serving's layout: the server watches `<base>` and
serves the highest integer version, so each export takes the next integer
and never touches an existing one.

Signatures, for N captions (1 <= N <= `export.max_batch`):

- `serving_default(captions: string[N])`: fresh noise on every call;
- `generate_seeded(captions, seed: int64[])`: the same seed and captions
  always give the same images;
- `generate_with_noise(captions, z: float32[N, noise_dim])`: the caller's noise.

Each returns `images` (uint8 [N, S, S, 3]) and the `token_ids` (int32
[N, max_length]) the captions became. Tokenization runs inside the graph
with the workdir's vocab.txt, which the SavedModel carries as an asset, so a
client sends plain text. Awkward captions are all defined: an empty caption
is `<start> <end>`, unknown words are the OOV id, long captions are cut to
`max_length` tokens, any Unicode text (even invalid UTF-8, read as U+FFFD)
is tokenized by the same rules as in training. Bad requests (no captions,
more than `max_batch`, z with the wrong number of rows or non-finite values)
fail that request with an InvalidArgumentError that says why.
"""

import os
import re
import shutil
import tempfile

import keras
import tensorflow as tf

from sagan_tf import pixels
from sagan_tf.inference import TextToImage
from sagan_tf.models.gan import sample_noise
from sagan_tf.text.tokenizer import OOV_ID, PAD_ID, VOCAB_FILE, standardize_caption

SIGNATURES = ("serving_default", "generate_seeded", "generate_with_noise")


@keras.saving.register_keras_serializable(package="sagan_tf")
class VocabularyFileTokenizer(keras.layers.Layer):
    """`CaptionTokenizer`'s rules as graph ops over a vocab.txt file.

    Line number = token id; words not in the file get OOV_ID; rows are cut
    or padded with PAD_ID to `max_length`. The table reads the file through
    a `tf.lookup.TextFileInitializer`, which makes it an asset of any
    SavedModel that uses this layer.

    Call arguments:
        captions: string tensor [batch].

    Returns:
        int32 token ids [batch, max_length].
    """

    def __init__(self, vocabulary_file, max_length, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_file = vocabulary_file
        self.max_length = max_length
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                vocabulary_file,
                key_dtype=tf.string, key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
                value_dtype=tf.int64, value_index=tf.lookup.TextFileIndex.LINE_NUMBER),
            default_value=OOV_ID)

    def call(self, captions):
        tokens = tf.strings.split(standardize_caption(captions))
        token_ids = self.table.lookup(tokens)[:, :self.max_length]
        return tf.cast(token_ids.to_tensor(PAD_ID, shape=[None, self.max_length]), "int32")

    def get_config(self):
        config = super().get_config()
        config.update({"vocabulary_file": self.vocabulary_file, "max_length": self.max_length})
        return config


def caption_batch(captions):
    """The captions as a vector: a single string is a batch of one.

    TF Serving does not hold a request to the signature's shapes, and a
    columnar REST body `{"inputs": "a caption"}` arrives as a scalar.
    A plain `reshape(captions, [-1])` would not do: Grappler removes it as
    a no-op, since the traced shape is already a vector.
    """
    return tf.reshape(captions, [-1, 1])[:, 0]


class ServingFunctions:
    """The bodies of the three signatures over one `TextToImage` model."""

    def __init__(self, model, vocabulary_file, max_batch):
        self.model = model
        self.tokenizer = VocabularyFileTokenizer(vocabulary_file, model.tokenizer.max_length)
        self.max_batch = max_batch

    def input_signatures(self):
        captions = tf.TensorSpec([None], tf.string, name="captions")
        return {
            "serving_default": [captions],
            "generate_seeded": [captions, tf.TensorSpec([], tf.int64, name="seed")],
            "generate_with_noise": [captions, tf.TensorSpec([None, self.model.noise_dim], tf.float32, name="z")],
        }

    def serving_default(self, captions):
        seed = tf.random.uniform([], maxval=tf.int64.max, dtype=tf.int64)
        return self.generate_seeded(captions, seed)

    def generate_seeded(self, captions, seed):
        captions = self._checked(caption_batch(captions))
        noise = sample_noise(tf.shape(captions)[0], self.model.noise_dim, self.model.noise_kind, seed)
        return self._generate(captions, noise)

    def generate_with_noise(self, captions, z):
        captions = caption_batch(captions)
        captions = self._checked(
            captions,
            tf.debugging.assert_equal(tf.shape(z)[0], tf.shape(captions)[0],
                                      message="z must have one row per caption"),
            # TF Serving does not hold a request to the signature's shapes.
            tf.debugging.assert_equal(tf.shape(z)[1], self.model.noise_dim,
                                      message=f"z must have {self.model.noise_dim} columns (the noise size)"),
            tf.debugging.assert_all_finite(z, "z must hold finite numbers"))
        return self._generate(captions, z)

    def _checked(self, captions, *assertions):
        batch = tf.shape(captions)[0]
        assertions += (
            tf.debugging.assert_positive(batch, message="no captions: send at least one"),
            tf.debugging.assert_less_equal(
                batch, self.max_batch,
                message=f"more than {self.max_batch} captions in one request "
                        "(export.max_batch): split the batch"),
        )
        # The model runs only after every check passed, so a bad request
        # fails with the check's message, not with an error from deep inside.
        with tf.control_dependencies(assertions):
            return tf.identity(captions)

    def _generate(self, captions, noise):
        token_ids = self.tokenizer(captions)
        return {"images": pixels.to_pixels(self.model.text_to_image(token_ids, noise)), "token_ids": token_ids}


def build_archive(model, vocabulary_file, max_batch):
    """A `keras.export.ExportArchive` with the three signatures over `model`."""
    functions = ServingFunctions(model, vocabulary_file, max_batch)
    archive = keras.export.ExportArchive()
    # The endpoints track the models' variables themselves; the vocabulary
    # table is no variable and must be tracked by hand.
    archive.track(functions.tokenizer.table)
    for name, signature in functions.input_signatures().items():
        archive.add_endpoint(name, getattr(functions, name), input_signature=signature)
    return archive


def is_version(name):
    return re.fullmatch("[0-9]+", name) is not None


def next_version(base_dir):
    """1 + the highest integer version under `base_dir` (1 when there is none)."""
    names = os.listdir(base_dir) if os.path.isdir(base_dir) else []
    return max((int(name) for name in names if is_version(name)), default=0) + 1


def check_model_folder(base_dir):
    """Raises ValueError unless `base_dir` is absent or holds only version folders (and hidden names).

    TF Serving serves the folder's highest integer version; a folder of
    other files (the workdir's encoder/, say) is not a model's folder.
    """
    if not os.path.exists(base_dir):
        return
    if not os.path.isdir(base_dir):
        raise ValueError(f"{base_dir} is a file; name the model's folder (its versions go inside)")
    others = sorted(name for name in os.listdir(base_dir) if not name.startswith(".")
                    and not (is_version(name) and os.path.isdir(os.path.join(base_dir, name))))
    if others:
        raise ValueError(f"{base_dir} holds more than version folders ({', '.join(others[:4])}); name a new "
                         "folder, or one that earlier SavedModel exports of this model wrote")


def export_savedmodel(workdir, config, base_dir=None, checkpoint=None):
    """Writes the workdir's model as the next version under `base_dir`.

    Args:
        workdir: a `Workdir` with a trained encoder and generator.
        config: its `Config` (gan.noise, export.max_batch, export.model_name).
        base_dir: the model's directory, holding its versions (default:
            `<workdir>/export/<export.model_name>`).
        checkpoint: a generator .keras file (default: the latest).

    Returns:
        A dict: path, version, signatures, and the sizes a client needs.
    """
    base_dir = os.path.abspath(base_dir or os.path.join(workdir.export_dir, config.export.model_name))
    check_model_folder(base_dir)
    model = TextToImage.from_workdir(workdir, config, checkpoint)
    os.makedirs(base_dir, exist_ok=True)
    version = next_version(base_dir)
    target = os.path.join(base_dir, str(version))
    # Written beside the versions under a name TF Serving ignores, then
    # renamed, so a watching server never loads half a model.
    staging = tempfile.mkdtemp(prefix=f".{version}-", dir=base_dir)
    try:
        archive = build_archive(model, os.path.join(workdir.encoder_dir, VOCAB_FILE),
                                config.export.max_batch)
        archive.write_out(staging, verbose=False)
        if os.path.exists(target):
            raise FileExistsError(f"{target} appeared during the export; not overwriting it")
        # mkdtemp makes it private (0700): a server running as another user could not read the version.
        os.chmod(staging, 0o755)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    image_size = int(model.generator.outputs[0].shape[1])
    return {
        "path": target,
        "version": version,
        "signatures": list(SIGNATURES),
        "max_batch": config.export.max_batch,
        "max_length": model.tokenizer.max_length,
        "noise_dim": model.noise_dim,
        "image_shape": [image_size, image_size, 3],
    }
