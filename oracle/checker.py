"""An independent checker for the stage-1 and stage-2 question rows.

Written from the family definitions only (no code from `lgt.questions.families`,
`lgt.questions.compose`, `lgt.questions.grounded` or `lgt.questions.composed`):
every gold answer is recomputed from an image's objects (labels, boxes,
attributes) and compared with the row. Each check returns a list of problems;
an empty list means the row agrees.

Usage:
    checker = Checker(vocab={"color": [...], "texture": [...], "size": [...]},
                      margins={"position_gap": 0.02, "area_ratio": 0.10, "distance_ratio": 0.10, "extreme_gap": 0.02})
    problems = checker.check(row, image_row, stage1_rows_by_id)
"""

from __future__ import annotations

import json
import math
from typing import Any

SAME_COUNT = "the same number of each"
NONE_OF_EITHER = "there are none of either"
RELATION_ANSWERS = {"left": "to the left", "right": "to the right", "above": "above", "below": "below"}
OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}
# words a question about each relation / direction must contain (a loose check that the text asks what the spec says)
STATED_WORDS = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
DIRECTION_WORDS = {"left": "left", "right": "right", "top": "top", "bottom": "bottom"}
WHICH_WORDS = {"closest": "closest to", "farthest": "farthest from"}


class CheckFailed(Exception):
    pass


def pluralise(label: str) -> str:
    for end in ("s", "x", "z", "sh", "ch"):
        if label.endswith(end):
            return label + "es"
    return label + "s"


# --- one image: plain object dicts ------------------------------------------


