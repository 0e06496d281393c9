"""Plurals and articles of every label we generate questions about, against plurals written by hand."""

import pytest

from lgt.images.scenes import SHAPES
from lgt.language import plural, plural_for, with_article

# COCO's 80 detection labels (instances_*.json categories, in id order) and their plurals
COCO = {
    "person": "people",
    "bicycle": "bicycles",
    "car": "cars",
    "motorcycle": "motorcycles",
    "airplane": "airplanes",
    "bus": "buses",
    "train": "trains",
    "truck": "trucks",
    "boat": "boats",
    "traffic light": "traffic lights",
    "fire hydrant": "fire hydrants",
    "stop sign": "stop signs",
    "parking meter": "parking meters",
    "bench": "benches",
    "bird": "birds",
    "cat": "cats",
    "dog": "dogs",
    "horse": "horses",
    "sheep": "sheep",
    "cow": "cows",
    "elephant": "elephants",
    "bear": "bears",
    "zebra": "zebras",
    "giraffe": "giraffes",
    "backpack": "backpacks",
    "umbrella": "umbrellas",
    "handbag": "handbags",
    "tie": "ties",
    "suitcase": "suitcases",
    "frisbee": "frisbees",
    "skis": "skis",
    "snowboard": "snowboards",
    "sports ball": "sports balls",
    "kite": "kites",
    "baseball bat": "baseball bats",
    "baseball glove": "baseball gloves",
    "skateboard": "skateboards",
    "surfboard": "surfboards",
    "tennis racket": "tennis rackets",
    "bottle": "bottles",
    "wine glass": "wine glasses",
    "cup": "cups",
    "fork": "forks",
    "knife": "knives",
    "spoon": "spoons",
    "bowl": "bowls",
    "banana": "bananas",
    "apple": "apples",
    "sandwich": "sandwiches",
    "orange": "oranges",
    "broccoli": "broccoli",
    "carrot": "carrots",
    "hot dog": "hot dogs",
    "pizza": "pizzas",
    "donut": "donuts",
    "cake": "cakes",
    "chair": "chairs",
    "couch": "couches",
    "potted plant": "potted plants",
    "bed": "beds",
    "dining table": "dining tables",
    "toilet": "toilets",
    "tv": "tvs",
    "laptop": "laptops",
    "mouse": "mice",
    "remote": "remotes",
    "keyboard": "keyboards",
    "cell phone": "cell phones",
    "microwave": "microwaves",
    "oven": "ovens",
    "toaster": "toasters",
    "sink": "sinks",
    "refrigerator": "refrigerators",
    "book": "books",
    "clock": "clocks",
    "vase": "vases",
    "scissors": "scissors",
    "teddy bear": "teddy bears",
    "hair drier": "hair driers",
    "toothbrush": "toothbrushes",
}

# LVIS-style labels: irregular, invariant, -f/-fe, -o, -y, compound, plural-form and sense-qualified nouns
LVIS = {
    "goose": "geese",
    "knife": "knives",
    "bus": "buses",
    "glass": "glasses",
    "leaf": "leaves",
    "wolf": "wolves",
    "tomato": "tomatoes",
    "potato": "potatoes",
    "child": "children",
    "foot": "feet",
    "tooth": "teeth",
    "man": "men",
    "woman": "women",
    "cactus": "cactuses",
    "fish": "fish",
    "deer": "deer",
    "series": "series",
    "box": "boxes",
    "watch": "watches",
    "dress": "dresses",
    "lunch box": "lunch boxes",
    "bench": "benches",
    "candy": "candies",
    "monkey": "monkeys",
    "toy": "toys",
    "strawberry": "strawberries",
    "jersey": "jerseys",
    "shelf": "shelves",
    "loaf": "loaves",
    "hoof": "hoofs",
    "butterfly": "butterflies",
    "wife": "wives",
    "mouse": "mice",
    "jeans": "jeans",
    "sunglasses": "sunglasses",
    "headphones": "headphones",
    "binoculars": "binoculars",
    "asparagus": "asparagus",
    "bow (weapon)": "bows (weapon)",
    "hair dryer": "hair dryers",
    "t-shirt": "t-shirts",
    "TV": "TVs",
}

SCENE = {
    "circle": "circles",
    "square": "squares",
    "triangle": "triangles",
    "star": "stars",
    "hexagon": "hexagons",
    "pentagon": "pentagons",
    "diamond": "diamonds",
    "ring": "rings",
    "cross": "crosses",
    "rectangle": "rectangles",
}


def test_the_coco_list_is_the_80_labels():
    assert len(COCO) == 80


def test_the_scene_list_is_every_shape():
    assert sorted(SCENE) == sorted(SHAPES)  # a new shape must get its plural written here


@pytest.mark.parametrize(("label", "expected"), sorted({**COCO, **LVIS, **SCENE}.items()))
def test_plural(label, expected):
    assert plural(label) == expected


def test_the_plurals_the_issue_found_wrong():
    wrong = {"knife": "knifes", "mouse": "mouses", "scissors": "scissorses", "sheep": "sheeps", "skis": "skises"}
    for label, bad in wrong.items():
        assert plural(label) != bad
    assert plural("broccoli") != "broccolis"


def test_plural_for_counts():
    assert [plural_for("cross", n) for n in (0, 1, 2)] == ["crosses", "cross", "crosses"]
    assert plural_for("sheep", 3) == "sheep"
    assert plural_for("knife", 1) == "knife"


def test_an_empty_label_is_an_error():
    with pytest.raises(ValueError, match="empty label"):
        plural(" ")


def test_articles_by_sound():
    assert with_article("orange cross") == "an orange cross"
    assert with_article("small striped star") == "a small striped star"
    assert with_article("uniform circle") == "a uniform circle"  # a consonant sound
    assert with_article("hour") == "an hour"
    assert with_article("metallic red ring") == "a metallic red ring"
