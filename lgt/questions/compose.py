"""Stage-2 composition hardening: 2-3 stage-1 questions about one image -> one multi-hop question.

- chain: hop 1 picks an object, the next hop asks about it ("What colour is the
  object closest to the object furthest to the left?").
- combine: two counts added or subtracted, or two attributes reported together.
- conditional: a spatial condition selects which of two counts is asked for.

Every gold answer is recomputed from the image's objects, never taken from an
LLM; the parents' margins (no near-ties) carry over because a composed
question only re-uses their referents. Distractors include the answers a
solver reaches through a wrong intermediate step.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from lgt.language import plural
from lgt.questions.families import (
    CLOSEST_WORDS,
    EXTREME_KEYS,
    EXTREME_WORDS,
    OPPOSITE,
    RELATION_OF,
    Draft,
    View,
    count_distractors,
    pick_distractors,
)

Maker = Callable[[random.Random], Draft | None]  # renders one candidate; None if it turns out degenerate

REASONING = {  # by the kind a composed question records in its spec
    "chain": "Spatial & Relational",
    "count_sum": "Counting & Quantification",
    "count_difference": "Counting & Quantification",
    "attribute_pair": "Recognition",
    "conditional": "Logical Reasoning",
}


def selector_phrase(item: dict[str, Any], anchor_phrase: str | None = None) -> str:
    """The noun phrase for an object-selecting item's answer: 'the object furthest to the left'."""
    spec = item["spec"]
    if item["family"] == "extreme":
        return f"the object {EXTREME_WORDS[spec['direction']]}"
    return f"the object {CLOSEST_WORDS[spec['which']]} {anchor_phrase or 'the ' + spec['anchor']}"


def nearest(view: View, anchor_id: str, which: str) -> str:
    a = view.by_id[anchor_id]
    ranked = sorted(
        (((o.cx - a.cx) ** 2 + (o.cy - a.cy) ** 2), i, o.id) for i, o in enumerate(view.objects) if o.id != anchor_id
    )
    return ranked[0][2] if which == "closest" else ranked[-1][2]


def _value(view: View, object_id: str, key: str) -> str | None:
    return view.by_id[object_id].attrs.get(key)


def _chains(view: View, items: list[dict]) -> list[Maker]:
    attr_of: dict[str, list[dict]] = {}
    for it in items:
        if it["family"] == "attribute":
            attr_of.setdefault(it["spec"]["object_id"], []).append(it)
    out = []
    closest = [it for it in items if it["family"] == "closest"]
    for sel in [it for it in items if it["family"] in ("closest", "extreme")]:
        for t in attr_of.get(sel["spec"]["object_id"], []):
            out.append(partial(_chain, view, [sel, t], selector_phrase(sel)))
    for e in [it for it in items if it["family"] == "extreme"]:
        x = e["spec"]["object_id"]
        for c in [it for it in closest if it["spec"]["anchor_id"] == x]:
            for t in attr_of.get(c["spec"]["object_id"], []):
                out.append(partial(_chain, view, [e, c, t], selector_phrase(c, selector_phrase(e))))
    return out


def _chain(view: View, hops: list[dict], referent: str, rng: random.Random) -> Draft | None:
    *selectors, t = hops
    key = t["spec"]["key"]
    noun, vocab = view.rules.attributes[key]
    last = selectors[-1]["spec"]
    gold = _value(view, last["object_id"], key)
    # wrong intermediates: the options hop 1 offered instead, followed through the later hops
    wrong_objects = list(last["option_ids"])
    if len(selectors) == 2:
        wrong_objects += [nearest(view, x, last["which"]) for x in selectors[0]["spec"]["option_ids"]]
    wrong = [v for o in wrong_objects if (v := _value(view, o, key))]
    in_scene = [o.attrs[key] for o in view.objects if key in o.attrs]
    distractors = pick_distractors(rng, gold, [wrong, t["distractors"], in_scene, vocab])
    spec: dict[str, Any] = {"kind": f"chain{len(hops)}", "key": key, "referent": referent}
    if selectors[0]["family"] == "extreme":
        spec["direction"] = selectors[0]["spec"]["direction"]
    if selectors[-1]["family"] == "closest":
        spec["which"] = last["which"]
        if len(selectors) == 1:
            spec["anchor"] = last["anchor"]
    question = rng.choice(
        (
            f"What {noun} is {referent}?",
            f"Find {referent}. What {noun} is it?",
            f"Consider {referent}. Which {noun} does it have?",
        )
    )
    grounding = list(dict.fromkeys(g for h in hops for g in h["grounding_ids"]))
    return Draft(
        "chain",
        question,
        gold,
        distractors or [],
        grounding,
        spec,
        [h["question_id"] for h in hops],
        REASONING["chain"],
    )


