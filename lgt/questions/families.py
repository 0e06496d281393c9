"""Stage-1 programmatic question families: verifiable MCQs computed from object metadata.

Each family enumerates every valid candidate in one image and skips, with a
counted reason, any whose gold answer would be ambiguous: a referring
expression that fits more than one object, or a near-tie under the recipe's
margins. A sampled candidate is then rendered into a question (one of the
family's phrasings), its gold answer and three distractors. Gold answers come
from labels, boxes and attributes only.

A referring expression is the label plus the fewest attributes that single the
object out; attributes are tried in the recipe's order and written in reverse
("small striped red square" when the order is color, texture, size).

Each family is one `Family` declaration (its section below) and one entry of
`FAMILIES`; the recipe's validation and `generate` read nothing else.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lgt.ids import content_id
from lgt.language import plural

SKIP_REASONS = (
    "ambiguous_reference",
    "caption_disagrees",  # the caption gives another count for the label (non-exhaustive sources)
    "caption_says_several",  # the label alone would name one object, but the caption speaks of several
    "crowd_region",  # the label has a crowd region: not countable, never "the only X"
    "edge_centre_disagree",
    "incomplete_annotations",  # a crowd, a group box or the caption says objects are unboxed: no "of all objects"
    "near_tie",
    "no_attributes",  # the image's objects carry none of the recipe's attributes (COCO): no attribute questions
    "no_clear_relation",
    "not_countable",  # a label the recipe lists as boxed in groups (a bunch of bananas): not counted, not named
    "tiny_object",  # below the recipe's minimum area: answerable only by elimination, its label's count unverifiable
    "too_few_distractors",
    "too_few_objects",
)

RELATION_WORDS = {"left": "to the left", "right": "to the right", "above": "above", "below": "below"}
RELATION_OF = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}
EXTREME_WORDS = {
    "left": "furthest to the left",
    "right": "furthest to the right",
    "top": "closest to the top",
    "bottom": "closest to the bottom",
}
CLOSEST_WORDS = {"closest": "closest to", "farthest": "farthest from"}
SAME_COUNT = "the same number of each"
NONE_OF_EITHER = "there are none of either"

# COCO boxes these as bunches and piles as often as one by one (its food, books), so their counts are not checkable
GROUP_BOXED_LABELS = (
    "banana",
    "apple",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "donut",
    "cake",
    "sandwich",
    "pizza",
    "book",
)


def phrasing_slots(phrasing: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(phrasing) if name is not None}


class Obj:
    """One object of an image row, with what the families read precomputed.

    `area` is what the object covers in the image (its mask or segmentation where the source has one),
    not its box: a star fills about 40 % of its box, a square all of it.
    """

    __slots__ = ("area", "area_from", "attrs", "crowd", "cx", "cy", "id", "label", "x1", "x2", "y1", "y2")

    def __init__(
        self,
        id: str,
        label: str,
        box: Sequence[float],
        attrs: dict[str, str],
        area: float | None = None,
        area_from: str = "box",
        crowd: bool = False,
    ):
        self.id, self.label, self.attrs, self.crowd = id, label, attrs, crowd
        self.x1, self.y1, self.x2, self.y2 = (float(v) for v in box)
        self.cx, self.cy = (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2
        box_area = (self.x2 - self.x1) * (self.y2 - self.y1)
        self.area, self.area_from = (box_area, "box") if area is None else (float(area), area_from)


def objects_of(row: dict[str, Any]) -> list[Obj]:
    """The objects of an `images` row (attributes stored as a list of {key, value})."""
    return [
        Obj(
            o["object_id"],
            o["label"],
            o["bbox_xyxy"],
            {a["key"]: a["value"] for a in o["attributes"] or ()},
            o.get("area"),
            o.get("area_from") or "box",
            bool(o.get("crowd")),
        )
        for o in row["objects"]
    ]


_NUMBERS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
_SEVERAL = ("several", "many", "group of", "groups of", "crowd of", "bunch of", "herd of", "flock of", "pile of")


def _mentions(caption: str, noun: str) -> list[re.Match]:
    return list(re.finditer(rf"\b{re.escape(noun.lower())}\b", caption))


@functools.lru_cache(maxsize=4096)  # every family and the view ask it of the same caption and labels
def caption_counts(caption: str, label: str) -> tuple[frozenset[int], bool, bool]:
    """What a caption says of a label: the numbers it gives ("two dogs", "3 dogs"), whether it speaks of
    several (the plural, "a group of ..."), and whether it mentions the label at all."""
    text = caption.lower()
    many = plural(label)
    hits = _mentions(text, many)
    numbers = set()
    for m in hits:
        words = re.findall(r"[\w']+", text[: m.start()])[-2:]  # "two dogs", "two brown dogs"
        for w in words:
            if w in _NUMBERS or w.isdigit():
                numbers.add(_NUMBERS.get(w, int(w) if w.isdigit() else 0))
                break
    several = (
        (many != label and bool(hits))
        or any(n >= 2 for n in numbers)
        or any(_mentions(text, f"{q} {many}") for q in _SEVERAL)
    )
    mentioned = several or bool(_mentions(text, label))
    return frozenset(numbers), several, mentioned


Group = tuple[tuple[tuple[str, str], ...], str | None]  # ((attribute, value), ...), label or None for "objects"


@dataclass
class Rules:
    """What the families need from the recipe (see `lgt.questions.settings.QuestionsGroundedSettings`)."""

    attributes: dict[str, tuple[str, list[str]]]  # key -> (noun, vocabulary), most distinctive first
    position_gap: float = 0.02
    area_ratio: float = 0.10
    distance_ratio: float = 0.10
    extreme_gap: float = 0.02
    labels: Sequence[str] = ()  # extra label vocabulary for existence distractors
    min_area: float = 0.0  # objects below this fraction of the image are never named, and block counting
    uncountable: frozenset[str] = frozenset()  # labels boxed in groups: never counted
    exhaustive: bool = True  # every instance of a label is annotated (synthetic scenes); else the caption is read


class View:
    """One image's objects with memoised referring expressions."""

    def __init__(self, image_id: str, width: int, height: int, objects: list[Obj], rules: Rules, caption: str = ""):
        self.image_id, self.width, self.height, self.objects, self.rules = image_id, width, height, objects, rules
        self.caption = caption
        self.by_id = {o.id: o for o in objects}
        self.tiny = {o.id for o in objects if o.area < rules.min_area * width * height}
        self.crowd_labels = {o.label for o in objects if o.crowd}
        labels = {o.label for o in objects}
        self.several = set() if rules.exhaustive else {lab for lab in labels if caption_counts(caption, lab)[1]}
        self.group_labels = labels & rules.uncountable  # one box may hold a bunch: "the banana" may be several
        # every object a person would count is boxed one by one: needed where "of all the objects" is asked
        self.complete = rules.exhaustive or not (
            self.crowd_labels
            or self.group_labels
            or any(self._caption_disagrees(lab, sum(o.label == lab for o in objects)) for lab in labels)
        )
        self.keys = [k for k in rules.attributes if any(k in o.attrs for o in objects)]
        self._refs: dict[tuple[str, str | None], str | None] = {}
        self._members: dict[Group, list[Obj]] = {}
        self._peers: dict[str, list[Obj]] = {}
        for o in objects:
            self._peers[o.id] = [p for p in objects if p is not o and p.label == o.label]
        for o in objects:  # every group a family counts, filled in one pass
            self._members.setdefault(((), o.label), []).append(o)
            for k in self.keys:
                if k in o.attrs:
                    self._members.setdefault((((k, o.attrs[k]),), None), []).append(o)
                    self._members.setdefault((((k, o.attrs[k]),), o.label), []).append(o)
        self.groups = sorted(self._members, key=lambda g: (len(g[0]), g[0], g[1] or ""))
        self.names = {o.id: self.ref(o) for o in objects}  # referring expressions using any attribute
        self.named = [o for o in objects if self.names[o.id] is not None]

    def ref(self, o: Obj, exclude: str | None = None) -> str | None:
        """The shortest phrase (no article) that names o and no other object, not using `exclude`."""
        k = (o.id, exclude)
        if k not in self._refs:
            self._refs[k] = self._make_ref(o, exclude)
        return self._refs[k]

    def _make_ref(self, o: Obj, exclude: str | None) -> str | None:
        if o.id in self.tiny or o.label in self.crowd_labels or o.label in self.group_labels:
            return None
        keys = [k for k in self.keys if k != exclude and k in o.attrs]
        peers = self._peers[o.id]
        for r in range(len(keys) + 1):
            if r == 0 and o.label in self.several:  # "the dog" while the caption says "two dogs"
                continue
            for combo in itertools.combinations(keys, r):
                if not any(all(p.attrs.get(k) == o.attrs[k] for k in combo) for p in peers):
                    return " ".join([o.attrs[k] for k in reversed(combo)] + [o.label])
        return None

    def unnamed(self, o: Obj) -> str:
        """Why `o` has no referring expression: the skip reason to count."""
        if o.id in self.tiny:
            return "tiny_object"
        if o.label in self.crowd_labels:
            return "crowd_region"
        if o.label in self.group_labels:
            return "not_countable"
        if o.label in self.several and not self._peers[o.id]:
            return "caption_says_several"
        return "ambiguous_reference"

    def uncountable(self, group: Group) -> str | None:
        """Why the members of a group cannot be counted (a skip reason), or None when they can."""
        attrs, label = group
        members = self.members(group)
        labels = {label} if label is not None else {o.label for o in members}
        if labels & self.crowd_labels:
            return "crowd_region"
        if labels & self.rules.uncountable:
            return "not_countable"
        if any(o.id in self.tiny for o in members):
            return "tiny_object"
        if label is not None and not attrs and self._caption_disagrees(label, len(members)):
            return "caption_disagrees"
        return None

    def _caption_disagrees(self, label: str, n: int) -> bool:
        """The caption gives the label another count than its boxes (non-exhaustive sources only)."""
        if self.rules.exhaustive:
            return False
        numbers, several, _ = caption_counts(self.caption, label)
        return bool(numbers and n not in numbers) or (several and n < 2)

    def absent_labels(self, shard_labels: Sequence[str]) -> list[str]:
        """Labels of the shard (and the recipe) that are not in the image, countable, and, where the
        annotations are not exhaustive, not mentioned by the caption: their count is a true 0."""
        present = {o.label for o in self.objects}
        out = []
        for lab in sorted(set(shard_labels) | set(self.rules.labels)):
            if lab in present or lab in self.rules.uncountable:
                continue
            if not self.rules.exhaustive and caption_counts(self.caption, lab)[2]:
                continue
            out.append(lab)
        return out

    def group_phrase(self, group: Group) -> str:
        attrs, label = group
        order = {k: i for i, k in enumerate(self.rules.attributes)}
        words = [v for k, v in sorted(attrs, key=lambda kv: -order.get(kv[0], 0))]
        return " ".join(words + [plural(label) if label else "objects"])

    def members(self, group: Group) -> list[Obj]:
        if group not in self._members:
            attrs, label = group
            self._members[group] = [
                o
                for o in self.objects
                if (label is None or o.label == label) and all(o.attrs.get(k) == v for k, v in attrs)
            ]
        return self._members[group]


