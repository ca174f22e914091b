"""Text–image alignment: hand-checked counts, and a trained classifier judging real shapes images."""

import numpy as np
import pytest

from sagan_tf import pixels
from sagan_tf.data import shapes
from sagan_tf.evaluation import alignment, domain_classifier
from sagan_tf.evaluation.alignment import AlignmentAccuracy

IMAGE_SIZE = 32


def logits_for(indices, size):
    """Logits whose ranking puts indices[i] first in row i."""
    logits = np.zeros((len(indices), size), np.float32)
    logits[np.arange(len(indices)), indices] = 5.0
    return logits


def test_counts_per_attribute_all_correct_and_groups_over_batches():
    accuracy = AlignmentAccuracy({"shape": ["circle", "square", "star"], "size": ["small", "large"]})
    targets = {"shape": np.array([0, 1, 2, 0]), "size": np.array([0, 1, 1, 0])}
    predicted = {"shape": [0, 1, 0, 0], "size": [0, 0, 1, 0]}
    held_out = np.array([False, False, True, True])
    for rows in (slice(0, 2), slice(2, 4)):
        accuracy.update({k: logits_for(v[rows], 3 if k == "shape" else 2) for k, v in predicted.items()},
                        {k: v[rows] for k, v in targets.items()},
                        {"all": np.ones(2, bool), "held_out_pairs": held_out[rows]})

    assert accuracy.result() == {
        "all": {"count": 4, "shape": 0.75, "size": 0.75, "all_correct": 0.5},
        "held_out_pairs": {"count": 2, "shape": 0.5, "size": 1.0, "all_correct": 0.5},
    }


def test_a_class_head_reports_top1_and_top5():
    accuracy = AlignmentAccuracy({"class": [f"bird {i}" for i in range(10)]})
    # The true class (0) ranks first, fourth and eighth.
    logits = np.array([np.arange(10)[::-1], np.roll(np.arange(10)[::-1], 3),
                       np.roll(np.arange(10)[::-1], 7)], np.float32)
    accuracy.update({"class": logits}, {"class": np.zeros(3, int)}, {"all": np.ones(3, bool)})

    assert accuracy.result() == {"all": {"count": 3, "class": pytest.approx(1 / 3),
                                          "class_top5": pytest.approx(2 / 3)}}


def test_groups_mark_the_held_out_pairs_and_empty_groups_are_left_out():
    truths = [dict(shape="circle", color="purple"), dict(shape="circle", color="red")]
    groups = alignment.groups_for(truths)
    assert groups["all"].tolist() == [True, True]
    assert groups["held_out_pairs"].tolist() == [True, False]
    assert list(alignment.groups_for([{"class": "wren"}])) == ["all"]

    accuracy = AlignmentAccuracy({"class": ["wren", "finch"]})
    accuracy.update({"class": logits_for([0], 2)}, {"class": np.array([0])},
                    {"all": np.array([True]), "held_out_pairs": np.array([False])})
    assert list(accuracy.result()) == ["all"]


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    """A domain classifier trained on real 32-pixel shapes images, once for this module."""
    # 6,400 images fitted for 8 epochs: the least that reads small 32-pixel
    # objects' shape and size well enough for 98 % all-correct.
    dataset = shapes.generate(num_images=8000, captions_per_image=1, image_size=IMAGE_SIZE, seed=1)
    parts = domain_classifier.classifier_parts(dataset, IMAGE_SIZE, str(tmp_path_factory.mktemp("data")))
    classifier = domain_classifier.build_classifier(dataset, IMAGE_SIZE, width=32)
    domain_classifier.fit_classifier(classifier, dataset, parts, epochs=8, batch_size=32, seed=0)
    return classifier


@pytest.fixture(scope="module")
def rendered():
    """Real images drawn for captions of a data set the judge never saw: (images, truths)."""
    captions = shapes.generate(num_images=500, captions_per_image=1, image_size=IMAGE_SIZE, seed=21,
                               workers=1)
    examples = [e for split in captions.splits.values() for e in split]
    truths = [domain_classifier.truth(captions, e) for e in examples]
    images = np.stack([shapes.render(truth, IMAGE_SIZE, np.random.default_rng(i))
                       for i, truth in enumerate(truths)])
    return pixels.to_model_range(images), truths


def test_real_images_of_their_own_captions_align(judge, rendered):
    images, truths = rendered
    result = alignment.score_images(judge, images, truths)

    assert result["all"]["count"] == len(truths)
    assert result["held_out_pairs"]["count"] > 20
    for group in ("all", "held_out_pairs"):
        accuracy = result[group]
        # The held-out group has about 50 images: one miss is already 2 %, so
        # it gets the looser bound and the 500-image group the tight one.
        bound = 0.98 if group == "all" else 0.95
        for name in ("shape", "color", "background", "size", "position", "all_correct"):
            assert accuracy[name] >= bound, (group, name, accuracy)


def test_shuffled_captions_score_near_chance(judge, rendered):
    images, truths = rendered
    shuffled = [truths[i] for i in np.random.default_rng(0).permutation(len(truths))]
    result = alignment.score_images(judge, images, shuffled)["all"]

    for name, labels in judge.heads.items():
        assert result[name] < 1 / len(labels) + 0.08, (name, result)
    assert result["all_correct"] < 0.01
