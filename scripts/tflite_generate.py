#!/usr/bin/env python3
"""Caption -> PNG with an exported TFLite folder, the way a phone app does it.

    python scripts/tflite_generate.py runs/shapes/export/tflite-dynamic_int8 \
        "a red circle on a blue background" --seed 7 --out circle.png

Reads only the folder `sagan-tf export --format tflite` wrote
(model_card.json, vocab.txt, text2image.tflite) and imports neither
TensorFlow nor sagan_tf: the tokenizer below follows the rules the model
card states, in plain Python, and the model runs in the standard LiteRT
interpreter. The noise of caption i is row i of
`numpy.random.default_rng(seed)` draws (standard normal, or uniform in
[-1, 1] when the card says so).
"""

import argparse
import hashlib
import json
import os
import re
import sys
import unicodedata

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

MODEL_CARD_FILE = "model_card.json"
MODEL_FILE = "text2image.tflite"


class ExportFolderError(ValueError):
    """The folder is not a whole, readable TFLite export."""


def check_file(path, card_sha256):
    """A file the model card does not describe (from another export) would run and draw the wrong picture."""
    with open(path, "rb") as f:
        found = hashlib.sha256(f.read()).hexdigest()
    if card_sha256 is not None and found != card_sha256:
        raise ExportFolderError(f"{path} is not the file {MODEL_CARD_FILE} describes (another export's, "
                                "or changed since): copy the whole folder of one export")


class CaptionTokenizer:
    """The model card's tokenizer: caption -> `max_length` token ids."""

    def __init__(self, settings, vocabulary):
        self.settings = settings
        self.ids = {token: index for index, token in enumerate(vocabulary)}
        self.split_pattern = re.compile(f"[{re.escape(settings['separators'])}]+")

    @classmethod
    def from_folder(cls, folder, card):
        settings = card["tokenizer"]
        path = os.path.join(folder, settings["vocabulary_file"])
        check_file(path, settings.get("vocabulary_sha256"))  # absent from cards written before it was recorded
        with open(path, encoding="utf-8") as f:
            vocabulary = f.read().split("\n")[:-1]
        # An id past the model's embedding table would fail inside the interpreter.
        if len(vocabulary) != settings["vocabulary_size"]:
            raise ExportFolderError(f"{path} has {len(vocabulary)} tokens but the model card says "
                                    f"{settings['vocabulary_size']}: it belongs to another export")
        return cls(settings, vocabulary)

    def tokens(self, caption):
        """Lower-case; every character that is not a letter, number or
        separator stands alone; split on the separators; add the markers."""
        separators = self.settings["separators"]
        spaced = "".join(
            character if character in separators or unicodedata.category(character)[0] in "LN"
            else f" {character} "
            for character in caption.lower())
        words = [word for word in self.split_pattern.split(spaced) if word]
        return [self.settings["start_token"], *words, self.settings["end_token"]]

    def __call__(self, caption):
        length = self.settings["max_length"]
        ids = [self.ids.get(token, self.settings["oov_id"]) for token in self.tokens(caption)][:length]
        return ids + [self.settings["pad_id"]] * (length - len(ids))


def load_card(folder):
    path = os.path.join(folder, MODEL_CARD_FILE)
    if not os.path.isfile(path):
        raise ExportFolderError(f"no {MODEL_CARD_FILE} in {folder}: name the folder "
                                "`sagan-tf export --format tflite` wrote")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def noise(card, count, seed):
    rng = np.random.default_rng(seed)
    shape = (count, card["noise"]["size"])
    if card["noise"]["distribution"] == "uniform":
        return rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def generate(folder, captions, seed=0, num_threads=2):
    """uint8 images [len(captions), S, S, 3], run in batches of the model's fixed size."""
    card = load_card(folder)
    tokenizer = CaptionTokenizer.from_folder(folder, card)
    model = card["models"][MODEL_FILE]
    check_file(os.path.join(folder, MODEL_FILE), model.get("sha256"))
    runner = Interpreter(model_path=os.path.join(folder, MODEL_FILE),
                         num_threads=num_threads).get_signature_runner(model["signature"])
    batch = card["batch_size"]
    token_ids = np.array([tokenizer(caption) for caption in captions], np.int32)
    z = noise(card, len(captions), seed)
    images = []
    for start in range(0, len(captions), batch):
        rows = slice(start, start + batch)
        # A short last batch is filled up by repeating its last row.
        fill = batch - len(token_ids[rows])
        ids_batch = np.concatenate([token_ids[rows], np.repeat(token_ids[rows][-1:], fill, axis=0)])
        z_batch = np.concatenate([z[rows], np.repeat(z[rows][-1:], fill, axis=0)])
        output = runner(token_ids=ids_batch, noise=z_batch)["image"]
        images.append(output[:batch - fill])
    pixels = np.round((np.concatenate(images) + 1.0) * 127.5)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the folder `sagan-tf export --format tflite` wrote")
    parser.add_argument("captions", nargs="+", help="one picture per caption")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same pictures")
    parser.add_argument("--out", default="generated.png", help="PNG path: the pictures side by side")
    parser.add_argument("--tokens", action="store_true", help="print the tokens and their ids as JSON and exit")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be at least 0, got {args.seed}")
    if not args.out.lower().endswith(".png") or os.path.isdir(args.out):
        parser.error(f"--out must name a .png file, got {args.out!r}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))):
        parser.error(f"--out: the folder of {args.out!r} does not exist")
    try:
        if args.tokens:
            tokenizer = CaptionTokenizer.from_folder(args.folder, load_card(args.folder))
            print(json.dumps([{"tokens": tokenizer.tokens(caption), "token_ids": tokenizer(caption)}
                              for caption in args.captions], ensure_ascii=False))
            return 0
        images = generate(args.folder, args.captions, args.seed)
    except ExportFolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        # A missing, truncated or hand-edited file: the interpreter's own words, and which folder.
        print(f"error: {args.folder} is not a whole TFLite export ({type(error).__name__}: {error}); "
              "export it again", file=sys.stderr)
        return 2
    Image.fromarray(np.concatenate(list(images), axis=1)).save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
