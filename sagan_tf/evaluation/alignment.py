"""Text–image alignment: does a picture show what its caption says?

The domain classifier reads each picture; its reading is compared with
what the caption states. For shapes every attribute is checked (shape,
object colour, background colour, size, position) plus all five at once;
for classed data (CUB) the caption's class, top-1 and top-5. Results come
per group of captions: all of them ("all") and, for shapes, those naming
a (shape, colour) pair held out of training ("held_out_pairs").
"""

import numpy as np

from sagan_tf.data import shapes

ALL = "all"
HELD_OUT = "held_out_pairs"
TOP_K = 5


def groups_for(truths):
    """{group name: bool mask} over `truths` ({head: label} dicts)."""
    groups = {ALL: np.ones(len(truths), bool)}
    if truths and "shape" in truths[0]:
        groups[HELD_OUT] = np.array(
            [(t["shape"], t["color"]) in shapes.HELD_OUT_PAIRS for t in truths], bool)
    return groups


class AlignmentAccuracy:
    """Accumulates, batch by batch, how often the classifier agrees with the captions.

    Per group: "count", the top-1 accuracy of every head under the head's
    name, "all_correct" when there are several heads, and "<head>_top5" when
    there is a single head of more than five labels (classes).
    """

    def __init__(self, heads):
        self.heads = {name: len(labels) for name, labels in heads.items()}
        self.top5_head = next(iter(self.heads)) if (
            len(self.heads) == 1 and next(iter(self.heads.values())) > TOP_K) else None
        self.counts = {}
        self.correct = {}

    def update(self, head_logits, targets, groups):
        """Adds a batch: logits and int targets per head, {group: bool mask} over the batch."""
        hits = {}
        for name in self.heads:
            logits = np.asarray(head_logits[name])
            hits[name] = logits.argmax(axis=-1) == targets[name]
        if len(self.heads) > 1:
            hits["all_correct"] = np.logical_and.reduce([hits[name] for name in self.heads])
        if self.top5_head:
            logits = np.asarray(head_logits[self.top5_head])
            top5 = np.argsort(-logits, axis=-1)[:, :TOP_K]
            hits[f"{self.top5_head}_top5"] = (top5 == targets[self.top5_head][:, None]).any(axis=-1)
        for group, mask in groups.items():
            mask = np.asarray(mask, bool)
            self.counts[group] = self.counts.get(group, 0) + int(mask.sum())
            correct = self.correct.setdefault(group, {key: 0 for key in hits})
            for key, hit in hits.items():
                correct[key] += int(hit[mask].sum())

    def result(self):
        """{group: {"count": n, metric: accuracy}}; groups with no captions are left out."""
        return {
            group: {"count": count, **{key: hits / count for key, hits in self.correct[group].items()}}
            for group, count in self.counts.items() if count
        }


class BatchedAlignment:
    """The alignment of images whose readings arrive batch by batch, in the order of `truths`.

    Args:
        classifier: the domain classifier (its heads and label encoding).
        truths: one {head: label} per image to come.
        mask: which images count (default: all).
    """

    def __init__(self, classifier, truths, mask=None):
        self.targets = classifier.encode(truths)
        self.groups = groups_for(truths)
        if mask is not None:
            self.groups = {name: group & mask for name, group in self.groups.items()}
        self.accuracy = AlignmentAccuracy(classifier.heads)
        self.count = 0

    def add(self, head_logits):
        """The classifier's {head: logits} of the next batch of images."""
        head_logits = {name: np.asarray(logits) for name, logits in head_logits.items()}
        rows = slice(self.count, self.count + len(next(iter(head_logits.values()))))
        self.count = rows.stop
        self.accuracy.update(head_logits, {k: v[rows] for k, v in self.targets.items()},
                             {k: v[rows] for k, v in self.groups.items()})

    def result(self):
        return self.accuracy.result()


def score_images(classifier, images, truths, batch_size=256):
    """Alignment of `images` (float, [-1, 1]) with `truths`, one {head: label} per image."""
    if len(images) != len(truths):
        raise ValueError(f"got {len(images)} images but {len(truths)} truths")
    scored = BatchedAlignment(classifier, truths)
    for start in range(0, len(images), batch_size):
        scored.add(classifier(images[start:start + batch_size], training=False))
    return scored.result()