@dataclass
class Draft:
    """A rendered stage-1 question before it gets its id."""

    family: str
    question: str
    answer: str
    distractors: list[str]
    grounding: list[str]
    spec: dict[str, Any] = field(default_factory=dict)
    parents: list[str] = field(default_factory=list)  # stage-2: the stage-1 question ids it composes
    reasoning_type: str = ""

    def __post_init__(self) -> None:
        self.reasoning_type = self.reasoning_type or FAMILIES[self.family].reasoning_type

    @property
    def hops(self) -> int:
        return max(1, len(self.parents))


def pick_distractors(rng: random.Random, gold: str, pools: Sequence[Sequence[str]], k: int = 3) -> list[str] | None:
    """k distinct wrong options, drawn from the first pool first (the most plausible), then the next.

    Within a pool the candidates rank by a hash salted with one draw of `rng` (rendezvous hashing): a candidate
    added to a pool (a label new to the shard) changes the pick only where it ranks among the first k, and the
    rng's later draws do not depend on the pools' sizes, so an edit elsewhere in the shard redraws few options.
    """
    out: list[str] = []
    seen = {gold.lower()}
    salt = rng.getrandbits(64)
    for pool in pools:
        cands = sorted({p for p in pool if p.lower() not in seen}, key=lambda c: content_id(salt, c))
        for c in cands:
            if len(out) == k:
                return out
            if c.lower() not in seen:
                seen.add(c.lower())
                out.append(c)
    return out if len(out) == k else None