def scene_of(image_row: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """{width, height, objects: [{id, label, x1, y1, x2, y2, cx, cy, area, attrs}]} from an `images` row."""
    objects = []
    for o in image_row["objects"]:
        x1, y1, x2, y2 = [float(v) for v in o["bbox_xyxy"]]
        attrs = {}
        for a in o["attributes"] or []:
            if a["key"] in keys:
                attrs[a["key"]] = a["value"]
        objects.append(
            {
                "id": o["object_id"],
                "label": o["label"],
                "attrs": attrs,
                "x1": x1,
                "y1": y1,
                "x2": x2,
                "y2": y2,
                "cx": (x1 + x2) / 2,
                "cy": (y1 + y2) / 2,
                # the area in the image: what the test worked out from the masks, else the box
                "area": image_row.get("_areas", {}).get(o["object_id"], (x2 - x1) * (y2 - y1)),
            }
        )
    return {
        "image_id": image_row["image_id"],
        "width": image_row["width"],
        "height": image_row["height"],
        "objects": objects,
    }


def _interval_gap(a: dict, b: dict, axis: str) -> float:
    """How far apart two boxes' extents are along one axis (0 when they overlap there)."""
    lo, hi = f"{axis}1", f"{axis}2"
    if a[hi] < b[lo]:
        return b[lo] - a[hi]
    if b[hi] < a[lo]:
        return a[lo] - b[hi]
    return 0.0


class Checker:
    def __init__(self, vocab: dict[str, list[str]], margins: dict[str, float], nouns: dict[str, str] | None = None):
        self.keys = list(vocab)
        self.nouns = dict(nouns or {})  # key -> how questions name it ("colour"); checked where given
        self.vocab = {k: list(v) for k, v in vocab.items()}
        self.position_gap = margins["position_gap"]
        self.area_ratio = margins["area_ratio"]
        self.distance_ratio = margins["distance_ratio"]
        self.extreme_gap = margins["extreme_gap"]
        self.key_of_value: dict[str, str] = {}
        for k, values in self.vocab.items():
            for v in values:
                if v in self.key_of_value and self.key_of_value[v] != k:
                    raise ValueError(f"value {v!r} is in two vocabularies")
                self.key_of_value[v] = k

    # --- phrases -------------------------------------------------------------

    def _value_key(self, scene: dict, word: str) -> str:
        if word in self.key_of_value:
            return self.key_of_value[word]
        # a value outside the recipe's vocabulary but present in the scene
        found = {k for o in scene["objects"] for k, v in o["attrs"].items() if v == word}
        if len(found) != 1:
            raise CheckFailed(f"word {word!r} is no attribute value")
        return found.pop()

    def parse_phrase(self, scene: dict, phrase: str) -> tuple[dict[str, str], str]:
        """'small striped red square' -> ({size: small, texture: striped, color: red}, 'square')."""
        words = phrase.split()
        if not words:
            raise CheckFailed("empty phrase")
        label, values = words[-1], words[:-1]
        wanted: dict[str, str] = {}
        for w in values:
            k = self._value_key(scene, w)
            if k in wanted:
                raise CheckFailed(f"phrase {phrase!r} gives two values for {k}")
            wanted[k] = w
        return wanted, label

    def named_by(self, scene: dict, phrase: str) -> list[dict]:
        wanted, label = self.parse_phrase(scene, phrase)
        out = []
        for o in scene["objects"]:
            if o["label"] != label:
                continue
            if all(o["attrs"].get(k) == v for k, v in wanted.items()):
                out.append(o)
        return out

    def resolve(self, scene: dict, phrase: str) -> dict:
        """The one object a referring phrase names; CheckFailed when it names none or several."""
        found = self.named_by(scene, phrase)
        if len(found) != 1:
            raise CheckFailed(f"phrase {phrase!r} names {len(found)} objects")
        return found[0]

    def group_members(self, scene: dict, phrase: str) -> list[dict]:
        """Members of a group phrase: 'red squares', 'small objects', 'crosses'."""
        words = phrase.split()
        if not words:
            raise CheckFailed("empty group phrase")
        last, values = words[-1], words[:-1]
        label = None
        if last != "objects":
            labels = {o["label"] for o in scene["objects"]}
            matches = [lab for lab in labels if pluralise(lab) == last]
            if not matches:
                return []  # a label absent from the scene: no members
            label = matches[0]
        wanted: dict[str, str] = {}
        for w in values:
            k = self._value_key(scene, w)
            if k in wanted:
                raise CheckFailed(f"group {phrase!r} gives two values for {k}")
            wanted[k] = w
        out = []
        for o in scene["objects"]:
            if label is not None and o["label"] != label:
                continue
            if all(o["attrs"].get(k) == v for k, v in wanted.items()):
                out.append(o)
        return out

    def spec_group_members(self, scene: dict, group: dict) -> list[dict]:
        """Members of a {"attributes": {key: value}, "label": label-or-null} group."""
        out = []
        for o in scene["objects"]:
            if group.get("label") is not None and o["label"] != group["label"]:
                continue
            if all(o["attrs"].get(k) == v for k, v in group.get("attributes", {}).items()):
                out.append(o)
        return out

    # --- geometry --------------------------------------------------------------

    def relations(self, scene: dict, a: dict, b: dict) -> tuple[list[str], bool]:
        """(the relations of a to b that hold, whether any gap is a near-tie)."""
        gx = self.position_gap * scene["width"]
        gy = self.position_gap * scene["height"]
        gaps = {
            "left": (b["x1"] - a["x2"], gx),
            "right": (a["x1"] - b["x2"], gx),
            "above": (b["y1"] - a["y2"], gy),
            "below": (a["y1"] - b["y2"], gy),
        }
        holding = [rel for rel, (d, g) in gaps.items() if d >= g]
        near = any(-g < d < g for d, g in gaps.values())
        return holding, near

    def clear_relation(self, scene: dict, a: dict, b: dict) -> str:
        holding, near = self.relations(scene, a, b)
        if near:
            raise CheckFailed(f"relation of {a['id']} to {b['id']} is a near-tie")
        if len(holding) != 1:
            raise CheckFailed(f"relations of {a['id']} to {b['id']}: {holding}, not exactly one")
        return holding[0]

    def by_distance(self, scene: dict, which: str, anchor: dict) -> dict:
        """The closest (farthest) object to the anchor, clear by the distance margin."""
        dists = []
        for o in scene["objects"]:
            if o is anchor:
                continue
            dists.append((math.hypot(o["cx"] - anchor["cx"], o["cy"] - anchor["cy"]), o))
        if len(dists) < 2:
            raise CheckFailed("fewer than two objects besides the anchor")
        dists.sort(key=lambda t: t[0])
        r = 1 + self.distance_ratio
        if which == "closest":
            (d1, best), (d2, _) = dists[0], dists[1]
            if d2 < r * d1:
                raise CheckFailed(f"closest to {anchor['id']}: runner-up {d2:.2f} within margin of {d1:.2f}")
        elif which == "farthest":
            (d1, best), (d2, _) = dists[-1], dists[-2]
            if d1 < r * d2:
                raise CheckFailed(f"farthest from {anchor['id']}: {d1:.2f} within margin of runner-up {d2:.2f}")
        else:
            raise CheckFailed(f"unknown which {which!r}")
        # box edges must agree: the gold is also the closest (farthest) by the gap between boxes, by the margin
        gaps = sorted(
            ((_interval_gap(o, anchor, "x") ** 2 + _interval_gap(o, anchor, "y") ** 2) ** 0.5, o["id"])
            for _, o in dists
        )
        (g1, first), (g2, _) = (gaps[0], gaps[1]) if which == "closest" else (gaps[-1], gaps[-2])
        if first != best["id"] or g1 == g2:
            raise CheckFailed(f"{which} to {anchor['id']}: by box gap {first}, by centre {best['id']}")
        if (which == "closest" and g2 < r * g1) or (which == "farthest" and g1 < r * g2):
            raise CheckFailed(f"{which} to {anchor['id']}: box gaps {g1:.2f} and {g2:.2f} within the margin")
        return best

    def extreme(self, scene: dict, direction: str) -> dict:
        if direction == "left":
            score, side = (lambda o: o["cx"]), scene["width"]
        elif direction == "right":
            score, side = (lambda o: -o["cx"]), scene["width"]
        elif direction == "top":
            score, side = (lambda o: o["cy"]), scene["height"]
        elif direction == "bottom":
            score, side = (lambda o: -o["cy"]), scene["height"]
        else:
            raise CheckFailed(f"unknown direction {direction!r}")
        ranked = sorted(scene["objects"], key=score)
        if len(ranked) < 2:
            raise CheckFailed("fewer than two objects")
        if score(ranked[1]) - score(ranked[0]) < self.extreme_gap * side:
            raise CheckFailed(f"extreme {direction}: runner-up within {self.extreme_gap} of the side")
        # the outer box edge on that side must agree, by the same gap
        outer = {"left": ("x1", 1), "right": ("x2", -1), "top": ("y1", 1), "bottom": ("y2", -1)}[direction]
        reach = sorted(scene["objects"], key=lambda o: outer[1] * o[outer[0]])
        if reach[0] is not ranked[0]:
            raise CheckFailed(f"extreme {direction}: by box edge {reach[0]['id']}, by centre {ranked[0]['id']}")
        if outer[1] * (reach[1][outer[0]] - reach[0][outer[0]]) < self.extreme_gap * side:
            raise CheckFailed(f"extreme {direction}: another box edge within {self.extreme_gap} of the side")
        return ranked[0]

    # --- the row ---------------------------------------------------------------

    def check(
        self, row: dict[str, Any], image_row: dict[str, Any], stage1_by_id: dict[str, dict[str, Any]] | None = None
    ) -> list[str]:
        """Problems with one question row (empty: it agrees with the recomputation)."""
        scene = scene_of(image_row, self.keys)
        problems: list[str] = []
        try:
            problems += self._options(row)
            spec = json.loads(row["spec"]) if isinstance(row["spec"], str) else row["spec"]
            if row["stage"] == 1:
                fn = getattr(self, f"_s1_{row['family']}", None)
                if fn is None:
                    return problems + [f"unknown stage-1 family {row['family']!r}"]
                problems += fn(scene, row, spec)
            elif row["stage"] == 2:
                problems += self._parents(row, stage1_by_id)
                fn = getattr(self, f"_s2_{spec.get('kind')}", None)
                if fn is None:
                    return problems + [f"unknown stage-2 kind {spec.get('kind')!r}"]
                problems += fn(scene, row, spec, stage1_by_id)
            else:
                problems.append(f"unknown stage {row['stage']!r}")
        except CheckFailed as e:
            problems.append(str(e))
        except (KeyError, TypeError, ValueError) as e:
            problems.append(f"malformed row: {type(e).__name__}: {e}")
        return problems

    @staticmethod
    def _options(row: dict) -> list[str]:
        out = []
        options = [row["answer"], *row["distractors"]]
        if len(row["distractors"]) != 3:
            out.append(f"{len(row['distractors'])} distractors, not 3")
        low = [" ".join(o.lower().split()) for o in options]
        if len(set(low)) != len(low):
            out.append(f"options not distinct: {options}")
        if low[0] in low[1:]:
            out.append("the answer is among the distractors")
        if any(not o.strip() for o in options):
            out.append("an empty option")
        return out

    @staticmethod
    def _mentions(row: dict, *texts: str) -> list[str]:
        return [f"question does not mention {t!r}" for t in texts if t not in row["question"]]

    @staticmethod
    def _direction_words(row: dict, direction: str) -> list[str]:
        """The question names the direction and not its opposite."""
        opposite = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}[direction]
        words = row["question"].lower().replace("?", " ").replace(".", " ").split()
        out = []
        if DIRECTION_WORDS[direction] not in words:
            out.append(f"question does not say {direction!r}")
        if DIRECTION_WORDS[opposite] in words:
            out.append(f"question says {opposite!r}")
        return out

    def _parents(self, row: dict, stage1_by_id: dict | None) -> list[str]:
        out = []
        parents = row["parents"]
        if row["hops"] != len(parents):
            out.append(f"hops {row['hops']} != {len(parents)} parents")
        if len(parents) < 2:
            out.append("fewer than two parents")
        if stage1_by_id is not None:
            for p in parents:
                par = stage1_by_id.get(p)
                if par is None:
                    out.append(f"parent {p} is not a stage-1 question")
                elif par["image_id"] != row["image_id"]:
                    out.append(f"parent {p} is about another image")
                elif par["stage"] != 1:
                    out.append(f"parent {p} is not stage 1")
        return out

    @staticmethod
    def _parent_rows(row: dict, stage1_by_id: dict | None) -> list[dict] | None:
        if stage1_by_id is None:
            return None
        found = [stage1_by_id.get(p) for p in row["parents"]]
        return None if any(p is None for p in found) else found

    # --- stage 1 ---------------------------------------------------------------

    def _count_answer(self, row: dict, n: int) -> list[str]:
        out = []
        if row["answer"] != str(n):
            out.append(f"answer {row['answer']!r}, recomputed {n}")
        for d in row["distractors"]:
            if d.strip() == str(n):
                out.append(f"distractor {d!r} is also correct")
            if not d.strip().isdigit():
                out.append(f"distractor {d!r} is not a count")
        return out

    def _is_value_of(self, scene: dict, word: str, key: str) -> bool:
        return word in self.vocab[key] or any(o["attrs"].get(key) == word for o in scene["objects"])

    def _value_answer(self, scene: dict, row: dict, value: str | None, key: str) -> list[str]:
        out = []
        if value is None:
            return [f"the object has no {key}"]
        if row["answer"] != value:
            out.append(f"answer {row['answer']!r}, recomputed {value!r}")
        for d in row["distractors"]:
            if d.lower() == value.lower():
                out.append(f"distractor {d!r} is also correct")
            if not self._is_value_of(scene, d, key):
                out.append(f"distractor {d!r} is no {key} value")
        if key in self.nouns and self.nouns[key] not in row["question"]:
            out.append(f"question does not name the {key} ({self.nouns[key]!r})")
        return out

    def _s1_counting(self, scene, row, spec):
        members = self.group_members(scene, spec["things"])
        out = self._mentions(row, spec["things"])
        if "group" in spec:
            ids = sorted(o["id"] for o in self.spec_group_members(scene, spec["group"]))
            if ids != sorted(o["id"] for o in members):
                out.append(f"spec.group members {ids} differ from those of {spec['things']!r}")
        return out + self._count_answer(row, len(members))

    def _s1_existence(self, scene, row, spec):
        out = []
        for i, option in enumerate([row["answer"], *row["distractors"]]):
            wanted, _ = self.parse_phrase(scene, option)
            if set(wanted) - {"color"} or (
                scene["objects"] and any("color" in o["attrs"] for o in scene["objects"]) and "color" not in wanted
            ):
                out.append(f"option {option!r} is not '<colour> <label>'")
            n = len(self.named_by(scene, option))
            if i == 0 and n == 0:
                out.append(f"answer {option!r} is not in the image")
            if i > 0 and n > 0:
                out.append(f"distractor {option!r} is in the image ({n})")
        return out

    def _s1_attribute(self, scene, row, spec):
        key = spec["key"]
        if key not in self.keys:
            return [f"unknown key {key!r}"]
        wanted, _ = self.parse_phrase(scene, spec["object"])
        out = self._mentions(row, spec["object"])
        if key in wanted:
            out.append(f"phrase {spec['object']!r} uses the asked {key}")
        o = self.resolve(scene, spec["object"])
        return out + self._value_answer(scene, row, o["attrs"].get(key), key)

    def _s1_relative_position(self, scene, row, spec):
        a, b = self.resolve(scene, spec["a"]), self.resolve(scene, spec["b"])
        out = self._mentions(row, spec["a"], spec["b"])
        if a is b:
            return out + ["a and b are the same object"]
        rel = self.clear_relation(scene, a, b)
        if row["answer"] != RELATION_ANSWERS[rel]:
            out.append(f"answer {row['answer']!r}, recomputed {RELATION_ANSWERS[rel]!r}")
        if spec.get("relation") != rel:
            out.append(f"spec.relation {spec.get('relation')!r}, recomputed {rel!r}")
        if sorted([row["answer"], *row["distractors"]]) != sorted(RELATION_ANSWERS.values()):
            out.append(f"options are not the four relations: {[row['answer'], *row['distractors']]}")
        return out

    def _s1_relative_size(self, scene, row, spec):
        gold = self.resolve(scene, row["answer"])
        others = [self.resolve(scene, d) for d in row["distractors"]]
        out = self._mentions(row, spec["which"])
        r = 1 + self.area_ratio
        for d, o in zip(row["distractors"], others):
            if o is gold:
                out.append(f"distractor {d!r} names the answer's object")
            elif spec["which"] == "largest" and not gold["area"] >= r * o["area"]:
                out.append(f"answer area {gold['area']} not >= {r} x area {o['area']} of {d!r}")
            elif spec["which"] == "smallest" and not o["area"] >= r * gold["area"]:
                out.append(f"area {o['area']} of {d!r} not >= {r} x answer area {gold['area']}")
            elif spec["which"] not in ("largest", "smallest"):
                out.append(f"unknown which {spec['which']!r}")
        return out

    def _object_answer(self, scene, row, gold: dict, excluded: list[dict]) -> list[str]:
        out = []
        said = self.resolve(scene, row["answer"])
        if said is not gold:
            out.append(f"answer {row['answer']!r} names {said['id']}, recomputed {gold['id']}")
        for d in row["distractors"]:
            o = self.resolve(scene, d)
            if o is gold:
                out.append(f"distractor {d!r} names the answer's object")
            if any(o is x for x in excluded):
                out.append(f"distractor {d!r} names an excluded object")
        return out

    def _s1_closest(self, scene, row, spec):
        anchor = self.resolve(scene, spec["anchor"])
        out = self._mentions(row, f"{WHICH_WORDS[spec['which']]} the {spec['anchor']}")
        gold = self.by_distance(scene, spec["which"], anchor)
        return out + self._object_answer(scene, row, gold, [anchor])

    def _s1_extreme(self, scene, row, spec):
        gold = self.extreme(scene, spec["direction"])
        out = self._direction_words(row, spec["direction"])
        return out + self._object_answer(scene, row, gold, [])

    def _s1_count_comparison(self, scene, row, spec):
        ta, tb = spec["a_things"], spec["b_things"]
        na, nb = len(self.group_members(scene, ta)), len(self.group_members(scene, tb))
        out = self._mentions(row, ta, tb)
        for g, n, t in (("a", na, ta), ("b", nb, tb)):
            if g in spec and len(self.spec_group_members(scene, spec[g])) != n:
                out.append(f"spec.{g} counts differently from {t!r}")
        options = {f"more {ta}", f"more {tb}", SAME_COUNT, NONE_OF_EITHER}
        if {row["answer"], *row["distractors"]} != options:
            out.append(f"options {[row['answer'], *row['distractors']]} are not {sorted(options)}")
        gold = (
            NONE_OF_EITHER if na == nb == 0 else SAME_COUNT if na == nb else f"more {ta}" if na > nb else f"more {tb}"
        )
        if row["answer"] != gold:
            out.append(f"answer {row['answer']!r}, recomputed {gold!r} ({na} vs {nb})")
        return out

    # --- stage 2 ---------------------------------------------------------------

    def _chain_answer(self, scene, row, spec, selected: dict, parents: list[dict] | None) -> list[str]:
        key = spec["key"]
        if key not in self.keys:
            return [f"unknown key {key!r}"]
        out = self._mentions(row, spec.get("referent", ""))
        out += self._value_answer(scene, row, selected["attrs"].get(key), key)
        if parents is not None:
            last = parents[-1]
            if last["family"] != "attribute":
                out.append(f"last parent is {last['family']}, not attribute")
            elif last["answer"] != row["answer"]:
                out.append(f"last parent's answer {last['answer']!r} != {row['answer']!r}")
            last_spec = json.loads(last["spec"])
            if last.get("family") == "attribute" and self.resolve(scene, last_spec["object"]) is not selected:
                out.append("last parent asks about another object than the one selected")
        return out

    def _s2_chain2(self, scene, row, spec, stage1_by_id):
        if "direction" in spec:
            selected = self.extreme(scene, spec["direction"])
            out = [] if "which" not in spec else ["chain2 with both direction and which"]
            out += self._direction_words(row, spec["direction"])
        else:
            anchor = self.resolve(scene, spec["anchor"])
            selected = self.by_distance(scene, spec["which"], anchor)
            out = self._mentions(row, f"{WHICH_WORDS[spec['which']]} the {spec['anchor']}")
        parents = self._parent_rows(row, stage1_by_id)
        if len(row["parents"]) != 2:
            out.append(f"chain2 with {len(row['parents'])} parents")
        return out + self._chain_answer(scene, row, spec, selected, parents)

    def _s2_chain3(self, scene, row, spec, stage1_by_id):
        x = self.extreme(scene, spec["direction"])
        y = self.by_distance(scene, spec["which"], x)
        out = [] if len(row["parents"]) == 3 else [f"chain3 with {len(row['parents'])} parents"]
        out += self._direction_words(row, spec["direction"])
        out += self._mentions(row, f"{WHICH_WORDS[spec['which']]} the object")
        return out + self._chain_answer(scene, row, spec, y, self._parent_rows(row, stage1_by_id))

    def _counting_parents(self, scene, row, groups: list[dict], parents: list[dict] | None) -> list[str]:
        """Each group is the group of one counting parent, in order, and the question names its phrase."""
        if parents is None:
            return []
        out = []
        counting = [p for p in parents if p["family"] == "counting"]
        if len(counting) != len(groups):
            return [f"{len(counting)} counting parents for {len(groups)} groups"]
        for group, p in zip(groups, counting):
            things = json.loads(p["spec"])["things"]
            ids = sorted(o["id"] for o in self.group_members(scene, things))
            if ids != sorted(o["id"] for o in self.spec_group_members(scene, group)):
                out.append(f"group {group} does not count the parent's {things!r}")
            out += self._mentions(row, things)
        return out

    def _s2_count_sum(self, scene, row, spec, stage1_by_id):
        ma, mb = self.spec_group_members(scene, spec["a"]), self.spec_group_members(scene, spec["b"])
        out = self._counting_parents(scene, row, [spec["a"], spec["b"]], self._parent_rows(row, stage1_by_id))
        if {o["id"] for o in ma} & {o["id"] for o in mb}:
            out.append("the two groups share objects")
        return out + self._count_answer(row, len(ma) + len(mb))

    def _s2_count_difference(self, scene, row, spec, stage1_by_id):
        na, nb = len(self.spec_group_members(scene, spec["a"])), len(self.spec_group_members(scene, spec["b"]))
        out = [] if na > nb else [f"|a| = {na} is not more than |b| = {nb}"]
        out += self._counting_parents(scene, row, [spec["a"], spec["b"]], self._parent_rows(row, stage1_by_id))
        return out + self._count_answer(row, na - nb)

    def _s2_attribute_pair(self, scene, row, spec, stage1_by_id):
        key = spec["key"]
        if key not in self.keys:
            return [f"unknown key {key!r}"]
        a, b = self.resolve(scene, spec["a"]), self.resolve(scene, spec["b"])
        out = self._mentions(row, spec["a"], spec["b"])
        if a is b:
            out.append("a and b are the same object")
        for p in (spec["a"], spec["b"]):
            if key in self.parse_phrase(scene, p)[0]:
                out.append(f"phrase {p!r} uses the asked {key}")
        va, vb = a["attrs"].get(key), b["attrs"].get(key)
        if va is None or vb is None:
            return out + [f"an object has no {key}"]
        gold = f"{va} and {vb}"
        if row["answer"] != gold:
            out.append(f"answer {row['answer']!r}, recomputed {gold!r}")
        for d in row["distractors"]:
            if d.lower() == gold.lower():
                out.append(f"distractor {d!r} is also correct")
            parts = d.split(" and ")
            if len(parts) != 2 or not all(self._is_value_of(scene, v, key) for v in parts):
                out.append(f"distractor {d!r} is not '<{key}> and <{key}>'")
        if key in self.nouns and self.nouns[key] not in row["question"]:
            out.append(f"question does not name the {key} ({self.nouns[key]!r})")
        if row["question"].find(spec["a"]) > row["question"].rfind(spec["b"]):
            out.append("the question names b before a")
        parents = self._parent_rows(row, stage1_by_id)
        if parents is not None:
            pspecs = [json.loads(p["spec"]) for p in parents]
            if [p["family"] for p in parents] != ["attribute", "attribute"]:
                out.append("parents are not two attribute questions")
            elif [(ps["object"], ps["key"]) for ps in pspecs] != [(spec["a"], key), (spec["b"], key)]:
                out.append("parents do not ask the same key about a, then b")
        return out

    def _s2_conditional(self, scene, row, spec, stage1_by_id):
        a, b = self.resolve(scene, spec["a"]), self.resolve(scene, spec["b"])
        stated = spec["stated"]
        out = self._mentions(row, f"the {spec['a']}", f"the {spec['b']}", STATED_WORDS[stated])
        if a is b:
            return out + ["a and b are the same object"]
        rel = self.clear_relation(scene, a, b)
        if rel not in (stated, OPPOSITE[stated]):
            out.append(f"neither {stated!r} nor its opposite holds (it is {rel!r})")
        parents = self._parent_rows(row, stage1_by_id)
        out += self._counting_parents(scene, row, [spec["then"], spec["else"]], parents)
        if parents is not None:
            pos = [json.loads(p["spec"]) for p in parents if p["family"] == "relative_position"]
            if len(pos) != 1 or {pos[0]["a"], pos[0]["b"]} != {spec["a"], spec["b"]}:
                out.append("no relative_position parent about a and b")
        n_then = len(self.spec_group_members(scene, spec["then"]))
        n_else = len(self.spec_group_members(scene, spec["else"]))
        if n_then == n_else:
            out.append(f"both branches count {n_then}")
        gold = n_then if rel == stated else n_else
        return out + self._count_answer(row, gold)
