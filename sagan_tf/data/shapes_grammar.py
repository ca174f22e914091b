"""The caption grammar of the built-in captioned-shapes data set.

Every caption is made from a template and synonym choices and parses back
to its attributes with `parse_caption`; the tests parse every caption, so
the attributes the data set records (and evaluation scores against) are
what the text says.
Which colour belongs to the object and which to the background is carried
by syntax (the noun a colour sits next to), never by the colour words alone:
some templates name the background first.
"""

import re

SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
COLORS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black", "pink", "cyan")
SIZES = ("small", "medium", "large")
POSITIONS = (
    "top_left", "top", "top_right",
    "left", "center", "right",
    "bottom_left", "bottom", "bottom_right",
)
# What each image's attribute names, and the values it takes.
ATTRIBUTES = {"shape": SHAPES, "color": COLORS, "background": COLORS, "size": SIZES, "position": POSITIONS}

SHAPE_WORDS = {
    "circle": ("circle", "round shape", "disk"),
    "square": ("square", "box", "block"),
    "triangle": ("triangle", "three sided shape", "wedge"),
    "diamond": ("diamond", "rhombus", "lozenge"),
    "star": ("star", "five pointed star", "star shape"),
    "cross": ("cross", "plus sign", "plus shape"),
}
SIZE_WORDS = {
    "small": ("small", "little", "tiny"),
    "medium": ("medium", "medium sized", "mid sized"),
    "large": ("large", "big", "huge"),
}
POSITION_WORDS = {
    "top_left": ("in the top left corner", "at the upper left", "in the top left"),
    "top": ("at the top", "at the top center", "in the upper middle"),
    "top_right": ("in the top right corner", "at the upper right", "in the top right"),
    "left": ("on the left", "at the left side", "in the middle left"),
    "center": ("in the center", "in the middle", "at the centre"),
    "right": ("on the right", "at the right side", "in the middle right"),
    "bottom_left": ("in the bottom left corner", "at the lower left", "in the bottom left"),
    "bottom": ("at the bottom", "at the bottom center", "in the lower middle"),
    "bottom_right": ("in the bottom right corner", "at the lower right", "in the bottom right"),
}
BACKGROUND_NOUNS = ("background", "backdrop", "canvas")

# Slots: {size} {color} {shape} {bg} {pos} {bgnoun}. Object colour always
# touches the shape noun ("red circle", "circle is red", "circle colored red");
# background colour always touches a background noun.
TEMPLATES = (
    "a {size} {color} {shape} {pos} on a {bg} {bgnoun}",
    "on a {bg} {bgnoun} sits a {size} {color} {shape} {pos}",
    "there is a {size} {color} {shape} {pos}, the {bgnoun} is {bg}",
    "{bg} {bgnoun} with a {color} {shape} {pos}, {size} in size",
    "the picture shows a {size} {color} {shape} {pos} against a {bg} {bgnoun}",
    "{pos} there is a {size} {color} {shape}; the {bgnoun} is {bg}",
    "a {color} {shape} sits {pos} on a {bgnoun} of {bg}, it is {size}",
    "this image has a {bg} {bgnoun} and a {size} {color} {shape} {pos}",
    "{size} {color} {shape}, {pos}, {bg} {bgnoun}",
    "against a {bg} {bgnoun}, a {size} {color} {shape} appears {pos}",
    "we see a {color} {shape} {pos}; it is {size} and the {bgnoun} is {bg}",
    "a {bg} {bgnoun} with a {size} {color} {shape} placed {pos}",
    "there is a {size} {color} {shape} {pos} on a plain {bg} {bgnoun}",
    "the {bg} {bgnoun} holds a {size} {color} {shape} {pos}",
    "{pos}, a {size} {color} {shape} rests on a {bg} {bgnoun}",
    "an image of a {size} {color} {shape} {pos} with a {bgnoun} of {bg}",
    "the {shape} is {color}, {size}, and placed {pos} on a {bg} {bgnoun}",
    "a simple drawing: {size} {color} {shape}, {pos}, on a {bg} {bgnoun}",
    "look at the {size} {color} {shape} {pos} over a {bg} {bgnoun}",
    "{bg} {bgnoun}, {color} {shape}, {size}, {pos}",
    "a {size} {shape} colored {color} {pos} on a {bg} {bgnoun}",
    "the {bgnoun} is {bg} and {pos} sits a {size} {color} {shape}",
    "one {size} {color} {shape} drawn {pos} of a {bg} {bgnoun}",
    "a {bg} {bgnoun}; {pos} you can see a {size} {color} {shape}",
)