def count_kind(n: int) -> str:
    """A count's gold kind: 0-3 each its own (always offered together), above 3 one kind (a window of four)."""
    return str(n) if n <= 3 else "4+"


def count_distractors(rng: random.Random, n: int) -> list[str]:
    """Three wrong counts, offered so that the gold's rank among the four does not give it away.

    Up to 3 the options are always 0-3 (a gold of 1 beside 0, 2, 3 was the second smallest every time: 89 %
    for a blind "second smallest" guess on the demo scenes); above, a window of four consecutive counts with the
    gold at a uniformly drawn rank.
    """
    start = 0 if n <= 3 else n - rng.randrange(4)
    others = [m for m in range(start, start + 4) if m != n]
    rng.shuffle(others)
    return [str(m) for m in others]


Enumerate = Callable[[View, Counter, Sequence[str]], list[tuple]]
Render = Callable[[View, tuple, random.Random, str], Draft]


@dataclass(frozen=True)
class Family:
    """One stage-1 family: all the recipe and `generate` know of it.

    `enumerate(view, skips, shard_labels)` returns every valid candidate of one
    image and counts each skip by reason (only existence reads the shard's
    labels); `render(view, candidate, rng, phrasing)` turns one into a Draft.
    """

    name: str
    slots: frozenset[str]  # the placeholders each of its phrasings must use, exactly
    phrasings: tuple[str, ...]  # the defaults, when the recipe gives none
    reasoning_type: str
    enumerate: Enumerate
    render: Render

    def __post_init__(self) -> None:
        for p in self.phrasings:
            if phrasing_slots(p) != self.slots:
                raise ValueError(f"{self.name}: default phrasing {p!r} does not use exactly {sorted(self.slots)}")