def _group_kind(group: dict[str, Any]) -> tuple:
    return (tuple(sorted(group["attributes"])), group["label"] is None)


def _disjoint(ga: dict[str, Any], gb: dict[str, Any]) -> bool:
    """Two groups of one kind with different values never share an object (one label, one value per key)."""
    return _group_kind(ga) == _group_kind(gb) and len(ga["attributes"]) + (ga["label"] is not None) == 1 and ga != gb


def _combines(view: View, items: list[dict]) -> list[Maker]:
    out = []
    counts = [it for it in items if it["family"] == "counting"]
    for i, a in enumerate(counts):
        for b in counts[i + 1 :]:
            if _disjoint(a["spec"]["group"], b["spec"]["group"]):
                out += [partial(_count_sum, view, a, b), partial(_count_difference, view, a, b)]
    attrs = [it for it in items if it["family"] == "attribute"]
    for i, a in enumerate(attrs):
        for b in attrs[i + 1 :]:
            if a["spec"]["key"] == b["spec"]["key"] and a["spec"]["object_id"] != b["spec"]["object_id"]:
                out.append(partial(_attribute_pair, view, a, b))
    return out


def _count(view: View, item: dict) -> int:
    return len(view.members(_as_group(item["spec"]["group"])))


def _count_sum(view: View, a: dict, b: dict, rng: random.Random) -> Draft:
    ca, cb = _count(view, a), _count(view, b)
    ta, tb = a["spec"]["things"], b["spec"]["things"]
    total = ca + cb
    return Draft(
        "combine",
        rng.choice(
            (
                f"How many {ta} and {tb} are there in total?",
                f"Counting the {ta} and the {tb} together, how many objects are there?",
            )
        ),
        str(total),
        pick_distractors(rng, str(total), [[str(ca), str(cb)], count_distractors(rng, total)]) or [],
        a["grounding_ids"] + b["grounding_ids"],
        {"kind": "count_sum", "a": a["spec"]["group"], "b": b["spec"]["group"]},
        [a["question_id"], b["question_id"]],
        REASONING["count_sum"],
    )


def _count_difference(view: View, a: dict, b: dict, rng: random.Random) -> Draft | None:
    (hi, qhi), (lo, qlo) = sorted([(_count(view, a), a), (_count(view, b), b)], key=lambda t: -t[0])
    if hi == lo:
        return None  # no difference to ask about
    thi, tlo = qhi["spec"]["things"], qlo["spec"]["things"]
    diff = hi - lo
    return Draft(
        "combine",
        rng.choice((f"How many more {thi} than {tlo} are there?", f"By how many do the {thi} outnumber the {tlo}?")),
        str(diff),
        pick_distractors(rng, str(diff), [[str(hi), str(lo)], count_distractors(rng, diff)]) or [],
        qhi["grounding_ids"] + qlo["grounding_ids"],
        {"kind": "count_difference", "a": qhi["spec"]["group"], "b": qlo["spec"]["group"]},
        [qhi["question_id"], qlo["question_id"]],
        REASONING["count_difference"],
    )


