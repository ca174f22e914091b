"""Caption tokenizer: Keras `TextVectorization` with our standardization.

Rules (the same in the graph, in exports and in `deploy` model cards):
lower-case; every character that is not a letter, digit or space becomes
its own token; `<start>` and `<end>` wrap the sentence; id 0 is padding and
id 1 the out-of-vocabulary token; sequences are cut or padded to
`max_length`. The vocabulary is a plain text file, one token per line, line
number = token id.
"""

import collections
import hashlib
import json
import os

import keras
import numpy as np
import tensorflow as tf

from sagan_tf import files

PAD = "<pad>"
OOV = "[UNK]"
# TextVectorization's ids of the two: the first two lines of vocab.txt.
PAD_ID = 0
OOV_ID = 1
START = "<start>"
END = "<end>"
VOCAB_FILE = "vocab.txt"
SETTINGS_FILE = "tokenizer.json"
PUNCTUATION_PATTERN = r"([^\pL\pN\s])"


@keras.saving.register_keras_serializable(package="sagan_tf")
def token_rules():
    """The rules a client outside TensorFlow needs to tokenize as we do (beside vocab.txt)."""
    return {"start_token": START, "end_token": END, "pad_id": PAD_ID, "oov_id": OOV_ID,
            "punctuation_pattern": PUNCTUATION_PATTERN}


def standardize_caption(text):
    """Lower-cases, splits punctuation off and adds sentence markers."""
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, PUNCTUATION_PATTERN, r" \1 ")
    return tf.strings.join([START + " ", text, " " + END])


class VocabularyMismatchError(ValueError):
    """A model trained on one vocabulary used with another."""


class CaptionTokenizer:
    """Turns caption strings into padded token ids (int64 tensors; `ids` gives int32 arrays)."""

    def __init__(self, vocabulary, max_length):
        if max_length < 3:
            raise ValueError(f"max_length must be at least 3 (<start>, a word, <end>), got {max_length}")
        self.vocabulary = list(vocabulary)
        self.max_length = int(max_length)
        self.layer = keras.layers.TextVectorization(
            standardize=standardize_caption,
            split="whitespace",
            output_mode="int",
            output_sequence_length=self.max_length,
            vocabulary=self.vocabulary,
        )

    @classmethod
    def adapt(cls, captions, max_length=0, min_word_count=1, percentile=95):
        """Builds the vocabulary (words seen at least `min_word_count` times)
        and, when `max_length` is 0, the length covering `percentile` % of captions."""
        if not captions:
            raise ValueError("cannot build a vocabulary from an empty caption list")
        token_lists = split_tokens(captions)
        counts = collections.Counter(t for tokens in token_lists for t in tokens)
        vocabulary = [w for w, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
                      if n >= min_word_count and w not in (PAD, OOV)]
        if not max_length:
            max_length = int(np.ceil(np.percentile([len(t) for t in token_lists], percentile)))
        return cls(vocabulary, max(max_length, 3))

    @property
    def vocabulary_size(self):
        # TextVectorization prepends padding and OOV.
        return len(self.vocabulary) + 2

    def __call__(self, captions):
        return self.layer(tf.constant(list(captions)) if isinstance(captions, (list, tuple)) else captions)

    def ids(self, captions):
        """The token ids as an int32 NumPy array, the dtype the encoders take."""
        return np.asarray(self(captions), np.int32)

    def unknown_words(self, caption):
        """The words of `caption` outside the vocabulary (each reads as the OOV id)."""
        known = set(self.vocabulary)
        return [token for token in split_tokens([caption])[0][1:-1] if token not in known]

    def count_truncated(self, captions):
        """How many captions have more tokens than `max_length`."""
        return sum(len(t) > self.max_length for t in split_tokens(captions))

    def tokens_of(self, row):
        """The tokens of one row of token ids, padding left out (a token may hold a non-ASCII space)."""
        table = [PAD, OOV] + self.vocabulary
        return [table[i] for i in np.asarray(row) if i != PAD_ID]

    def decode(self, token_ids):
        return [" ".join(self.tokens_of(row)) for row in np.asarray(token_ids)]

    def fingerprint(self):
        return _fingerprint(self.vocabulary, self.max_length)

    def save(self, directory):
        files.write_text(os.path.join(directory, VOCAB_FILE), "\n".join([PAD, OOV] + self.vocabulary) + "\n")
        files.write_json(os.path.join(directory, SETTINGS_FILE), {
            "max_length": self.max_length, "fingerprint": self.fingerprint(), "lowercase": True,
            **token_rules()})

    @classmethod
    def load(cls, directory):
        vocab_path = os.path.join(directory, VOCAB_FILE)
        settings_path = os.path.join(directory, SETTINGS_FILE)
        for path in (vocab_path, settings_path):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"no tokenizer in {directory}: {os.path.basename(path)} is missing "
                                        "(run `sagan-tf train-encoder` on this workdir first)")
        try:
            with open(vocab_path, encoding="utf-8") as f:
                tokens = f.read().split("\n")[:-1]
        except UnicodeDecodeError as error:
            raise ValueError(f"{vocab_path} is not UTF-8 text: {error}") from None
        if tokens[:2] != [PAD, OOV]:
            raise ValueError(f"{vocab_path}: the first two lines must be {PAD} and {OOV}")
        settings = files.read_json(settings_path, "tokenizer settings file", required=("max_length",))
        max_length = settings["max_length"]
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
            raise ValueError(f"{settings_path}: max_length must be a positive integer, got {max_length!r}")
        return cls(tokens[2:], max_length)


def split_tokens(captions):
    """The tokens of each caption under the standardization rules, untruncated."""
    # tf.strings.split, as TextVectorization splits: ASCII whitespace only.
    tokens = tf.strings.split(standardize_caption(tf.constant(list(captions)))).to_list()
    return [[t.decode("utf-8") for t in row] for row in tokens]


def _fingerprint(vocabulary, max_length):
    return hashlib.sha1(json.dumps([vocabulary, max_length]).encode()).hexdigest()[:16]