def _spec_group(group: Group) -> dict[str, Any]:
    return {"attributes": dict(group[0]), "label": group[1]}


# --- counting ----------------------------------------------------------------


def enum_counting(view: View, skips: Counter, shard_labels: Sequence[str] = ()) -> list[tuple]:
    out = []
    for g in view.groups:
        if why := view.uncountable(g):
            skips[why] += 1
        else:
            out.append((g, len(view.members(g)), [o.id for o in view.members(g)]))
    if absent := view.absent_labels(shard_labels):  # one label the image lacks: 0 is a real gold too
        # the lowest by a hash of (image, label): a label new to the shard replaces it only where it ranks lower
        out.append((((), min(absent, key=lambda lab: content_id("lgt-zero", view.image_id, lab))), 0, []))
    return out


def render_counting(view: View, cand: tuple, rng: random.Random, phrasing: str) -> Draft:
    group, n, ids = cand
    things = view.group_phrase(group)
    return Draft(
        "counting",
        phrasing.format(things=things),
        str(n),
        count_distractors(rng, n),
        ids,
        {"group": _spec_group(group), "things": things},
    )


COUNTING = Family(
    "counting",
    slots=frozenset({"things"}),
    phrasings=(
        "How many {things} are there in the image?",
        "Count the {things} in the picture. How many are there?",
        "What is the number of {things} shown?",
    ),
    reasoning_type="Counting & Quantification",
    enumerate=enum_counting,
    render=render_counting,
)


# --- existence ---------------------------------------------------------------


def _present_combos(view: View) -> tuple[str | None, set[tuple[str | None, str]]]:
    key = view.keys[0] if view.keys else None
    return key, {(o.attrs.get(key) if key else None, o.label) for o in view.objects}


def _absent_combos(
    view: View, key: str | None, present: set, shard_labels: Sequence[str]
) -> list[tuple[str | None, str]]:
    labels = sorted({o.label for o in view.objects} | set(shard_labels) | set(view.rules.labels))
    if not view.rules.exhaustive:  # a label the caption mentions may be there, unannotated
        labels = [
            lab
            for lab in labels
            if any(lab == o.label for o in view.objects) or not caption_counts(view.caption, lab)[2]
        ]
    if key is None:
        return [(None, lab) for lab in labels if (None, lab) not in present]
    values = sorted(set(view.rules.attributes[key][1]) | {o.attrs[key] for o in view.objects if key in o.attrs})
    return [(v, lab) for v in values for lab in labels if (v, lab) not in present]


def _combo_phrase(combo: tuple[str | None, str]) -> str:
    value, label = combo
    return f"{value} {label}" if value else label


def enum_existence(view: View, skips: Counter, shard_labels: Sequence[str] = ()) -> list[tuple]:
    key, present = _present_combos(view)
    if len(_absent_combos(view, key, present, shard_labels)) < 3:
        skips["too_few_distractors"] += 1
        return []
    out = []
    for combo in sorted(present, key=lambda c: (c[0] or "", c[1])):
        seen = [o for o in view.objects if o.label == combo[1] and (key is None or o.attrs.get(key) == combo[0])]
        if all(o.id in view.tiny for o in seen):  # a 10-pixel figure is found only by elimination
            skips["tiny_object"] += 1
        else:
            out.append((key, combo, tuple(shard_labels)))
    return out


def render_existence(view: View, cand: tuple, rng: random.Random, phrasing: str) -> Draft:
    key, combo, shard_labels = cand
    _, present = _present_combos(view)
    absent = _absent_combos(view, key, present, shard_labels)
    near = [_combo_phrase(c) for c in absent if c[0] == combo[0] or c[1] == combo[1]]
    rest = [] if len(near) >= 3 else [_combo_phrase(c) for c in absent]  # phrase the long list only when needed
    distractors = pick_distractors(rng, _combo_phrase(combo), [near, rest])
    assert distractors is not None  # enumeration checked there are three absent combinations
    ids = [o.id for o in view.objects if o.label == combo[1] and (key is None or o.attrs.get(key) == combo[0])]
    return Draft(
        "existence",
        phrasing.format(),
        _combo_phrase(combo),
        distractors,
        ids,
        {"key": key, "present": _combo_phrase(combo)},
    )