_ARTICLE_BEFORE_VOWEL = re.compile(r"\b(a) ([aeiou])")


def make_caption(attributes, template, choices):
    """Fills `template` (an index) with the synonyms picked by `choices`.

    `choices` maps shape/size/position/bgnoun to synonym indices, so the same
    sentence can be re-made with other attributes (e.g. colours swapped).
    """
    text = TEMPLATES[template].format(
        size=SIZE_WORDS[attributes["size"]][choices["size"]],
        color=attributes["color"],
        shape=SHAPE_WORDS[attributes["shape"]][choices["shape"]],
        bg=attributes["background"],
        pos=POSITION_WORDS[attributes["position"]][choices["position"]],
        bgnoun=BACKGROUND_NOUNS[choices["bgnoun"]],
    )
    text = _ARTICLE_BEFORE_VOWEL.sub(r"\1n \2", text)
    return text[0].upper() + text[1:] + "."


def random_caption(attributes, rng):
    """A caption for `attributes` with a random template and synonyms."""
    template = int(rng.integers(len(TEMPLATES)))
    choices = {
        "shape": int(rng.integers(3)),
        "size": int(rng.integers(3)),
        "position": int(rng.integers(3)),
        "bgnoun": int(rng.integers(len(BACKGROUND_NOUNS))),
    }
    return make_caption(attributes, template, choices), template, choices


def _alternation(words):
    # Longest first, so "medium sized" wins over "medium".
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_SHAPE_TO_CANONICAL = {w: s for s, ws in SHAPE_WORDS.items() for w in ws}
_SIZE_TO_CANONICAL = {w: s for s, ws in SIZE_WORDS.items() for w in ws}
_POSITION_TO_CANONICAL = {w: p for p, ws in POSITION_WORDS.items() for w in ws}
_COLOR = _alternation(COLORS)
_SHAPE = _alternation(_SHAPE_TO_CANONICAL)
_BGNOUN = _alternation(BACKGROUND_NOUNS)
_SIZE = _alternation(_SIZE_TO_CANONICAL)
_OBJECT_PATTERNS = (
    re.compile(rf"\b({_COLOR}) ({_SHAPE})\b"),
    re.compile(rf"\b({_SHAPE}) (?:is|colored) ({_COLOR})\b"),
)
_BACKGROUND_PATTERNS = (
    re.compile(rf"\b({_COLOR}) (?:{_BGNOUN})\b"),
    re.compile(rf"\b(?:{_BGNOUN}) (?:is|of) ({_COLOR})\b"),
)
_SIZE_PATTERN = re.compile(rf"\b({_SIZE})\b")
_POSITION_PATTERN = re.compile(rf"\b({_alternation(_POSITION_TO_CANONICAL)})\b")


def parse_caption(caption):
    """Recovers {shape, color, background, size, position} from a caption.

    Raises ValueError when the caption is not from the grammar.
    """
    text = caption.lower().rstrip(".")
    result = {}
    for pattern in _OBJECT_PATTERNS:
        match = pattern.search(text)
        if match:
            first, second = match.groups()
            color, shape = (first, second) if first in COLORS else (second, first)
            result["color"] = color
            result["shape"] = _SHAPE_TO_CANONICAL[shape]
            break
    for pattern in _BACKGROUND_PATTERNS:
        match = pattern.search(text)
        if match:
            result["background"] = match.group(1)
            break
    match = _SIZE_PATTERN.search(text)
    if match:
        result["size"] = _SIZE_TO_CANONICAL[match.group(1)]
    match = _POSITION_PATTERN.search(text)
    if match:
        result["position"] = _POSITION_TO_CANONICAL[match.group(1)]
    missing = set(ATTRIBUTES) - set(result)
    if missing:
        raise ValueError(f"caption {caption!r} does not name: {', '.join(sorted(missing))}")
    return result
