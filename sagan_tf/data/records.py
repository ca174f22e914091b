"""The in-memory form every data set reader produces.

Readers (shapes, CUB, flowers, image folders) all return a `CaptionedDataset`
so that the tokenizer, the tf.data pipeline and the tfds builders need to
know only this one shape.
"""

import collections
import dataclasses
from typing import Optional


class BadExampleError(ValueError):
    """One example (caption file, image) that cannot be used."""


@dataclasses.dataclass
class Example:
    # Unique, stable id inside its data set, e.g. "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111".
    name: str
    captions: list
    # Class index into CaptionedDataset.class_names; -1 when the data has no classes.
    label: int = -1
    # Image file on disk (real data) or None (captions-only mode, or images kept in memory).
    image_path: Optional[str] = None
    # Bounding box (x, y, width, height) in pixels of the original image, if known.
    bbox: Optional[tuple] = None
    # Row of CaptionedDataset.images when the images live in memory (shapes).
    image_index: int = -1
    # One dict per caption with its ground-truth attributes (shapes only).
    attributes: Optional[list] = None


@dataclasses.dataclass
class CaptionedDataset:
    name: str
    class_names: list
    # "train", "validation", "test" -> list of Example.
    splits: dict
    # uint8 [N, H, W, 3] for in-memory data sets, else None.
    images: Optional[object] = None
    # Why examples were skipped: reason -> count, and the first few names per reason.
    skipped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    skipped_names: dict = dataclasses.field(default_factory=dict)
    # data.strict: a bad example found later (an image that does not decode) raises too.
    strict: bool = False

    def skip(self, name, reason, strict=False):
        """Records a bad example, or raises in strict mode."""
        if strict or self.strict:
            raise BadExampleError(f"{name}: {reason}")
        self.skipped[reason] += 1
        self.skipped_names.setdefault(reason, [])
        if len(self.skipped_names[reason]) < 5:
            self.skipped_names[reason].append(name)

    @property
    def num_classes(self):
        return len(self.class_names)

    def captions(self, split):
        return [c for example in self.splits[split] for c in example.captions]

    def stats(self):
        return {
            "name": self.name,
            "classes": self.num_classes,
            "examples": {k: len(v) for k, v in self.splits.items()},
            "captions": {k: sum(len(e.captions) for e in v) for k, v in self.splits.items()},
            "with_images": {
                k: sum(e.image_path is not None or e.image_index >= 0 for e in v)
                for k, v in self.splits.items()
            },
            "skipped": dict(self.skipped),
        }
