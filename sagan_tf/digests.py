"""Short digests that name a run's settings and a trained model's weights.

A workdir records them beside what it trained, so that the same command
with the same settings is recognised as done, and a model is never paired
with, or overwritten by, one trained under other settings.
"""

import dataclasses
import hashlib
import json
import os

import keras


def config_digest(*sections, ignore=()):
    """A short digest of config sections (dataclasses or plain values), their `ignore`d fields left out."""
    values = [{name: value for name, value in dataclasses.asdict(s).items() if name not in ignore}
              if dataclasses.is_dataclass(s) else s for s in sections]
    return hashlib.sha1(json.dumps(values, sort_keys=True).encode()).hexdigest()[:10]


def dataset_digest(dataset):
    """Identifies a data set's examples: names, labels, captions, image files and their sizes, and its classes.

    The config names where the data lives, not what is there: images or
    captions added to a folder, or a photo replaced under the same name,
    change this digest, not the config's. (Sizes, not modification times,
    which restoring or checking out the same files changes.)
    """
    examples = {split: [[e.name, e.label, e.captions, e.image_path] + _file_size(e.image_path) for e in items]
                for split, items in sorted(dataset.splits.items())}
    text = json.dumps([dataset.name, dataset.class_names, examples], sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def _file_size(path):
    """[size in bytes] of an image file, [] for none (in-memory images keep their earlier digests)."""
    if not path:
        return []
    try:
        return [os.path.getsize(path)]
    except OSError:
        return ["missing"]


def weights_digest(model):
    """Identifies a trained model by its weights (the same weights, the same digest)."""
    digest = hashlib.sha1()
    for weight in model.weights:
        digest.update(keras.ops.convert_to_numpy(weight).tobytes())
    return digest.hexdigest()[:16]
