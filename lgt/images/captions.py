"""Dense captions written from a scene graph, in varied natural language.

Every claim is derived from the objects' boxes, attributes and occlusions with
strict rules (no overlap in x for left/right, no overlap in y for above/below,
areas 1.5x apart for larger), so a reader can check the caption against the
picture. Phrasing, order and which relations are mentioned vary with the seed.
"""

from __future__ import annotations

import random
from collections import Counter

from lgt.images.scenes import NUMBER_WORDS, Scene, SceneObject
from lgt.language import plural_for, with_article

TEXTURE_WORDS = {
    "plain": ("solid", "plain"),
    "metallic": ("metallic", "shiny metallic"),
    "striped": ("striped",),
    "dotted": ("dotted", "polka-dotted"),
    "checkered": ("checkered",),
}

OPENINGS = (
    "The image shows {n} {things} on a {bg} background.",
    "{N} {things} are scattered across a {bg} backdrop.",
    "This picture contains {n} {things} set against a plain {bg} surface.",
    "On a {bg} background there are {n} {things}.",
    "A flat {bg} scene holds {n} {things}.",
)
ORDERS = {
    "left_to_right": ("From left to right:", "Reading from left to right,", None),
    "top_to_bottom": ("From top to bottom:", "Going from the top down,", None),
    "largest_first": ("Starting with the biggest:", None),
    "scattered": (None,),
}
OBJECT_TEMPLATES = (
    "{Region} there is {desc}.",
    "{Desc} sits {region}.",
    "{Desc} can be seen {region}.",
    "{Region} is {desc}.",
    "There is {desc} {region}.",
)
RELATION_TEMPLATES = (
    "It is {rel} the {ref}.",
    "It lies {rel} the {ref}.",
    "This one is {rel} the {ref}.",
)
OCCLUSION_TEMPLATES = (
    "The {front} partly covers the {back}.",
    "The {back} is partly hidden behind the {front}.",
    "Part of the {back} is tucked behind the {front}.",
    "The {front} overlaps the {back} and sits in front of it.",
)
REGIONS = {
    ("top", "left"): ("in the top-left corner", "near the upper left"),
    ("top", "center"): ("at the top", "near the top edge"),
    ("top", "right"): ("in the top-right corner", "near the upper right"),
    ("middle", "left"): ("on the left side", "along the left edge"),
    ("middle", "center"): ("in the middle of the image", "near the center"),
    ("middle", "right"): ("on the right side", "along the right edge"),
    ("bottom", "left"): ("in the bottom-left corner", "near the lower left"),
    ("bottom", "center"): ("at the bottom", "near the bottom edge"),
    ("bottom", "right"): ("in the bottom-right corner", "near the lower right"),
}


def number(n: int) -> str:
    return NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)


def region(o: SceneObject, width: int, height: int) -> tuple[str, str]:
    cx, cy = o.center
    row = "top" if cy < height / 3 else "bottom" if cy >= 2 * height / 3 else "middle"
    col = "left" if cx < width / 3 else "right" if cx >= 2 * width / 3 else "center"
    return row, col


def left_of(a: SceneObject, b: SceneObject) -> bool:
    return a.bbox[2] <= b.bbox[0]


def above(a: SceneObject, b: SceneObject) -> bool:
    return a.bbox[3] <= b.bbox[1]


def relation(a: SceneObject, b: SceneObject) -> str | None:
    """A strict spatial relation of a to b, or None where the boxes overlap on both axes."""
    if left_of(a, b):
        return "to the left of"
    if left_of(b, a):
        return "to the right of"
    if above(a, b):
        return "above"
    if above(b, a):
        return "below"
    return None


def referring_name(o: SceneObject, objects: list[SceneObject]) -> str | None:
    """The shortest attribute phrase that names o and no other object."""
    others = [p for p in objects if p is not o]
    for keys in (("shape",), ("color", "shape"), ("size", "color", "shape"), ("size", "color", "texture", "shape")):
        attrs = o.attributes()
        if not any(all(p.attributes()[k] == attrs[k] for k in keys) for p in others):
            words = []
            for k in keys:
                v = attrs[k]
                words.append(TEXTURE_WORDS[v][0] if k == "texture" else v)
            return " ".join(words)
    return None


def describe(o: SceneObject, rng: random.Random) -> str:
    tex = rng.choice(TEXTURE_WORDS[o.texture])
    style = rng.randrange(3)
    if style == 0:
        phrase = f"{o.size} {o.color} {tex} {o.shape}"
    elif style == 1:
        phrase = f"{o.size} {tex} {o.color} {o.shape}"
    elif o.texture in ("striped", "dotted", "checkered"):
        phrase = f"{o.size} {o.color} {o.shape} with a {tex} pattern"
    else:
        phrase = f"{tex} {o.color} {o.shape} of {o.size} size"
    return with_article(phrase)


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


def caption(scene: Scene, rng: random.Random) -> str:
    objs = scene.objects
    sentences: list[str] = []
    things = rng.choice(("shapes", "objects"))
    sentences.append(
        rng.choice(OPENINGS).format(n=number(len(objs)), N=_cap(number(len(objs))), things=things, bg=scene.background)
    )
    if rng.random() < 0.75:
        counts = Counter(o.shape for o in objs)
        parts = [
            f"{number(c) if c > 1 else 'one'} {plural_for(s, c)}"
            for s, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ]
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        sentences.append(
            rng.choice(("In total there are {}.", "Among them are {}.", "They include {}.")).format(listed)
        )

    order = rng.choice(list(ORDERS))
    if order == "left_to_right":
        seq = sorted(objs, key=lambda o: (o.center[0], o.center[1]))
    elif order == "top_to_bottom":
        seq = sorted(objs, key=lambda o: (o.center[1], o.center[0]))
    elif order == "largest_first":
        seq = sorted(objs, key=lambda o: (-o.pixels, o.z))
    else:
        seq = objs[:]
        rng.shuffle(seq)
    lead = rng.choice(ORDERS[order])

    names = {o.object_id: referring_name(o, objs) for o in objs}
    for i, o in enumerate(seq):
        where = rng.choice(REGIONS[region(o, scene.width, scene.height)])
        desc = describe(o, rng)
        s = rng.choice(OBJECT_TEMPLATES).format(Region=_cap(where), region=where, desc=desc, Desc=_cap(desc))
        if i == 0 and lead:
            s = f"{lead} {s[0].lower()}{s[1:]}"
        sentences.append(s)
        # one relation to the nearest object that has a strict relation and a unique name
        if rng.random() < 0.6:
            cands = [
                (abs(p.center[0] - o.center[0]) + abs(p.center[1] - o.center[1]), p)
                for p in objs
                if p is not o and names[p.object_id] and relation(o, p)
            ]
            if cands:
                _, ref = min(cands, key=lambda t: t[0])
                sentences.append(rng.choice(RELATION_TEMPLATES).format(rel=relation(o, ref), ref=names[ref.object_id]))

    by_id = {o.object_id: o for o in objs}
    for front, back, px in scene.occlusions:
        if px >= 0.02 * by_id[back].pixels and names[front] and names[back]:
            sentences.append(rng.choice(OCCLUSION_TEMPLATES).format(front=names[front], back=names[back]))

    largest = sorted(objs, key=lambda o: -o.pixels)
    if (
        len(largest) > 1
        and largest[0].pixels >= 1.5 * largest[1].pixels
        and names[largest[0].object_id]
        and rng.random() < 0.5
    ):
        sentences.append(f"The {names[largest[0].object_id]} is clearly the largest object.")
    return " ".join(sentences)