EXISTENCE = Family(
    "existence",
    slots=frozenset(),
    phrasings=(
        "Which of the following can be seen in the image?",
        "Which of these objects appears in the picture?",
        "Only one of these is in the image. Which one?",
    ),
    reasoning_type="Recognition",
    enumerate=enum_existence,
    render=render_existence,
)


# --- attribute ---------------------------------------------------------------


def enum_attribute(view: View, skips: Counter, shard_labels: Sequence[str] = ()) -> list[tuple]:
    vocabs = {
        k: set(view.rules.attributes[k][1]) | {p.attrs[k] for p in view.objects if k in p.attrs} for k in view.keys
    }
    if not view.keys:
        skips["no_attributes"] += 1
        return []
    out = []
    for o in view.objects:
        for k in view.keys:
            if k not in o.attrs:
                continue
            ref = view.ref(o, exclude=k)
            if ref is None:
                skips[view.unnamed(o)] += 1
                continue
            if len(vocabs[k]) - 1 < 3:  # the gold value is always in the vocabulary
                skips["too_few_distractors"] += 1
                continue
            out.append((o, k, ref))
    return out


def render_attribute(view: View, cand: tuple, rng: random.Random, phrasing: str) -> Draft:
    o, k, ref = cand
    noun, vocab = view.rules.attributes[k]
    gold = o.attrs[k]
    in_scene = [p.attrs[k] for p in view.objects if k in p.attrs]
    distractors = pick_distractors(rng, gold, [in_scene, vocab])
    assert distractors is not None
    return Draft(
        "attribute",
        phrasing.format(noun=noun, object=ref),
        gold,
        distractors,
        [o.id],
        {"object_id": o.id, "object": ref, "key": k},
    )


ATTRIBUTE = Family(
    "attribute",
    slots=frozenset({"noun", "object"}),
    phrasings=(
        "What {noun} is the {object}?",
        "Which {noun} does the {object} have?",
        "Look at the {object}. What is its {noun}?",
    ),
    reasoning_type="Recognition",
    enumerate=enum_attribute,
    render=render_attribute,
)


# --- relative position -------------------------------------------------------


def relation_of(a: Obj, b: Obj, gx: float, gy: float) -> str | None:
    """The one relation of a to b (left/right/above/below), or None if ambiguous; 'near' for a near-tie."""
    gaps = (
        ("left", b.x1 - a.x2, gx),
        ("right", a.x1 - b.x2, gx),
        ("above", b.y1 - a.y2, gy),
        ("below", a.y1 - b.y2, gy),
    )
    if any(-g < d < g for _, d, g in gaps):
        return "near"
    holds = [rel for rel, d, g in gaps if d >= g]
    return holds[0] if len(holds) == 1 else None


def enum_relative_position(view: View, skips: Counter, shard_labels: Sequence[str] = ()) -> list[tuple]:
    gx, gy = view.rules.position_gap * view.width, view.rules.position_gap * view.height
    out = []
    for a, b in itertools.combinations(view.objects, 2):
        if view.names[a.id] is None or view.names[b.id] is None:
            skips[view.unnamed(a if view.names[a.id] is None else b)] += 1
            continue
        rel = relation_of(a, b, gx, gy)
        if rel == "near":
            skips["near_tie"] += 1
        elif rel is None:
            skips["no_clear_relation"] += 1
        else:
            out.append((a, b, rel))
    return out


def render_relative_position(view: View, cand: tuple, rng: random.Random, phrasing: str) -> Draft:
    a, b, rel = cand
    if rng.random() < 0.5:
        a, b, rel = b, a, OPPOSITE[rel]
    ra, rb = view.ref(a), view.ref(b)
    wrong = [RELATION_WORDS[r] for r in RELATION_WORDS if r != rel]
    rng.shuffle(wrong)
    return Draft(
        "relative_position",
        phrasing.format(a=ra, b=rb),
        RELATION_WORDS[rel],
        wrong,
        [a.id, b.id],
        {"a_id": a.id, "a": ra, "b_id": b.id, "b": rb, "relation": rel},
    )


RELATIVE_POSITION = Family(
    "relative_position",
    slots=frozenset({"a", "b"}),
    phrasings=(
        "Where is the {a} relative to the {b}?",
        "Relative to the {b}, where is the {a}?",
        "In which direction from the {b} is the {a}?",
    ),
    reasoning_type="Spatial & Relational",
    enumerate=enum_relative_position,
    render=render_relative_position,
)


# --- relative size -----------------------------------------------------------