def _attribute_pair(view: View, a: dict, b: dict, rng: random.Random) -> Draft:
    sa, sb = a["spec"], b["spec"]
    key = sa["key"]
    noun = view.rules.attributes[key][0]
    va, vb = _value(view, sa["object_id"], key), _value(view, sb["object_id"], key)
    gold = f"{va} and {vb}"
    pools = [
        [f"{vb} and {va}"],
        [f"{va} and {d}" for d in b["distractors"]] + [f"{d} and {vb}" for d in a["distractors"]],
    ]
    return Draft(
        "combine",
        rng.choice(
            (
                f"What are the {plural(noun)} of the {sa['object']} and the {sb['object']}, in that order?",
                f"Name the {noun} of the {sa['object']}, then the {noun} of the {sb['object']}.",
            )
        ),
        gold,
        pick_distractors(rng, gold, pools) or [],
        a["grounding_ids"] + b["grounding_ids"],
        {"kind": "attribute_pair", "key": key, "a": sa["object"], "b": sb["object"]},
        [a["question_id"], b["question_id"]],
        REASONING["attribute_pair"],
    )


def _as_group(g: dict[str, Any]) -> tuple:
    return (tuple(sorted(g["attributes"].items())), g["label"])


def _conditionals(view: View, items: list[dict]) -> list[Maker]:
    counts = [it for it in items if it["family"] == "counting"]
    pairs = [(c1, c2) for i, c1 in enumerate(counts) for c2 in counts[i + 1 :]]
    return [
        partial(_conditional, view, p, c1, c2) for p in items if p["family"] == "relative_position" for c1, c2 in pairs
    ]


def _conditional(view: View, p: dict, c1: dict, c2: dict, rng: random.Random) -> Draft | None:
    n1, n2 = _count(view, c1), _count(view, c2)
    if n1 == n2:
        return None  # both branches would give the same answer: the condition would not matter
    sp = p["spec"]
    stated = sp["relation"] if rng.random() < 0.5 else OPPOSITE[sp["relation"]]
    gold, other = (n1, n2) if stated == sp["relation"] else (n2, n1)
    t1, t2 = c1["spec"]["things"], c2["spec"]["things"]
    question = (
        f"If the {sp['a']} is {RELATION_OF[stated]} the {sp['b']}, how many {t1} are there? "
        f"Otherwise, how many {t2} are there?"
    )
    return Draft(
        "conditional",
        question,
        str(gold),
        pick_distractors(rng, str(gold), [[str(other)], count_distractors(rng, gold)]) or [],
        list(dict.fromkeys(p["grounding_ids"] + c1["grounding_ids"] + c2["grounding_ids"])),
        {
            "kind": "conditional",
            "a": sp["a"],
            "b": sp["b"],
            "stated": stated,
            "then": c1["spec"]["group"],
            "else": c2["spec"]["group"],
        },
        [p["question_id"], c1["question_id"], c2["question_id"]],
        REASONING["conditional"],
    )


@dataclass(frozen=True)
class Composition:
    """One stage-2 composition: `candidates(view, items)` gives a maker per usable combination of one image's items."""

    name: str
    candidates: Callable[[View, list[dict]], list[Maker]]


# the registry, in the order of the recipe's default compositions
COMPOSITIONS: dict[str, Composition] = {
    c.name: c
    for c in (
        Composition("chain", _chains),
        Composition("combine", _combines),
        Composition("conditional", _conditionals),
    )
}


def compose(
    view: View, items: Sequence[dict[str, Any]], quotas: dict[str, int], seed: int, skips: Counter | None = None
) -> list[Draft]:
    """Up to `quotas[name]` composed questions per composition for one image, from its stage-1 template items.

    `items` are rows of `questions_grounded` (origin 'template') with `spec` decoded.
    """
    items = sorted(items, key=lambda it: it["question_id"])  # the order rows arrive in must not matter
    skips = Counter() if skips is None else skips
    out = []
    for name, quota in quotas.items():
        rng = random.Random(f"lgt-q2:{seed}:{view.image_id}:{name}")
        makers = COMPOSITIONS[name].candidates(view, items)  # cheap: only the ones drawn are rendered
        rng.shuffle(makers)
        taken = 0
        for make in makers:
            if taken == quota:
                break
            d = make(rng)
            if d is None:
                skips["equal_counts"] += 1
            elif len(d.distractors) < 3:
                skips["too_few_distractors"] += 1
            else:
                out.append(d)
                taken += 1
    return out


__all__ = ["COMPOSITIONS", "EXTREME_KEYS", "Composition", "compose", "nearest", "selector_phrase"]
