"""The domain classifier: heads, the IS logits, serialization, its image parts and tiny training."""

import keras
import numpy as np
import pytest
import scipy.special

from sagan_tf import pixels
from sagan_tf.data import shapes
from sagan_tf.data import shapes_grammar as grammar
from sagan_tf.data.records import CaptionedDataset, Example
from sagan_tf.evaluation import alignment, domain_classifier
from sagan_tf.evaluation.domain_classifier import DomainClassifier
from sagan_tf.workdir import Workdir


def classed_dataset(labels):
    examples = [Example(name=f"bird_{i}", captions=["a bird"], label=label) for i, label in enumerate(labels)]
    return CaptionedDataset(name="birds", class_names=["albatross", "wren", "finch"],
                            splits={"train": examples, "validation": [], "test": []})


def small_classifier(image_size=16):
    heads, score_heads = domain_classifier.SHAPES_HEADS, domain_classifier.SHAPES_SCORE_HEADS
    return DomainClassifier(heads, score_heads, image_size=image_size, width=4, feature_dim=16)


def test_heads_follow_the_data_set(tiny_shapes):
    heads, score_heads = domain_classifier.heads_for(tiny_shapes)
    assert list(heads) == ["shape", "color", "background", "size", "position"]
    assert heads["position"] == list(grammar.POSITIONS)
    assert score_heads == ("shape", "color")

    heads, score_heads = domain_classifier.heads_for(classed_dataset([0, 2, 1]))
    assert heads == {"class": ["albatross", "wren", "finch"]} and score_heads == ("class",)
    with pytest.raises(ValueError, match="inception_v3"):
        domain_classifier.heads_for(classed_dataset([0, -1, 1]))


def test_score_logits_are_the_shapes_class_distribution():
    classifier = small_classifier()
    rng = np.random.default_rng(0)
    head_logits = {name: rng.normal(size=(3, len(labels))).astype("float32")
                   for name, labels in classifier.heads.items()}
    joint = scipy.special.softmax(np.asarray(classifier.score_logits(head_logits)), axis=-1)

    assert joint.shape == (3, 60)
    shape_p = scipy.special.softmax(head_logits["shape"], axis=-1)
    color_p = scipy.special.softmax(head_logits["color"], axis=-1)
    expected = (shape_p[:, :, None] * color_p[:, None, :]).reshape(3, 60)
    np.testing.assert_allclose(joint, expected, rtol=1e-5, atol=1e-7)
    # Column k is the data set's class k = (shape, colour).
    best = [shapes.class_index(grammar.SHAPES[s], grammar.COLORS[c])
            for s, c in zip(shape_p.argmax(-1), color_p.argmax(-1))]
    assert joint.argmax(-1).tolist() == best


def test_keras_file_round_trip(tmp_path):
    classifier = small_classifier()
    images = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    before = classifier(images)
    path = str(tmp_path / "classifier.keras")
    classifier.save(path)
    loaded = keras.models.load_model(path)

    assert loaded.get_config() == classifier.get_config()
    for name in classifier.heads:
        np.testing.assert_allclose(loaded(images)[name], before[name], rtol=1e-5, atol=1e-6)
    features = loaded.outputs(images)[1]
    assert features.shape == (2, 16)


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="score_heads"):
        DomainClassifier({"class": ["a", "b"]}, ["colour"])
    with pytest.raises(ValueError, match="at least two labels"):
        DomainClassifier({"class": ["a"]}, ["class"])
    with pytest.raises(ValueError, match="power of two"):
        DomainClassifier({"class": ["a", "b"]}, ["class"], image_size=20)
    with pytest.raises(ValueError, match="'shape' head does not know 'hexagon'"):
        small_classifier().encode([{"shape": "hexagon", "color": "red", "background": "blue",
                                    "size": "small", "position": "top"}])


def test_parts_are_disjoint_stable_and_cover_every_image(tiny_shapes, tmp_path):
    parts = domain_classifier.classifier_parts(tiny_shapes, 32, str(tmp_path))
    names = {part: [e.name for e in examples] for part, (_, examples) in parts.items()}
    every = [e.name for split in tiny_shapes.splits.values() for e in split]

    assert sorted(sum(names.values(), [])) == sorted(every)
    assert len(names["fit"]) > 0.7 * len(every) and names["check"] and names["monitor"]
    for part, (images, examples) in parts.items():
        assert all(domain_classifier.part_of(e.name) == part for e in examples)
        np.testing.assert_array_equal(images, tiny_shapes.images[[e.image_index for e in examples]])
    test = tiny_shapes.splits["test"]
    unseen = domain_classifier.unseen_mask(test)
    assert unseen.tolist() == [e.name not in names["fit"] for e in test]


def test_missing_classifier_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="sagan-tf train-classifier"):
        domain_classifier.load_domain_classifier(Workdir(str(tmp_path)))


def test_trains_on_tiny_data_and_reads_unseen_real_images(tmp_path):
    dataset = shapes.generate(num_images=600, captions_per_image=1, image_size=32, seed=3, workers=1)
    parts = domain_classifier.classifier_parts(dataset, 32, str(tmp_path))
    classifier = domain_classifier.build_classifier(dataset, 32, width=16)
    history = domain_classifier.fit_classifier(classifier, dataset, parts, epochs=10, batch_size=16)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert "val_loss" in history  # the monitor part is the validation data

    # Fresh images from another seed: real pictures the classifier never saw.
    unseen = shapes.generate(num_images=200, captions_per_image=1, image_size=32, seed=11, workers=1)
    examples = [e for split in unseen.splits.values() for e in split]
    truths = [domain_classifier.truth(unseen, e) for e in examples]
    images = pixels.to_model_range(unseen.images[[e.image_index for e in examples]])
    accuracy = alignment.score_images(classifier, images, truths)["all"]

    # A few hundred images and ten epochs: the large attributes are learned, the
    # object's colour and size are on their way, its shape needs more (test_alignment).
    assert accuracy["background"] >= 0.95, accuracy
    assert accuracy["position"] >= 0.85, accuracy
    assert accuracy["color"] >= 0.35 and accuracy["size"] >= 0.42, accuracy