def enum_relative_size(view: View, skips: Counter, shard_labels: Sequence[str] = ()) -> list[tuple]:
    named = view.named
    if len(named) < 4:
        skips["too_few_objects"] += 1
        return []
    r = 1 + view.rules.area_ratio
    out = []
    for g in named:
        smaller = [o for o in named if g.area >= r * o.area]
        larger = [o for o in named if o.area >= r * g.area]
        for which, others in (("largest", smaller), ("smallest", larger)):
            if len(others) >= 3:
                out.append((g, which, others))
            else:  # fewer than three objects differ from it by the area margin
                skips["too_few_distractors"] += 1
    return out


def render_relative_size(view: View, cand: tuple, rng: random.Random, phrasing: str) -> Draft:
    gold, which, others = cand
    chosen = rng.sample(others, 3)
    return Draft(
        "relative_size",
        phrasing.format(which=which),
        view.ref(gold),
        [view.ref(o) for o in chosen],
        [gold.id] + [o.id for o in chosen],
        {"which": which, "object_id": gold.id, "option_ids": [o.id for o in chosen], "area_from": gold.area_from},
    )


RELATIVE_SIZE = Family(
    "relative_size",
    slots=frozenset({"which"}),
    phrasings=(  # the size in the image, so a far-away truck's real size is not a second right answer
        "Which of these objects is the {which} in the image?",
        "Among the following objects, which one takes up the {which} area in the image?",
        "Which of these looks the {which} in the picture?",
    ),
    reasoning_type="Spatial & Relational",
    enumerate=enum_relative_size,
    render=render_relative_size,
)


# --- closest / farthest ------------------------------------------------------


def box_gap(a: Obj, b: Obj) -> float:
    """The shortest distance between two boxes; 0 when they touch or overlap."""
    dx = max(0.0, b.x1 - a.x2, a.x1 - b.x2)
    dy = max(0.0, b.y1 - a.y2, a.y1 - b.y2)
    return (dx * dx + dy * dy) ** 0.5


def clear_by_gap(anchor: Obj, gold: Obj, others: Sequence[Obj], which: str, r: float) -> bool:
    """Box edges agree with the centres: gold is also the closest (farthest) by box gap, clear by the margin.

    Centres alone mislead a person: a skier standing on skis (gap 0) loses "closest" to a dog on centre distance.
    """
    g = box_gap(anchor, gold)
    rest = [box_gap(anchor, o) for o in others if o is not anchor and o is not gold]
    if which == "closest":
        return all(x > g and x >= r * g for x in rest)
    return all(g > x and g >= r * x for x in rest)


def enum_closest(view: View, skips: Counter, shard_labels: Sequence[str] = ()) -> list[tuple]:
    if not view.complete:  # an unboxed object may be the true answer
        skips["incomplete_annotations"] += 1
        return []
    if len(view.objects) < 5:
        skips["too_few_objects"] += 1
        return []
    r = 1 + view.rules.distance_ratio
    out = []
    for anchor in view.objects:
        aref = view.names[anchor.id]
        if aref is None:
            skips[view.unnamed(anchor)] += 1
            continue
        ranked = sorted(
            (((o.cx - anchor.cx) ** 2 + (o.cy - anchor.cy) ** 2) ** 0.5, i, o)
            for i, o in enumerate(view.objects)
            if o is not anchor
        )
        for which, (d1, _, gold), (d2, _, _) in (
            ("closest", ranked[0], ranked[1]),
            ("farthest", ranked[-1], ranked[-2]),
        ):
            if (which == "closest" and d2 < r * d1) or (which == "farthest" and d1 < r * d2):
                skips["near_tie"] += 1
            elif not clear_by_gap(anchor, gold, view.objects, which, r):
                skips["edge_centre_disagree"] += 1
            elif view.ref(gold) is None:
                skips[view.unnamed(gold)] += 1
            elif len([o for o in view.named if o is not anchor and o is not gold]) < 3:
                skips["too_few_distractors"] += 1
            else:
                out.append((anchor, which, gold, aref))
    return out


def render_closest(view: View, cand: tuple, rng: random.Random, phrasing: str) -> Draft:
    anchor, which, gold, aref = cand
    others = [o for o in view.named if o is not anchor and o is not gold]
    chosen = rng.sample(others, 3)
    relation = CLOSEST_WORDS[which]
    return Draft(
        "closest",
        phrasing.format(relation=relation, anchor=aref),
        view.ref(gold),
        [view.ref(o) for o in chosen],
        [anchor.id, gold.id],
        {
            "which": which,
            "anchor_id": anchor.id,
            "anchor": aref,
            "object_id": gold.id,
            "option_ids": [o.id for o in chosen],
        },
    )


