import collections
import re

import numpy as np
import pytest

from sagan_tf.data import shapes
from sagan_tf.data import shapes_grammar as grammar


def test_palette_shapes_and_templates_are_rich_enough():
    assert set(grammar.SHAPES) >= {"circle", "square", "triangle", "diamond", "star", "cross"}
    assert len(shapes.PALETTE) >= 8 and set(shapes.PALETTE) == set(grammar.COLORS)
    assert len(grammar.TEMPLATES) >= 20
    assert "disk" in grammar.SHAPE_WORDS["circle"] and "round shape" in grammar.SHAPE_WORDS["circle"]
    # Some templates name the background colour before the object colour.
    assert sum(t.index("{bg}") < t.index("{color}") for t in grammar.TEMPLATES) >= 5


def test_every_caption_parses_back_to_its_attributes(tiny_shapes):
    checked = 0
    for examples in tiny_shapes.splits.values():
        for example in examples:
            assert len(example.captions) == 3
            for caption, attributes in zip(example.captions, example.attributes):
                parsed = grammar.parse_caption(caption)
                assert parsed == {k: attributes[k] for k in parsed}, caption
                checked += 1
    assert checked == 900


def test_every_template_and_synonym_parses():
    attributes = {"shape": "triangle", "color": "orange", "background": "blue",
                  "size": "medium", "position": "bottom_left"}
    for template in range(len(grammar.TEMPLATES)):
        for pick in range(3):
            choices = {"shape": pick, "size": pick, "position": pick, "bgnoun": pick}
            caption = grammar.make_caption(attributes, template, choices)
            assert grammar.parse_caption(caption) == attributes, caption


def test_which_colour_is_which_is_carried_by_syntax():
    base = {"shape": "circle", "color": "red", "background": "blue", "size": "small", "position": "center"}
    swapped = dict(base, color="blue", background="red")
    template = 1  # "on a {bg} background sits a {size} {color} {shape} {pos}"
    choices = {"shape": 0, "size": 0, "position": 0, "bgnoun": 0}
    a, b = grammar.make_caption(base, template, choices), grammar.make_caption(swapped, template, choices)
    assert collections.Counter(a.split()) == collections.Counter(b.split())  # same bag of words
    assert grammar.parse_caption(a)["color"] == "red" and grammar.parse_caption(b)["color"] == "blue"
    assert a == "On a blue background sits a small red circle in the center."


def test_parse_refuses_text_outside_the_grammar():
    with pytest.raises(ValueError, match="does not name"):
        grammar.parse_caption("a bird with a red crown")


def test_deterministic_from_seed_and_no_two_images_alike():
    a = shapes.generate(40, 2, 32, seed=5, workers=1)
    b = shapes.generate(40, 2, 32, seed=5, workers=2)
    c = shapes.generate(40, 2, 32, seed=6, workers=1)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.captions("train") == b.captions("train")
    assert not np.array_equal(a.images, c.images)
    flat = a.images.reshape(len(a.images), -1)
    assert len({row.tobytes() for row in flat}) == len(flat)


def test_held_out_pairs_only_in_test(tiny_shapes):
    held_out = {shapes.class_index(s, c) for s, c in shapes.HELD_OUT_PAIRS}
    for split in ("train", "validation"):
        assert not {e.label for e in tiny_shapes.splits[split]} & held_out
    assert {e.label for e in tiny_shapes.splits["test"]} & held_out
    assert len(tiny_shapes.class_names) == 60


def test_render_draws_the_named_colours_and_places():
    attributes = {"shape": "square", "color": "red", "background": "blue", "size": "large", "position": "top_left"}
    image = shapes.render(attributes, 64).astype(int)
    assert tuple(image[0, -1]) == shapes.PALETTE["blue"]  # far corner is background
    assert tuple(image[16, 16]) == shapes.PALETTE["red"]  # object centred at the top-left cell
    assert tuple(image[48, 48]) == shapes.PALETTE["blue"]
    # Anti-aliased: edge pixels mix the two colours.
    colours = {tuple(p) for p in image.reshape(-1, 3)}
    assert len(colours) > 2


def test_object_never_matches_background(tiny_shapes):
    for example in tiny_shapes.splits["train"]:
        assert example.attributes[0]["color"] != example.attributes[0]["background"]


def test_cache_round_trip(tmp_path):
    first, path = shapes.build_or_load(str(tmp_path), 30, 2, 32, 1)
    second, same_path = shapes.build_or_load(str(tmp_path), 30, 2, 32, 1)
    assert path == same_path
    np.testing.assert_array_equal(first.images, second.images)
    assert first.splits["test"][0] == second.splits["test"][0]


def test_colour_swapped_pairs_share_words_but_not_meaning(tiny_shapes):
    originals, swapped, labels, swapped_labels = shapes.colour_swapped_pairs(tiny_shapes.splits["validation"])
    assert len(originals) > 0 and (labels != swapped_labels).all()
    held_out = {shapes.class_index(s, c) for s, c in shapes.HELD_OUT_PAIRS}
    assert not (set(labels) | set(swapped_labels)) & held_out
    def words(text):
        # The article follows the next word ("a red", "an orange").
        return collections.Counter(w for w in re.findall(r"[a-z]+", text.lower()) if w not in ("a", "an"))

    for a, b in zip(originals, swapped):
        assert words(a) == words(b)
        pa, pb = grammar.parse_caption(a), grammar.parse_caption(b)
        assert (pa["color"], pa["background"]) == (pb["background"], pb["color"])