CLOSEST = Family(
    "closest",
    slots=frozenset({"relation", "anchor"}),
    phrasings=(
        "Which object is {relation} the {anchor}?",
        "What is the object {relation} the {anchor}?",
        "Of all the other objects, which one is {relation} the {anchor}?",
    ),
    reasoning_type="Spatial & Relational",
    enumerate=enum_closest,
    render=render_closest,
)


# --- extreme position --------------------------------------------------------

EXTREME_KEYS = {
    "left": lambda o: o.cx,
    "right": lambda o: -o.cx,
    "top": lambda o: o.cy,
    "bottom": lambda o: -o.cy,
}
# the box's outer edge on that side: a refrigerator touching the top edge is "closest to the top" to a person,
# even when a banana's centre is higher
EXTREME_EDGES = {
    "left": lambda o: o.x1,
    "right": lambda o: -o.x2,
    "top": lambda o: o.y1,
    "bottom": lambda o: -o.y2,
}


def enum_extreme(view: View, skips: Counter, shard_labels: Sequence[str] = ()) -> list[tuple]:
    if not view.complete:
        skips["incomplete_annotations"] += 1
        return []
    if len(view.objects) < 4:
        skips["too_few_objects"] += 1
        return []
    out = []
    for direction, key in EXTREME_KEYS.items():
        side = view.width if direction in ("left", "right") else view.height
        ranked = sorted(view.objects, key=key)
        edge = EXTREME_EDGES[direction]
        if key(ranked[1]) - key(ranked[0]) < view.rules.extreme_gap * side:
            skips["near_tie"] += 1
        elif any(edge(o) - edge(ranked[0]) < view.rules.extreme_gap * side for o in ranked[1:]):
            skips["edge_centre_disagree"] += 1  # another box reaches as far out, or nearly
        elif view.ref(ranked[0]) is None:
            skips[view.unnamed(ranked[0])] += 1
        elif len([o for o in view.named if o is not ranked[0]]) < 3:
            skips["too_few_distractors"] += 1
        else:
            out.append((direction, ranked[0]))
    return out


def render_extreme(view: View, cand: tuple, rng: random.Random, phrasing: str) -> Draft:
    direction, gold = cand
    chosen = rng.sample([o for o in view.named if o is not gold], 3)
    return Draft(
        "extreme",
        phrasing.format(extreme=EXTREME_WORDS[direction]),
        view.ref(gold),
        [view.ref(o) for o in chosen],
        [gold.id],
        {"direction": direction, "object_id": gold.id, "option_ids": [o.id for o in chosen]},
    )


EXTREME = Family(
    "extreme",
    slots=frozenset({"extreme"}),
    phrasings=(
        "Which object is {extreme} in the image?",
        "Of all the objects, which one is {extreme}?",
        "Which object lies {extreme}?",
    ),
    reasoning_type="Spatial & Relational",
    enumerate=enum_extreme,
    render=render_extreme,
)


# --- count comparison --------------------------------------------------------


def enum_count_comparison(view: View, skips: Counter, shard_labels: Sequence[str] = ()) -> list[tuple]:
    kinds: dict[str, list[Group]] = {}
    for g in view.groups:  # groups of one kind: all labels, or all values of one attribute
        if not g[0]:
            kinds.setdefault("", []).append(g)
        elif g[1] is None:
            kinds.setdefault(g[0][0][0], []).append(g)
    countable: dict[str, list[Group]] = {}
    for kind, groups in kinds.items():
        countable[kind] = []
        for g in groups:
            if why := view.uncountable(g):
                skips[why] += 1
            else:
                countable[kind].append(g)
    out = []
    for groups in countable.values():
        for ga, gb in itertools.combinations(groups, 2):
            out.append((ga, gb, len(view.members(ga)), len(view.members(gb))))
    # labels the image lacks make "more X" against a real 0, and "none of either" a real gold
    # ranked by a hash of (image, label), as in enum_counting: a label new to the shard rarely changes the pair
    absent = sorted(view.absent_labels(shard_labels), key=lambda lab: content_id("lgt-zero-pair", view.image_id, lab))
    rng = random.Random(f"lgt-zero-pair:{view.image_id}")
    present = countable.get("", [])
    if absent and present:
        g = rng.choice(present)
        out.append((g, ((), absent[0]), len(view.members(g)), 0))
    if len(absent) >= 2:
        out.append((((), absent[0]), ((), absent[1]), 0, 0))
    return out


def render_count_comparison(view: View, cand: tuple, rng: random.Random, phrasing: str) -> Draft:
    ga, gb, ca, cb = cand
    if rng.random() < 0.5:
        ga, gb, ca, cb = gb, ga, cb, ca
    pa, pb = view.group_phrase(ga), view.group_phrase(gb)
    options = {"a": f"more {pa}", "b": f"more {pb}", "same": SAME_COUNT, "none": NONE_OF_EITHER}
    gold = "a" if ca > cb else "b" if cb > ca else "none" if ca == 0 else "same"
    wrong = [v for k, v in options.items() if k != gold]
    rng.shuffle(wrong)
    ids = [o.id for o in view.members(ga) + view.members(gb)]
    return Draft(
        "count_comparison",
        phrasing.format(a=pa, b=pb),
        options[gold],
        wrong,
        ids,
        {"a": _spec_group(ga), "b": _spec_group(gb), "a_things": pa, "b_things": pb},
    )


COUNT_COMPARISON = Family(
    "count_comparison",
    slots=frozenset({"a", "b"}),
    phrasings=(
        "Are there more {a} or more {b} in the image?",
        "Which are more numerous here: {a} or {b}?",
        "Comparing {a} and {b}, which are there more of?",
    ),
    reasoning_type="Counting & Quantification",
    enumerate=enum_count_comparison,
    render=render_count_comparison,
)


# the registry, in the order the recipe's default families (and so the generated rows) follow
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        COUNTING,
        EXISTENCE,
        ATTRIBUTE,
        RELATIVE_POSITION,
        RELATIVE_SIZE,
        CLOSEST,
        EXTREME,
        COUNT_COMPARISON,
    )
}


# --- generation: sample each family's candidates and render them ------------


@dataclass(frozen=True)
class FamilyPlan:
    """How many of a family to keep per image, and its phrasings."""

    max_per_image: int
    phrasings: tuple[str, ...]


def generate(
    view: View,
    plans: dict[str, FamilyPlan],
    seed: int,
    skips: Counter,
    shard_labels: Sequence[str] = (),
    compose_support: bool = True,
) -> list[Draft]:
    """Sample up to each family's quota of its valid candidates and render them.

    With `compose_support`, the attribute question about each sampled
    object-selecting item's answer (closest, extreme) is kept too, and one
    `closest` item anchored on each extreme item's answer: the parents that
    stage-2 chains need.
    """
    cands = {family: FAMILIES[family].enumerate(view, skips, shard_labels) for family in plans}
    chosen: dict[str, list[tuple]] = {}
    rngs = {f: random.Random(f"lgt-q1:{seed}:{view.image_id}:{f}") for f in plans}
    for family, plan in plans.items():
        chosen[family] = _draw(rngs[family], cands[family], plan.max_per_image, GOLD_KIND.get(family))
    if compose_support:
        _add_support(view, cands, chosen, rngs)
    drafts = []
    for family, items in chosen.items():
        rng = rngs[family]
        for cand in items:
            drafts.append(FAMILIES[family].render(view, cand, rng, rng.choice(plans[family].phrasings)))
    return drafts


# the kind of gold a counting candidate has: drawn evenly per image, so no count (or "the same number") is the
# gold most of the time; the shard's balance (lgt/questions/balance.py) then drops less
GOLD_KIND: dict[str, Callable[[tuple], str]] = {
    "counting": lambda c: count_kind(c[1]),
    "count_comparison": lambda c: "none" if c[2] == c[3] == 0 else "same" if c[2] == c[3] else "more",
}


def _draw(rng: random.Random, cands: list[tuple], k: int, kind_of: Callable[[tuple], str] | None) -> list[tuple]:
    """k candidates at random; with `kind_of`, one of each gold kind in turn (kinds in random order)."""
    if kind_of is None:
        return rng.sample(cands, min(k, len(cands)))
    by_kind: dict[str, list[tuple]] = {}
    for c in cands:
        by_kind.setdefault(kind_of(c), []).append(c)
    kinds = sorted(by_kind)
    rng.shuffle(kinds)
    for kind in kinds:
        rng.shuffle(by_kind[kind])
    out: list[tuple] = []
    while len(out) < min(k, len(cands)):
        for kind in kinds:
            if by_kind[kind] and len(out) < k:
                out.append(by_kind[kind].pop())
    return out


def _add_support(view: View, cands: dict, chosen: dict, rngs: dict) -> None:
    if "closest" in chosen and "extreme" in chosen:
        for _direction, x in chosen["extreme"]:
            anchored = [c for c in cands["closest"] if c[0] is x and c not in chosen["closest"]]
            if anchored and not any(c[0] is x for c in chosen["closest"]):
                chosen["closest"].append(rngs["closest"].choice(anchored))
    if "attribute" not in chosen:
        return
    answers = [c[2] for c in chosen.get("closest", [])] + [c[1] for c in chosen.get("extreme", [])]
    for y in answers:
        if any(c[0] is y for c in chosen["attribute"]):
            continue
        about = [c for c in cands["attribute"] if c[0] is y]
        if about:
            chosen["attribute"].append(rngs["attribute"].choice(about))
