"""LPT stage C, `long_cots`: the reasoner expands each simple CoT into a long thought.

It reads the caption instead of the image (LPT; the recipe can add the object
list), under a prompt that forbids revealing that. Its thinking is prefilled
with an opening that restates the question and options, the simple CoT in its
original casing (a full stop added where missing), a newline or a space, and a
cue word drawn from the recipe; it continues from there. Leak words are banned
at decode time where the backend can (`ban_enforced` says per row), and the
continuation is dropped when it still leaks: a leak word from a word's start,
an object id, or coordinates.
A continuation must close the thought and answer within the token limit, or,
under a thinking budget, the engine closes it (`forced_close`, kept when
`keep_forced`).
Every expansion is labelled O->O, O->X, X->O or X->X.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from lgt.answers import choice_in_answer
from lgt.engines import EngineFor, Request
from lgt.ids import content_id, in_share
from lgt.images.stand_in import stand_in
from lgt.prompts import load_prompt
from lgt.results import StageResult, timed
from lgt.traces.parse import Parsed, leak, leak_pattern, letter, parse_think_answer, usable
from lgt.traces.settings import LongCotsSettings
from schemas.traces import LONG_COTS_ARROW
from schemas.vocab import LETTERS, long_category

PROMPT = "long_cot.j2"
OPENING = "long_cot_opening.j2"
SEPARATORS = ("\n", " ")

# an object named by an id: "object 3", "obj_3", "Object #12", "id 4"
OBJECT_ID = re.compile(r"\b(?:obj(?:ect)?s?|ids?)[\s_#:=-]*\d+\b", re.IGNORECASE)
_NUM = r"-?\d+(?:\.\d+)?"
COORDINATES = re.compile(
    "|".join(
        (
            r"(?<![\w.])0?\.\d{2,}",  # a fraction with two or more decimals, as boxes are written: 0.086
            r"(?<![\w.])0?\.\d+\s*(?:to|-|–|and)\s*0?\.\d+",  # a span of fractions: 0.2 to 0.4
            rf"[(\[]\s*{_NUM}(?:\s*,\s*{_NUM})+\s*[)\]]",  # a tuple of numbers: (12, 40), [0.1, 0.2, 0.3, 0.4]
            rf"\b[xy][12]?\s*[=:]\s*{_NUM}",  # x=12, y1: 0.4
            r"\b[xy][12]?\s+(?:from\s+|of\s+|at\s+|is\s+)?-?\d*\.\d",  # x 0.5, y from 0.25
            r"\b(?:bounding[\s-]*box(?:es)?|bbox(?:es)?|coordinates?)\b",
        )
    ),
    re.IGNORECASE,
)


def with_full_stop(thought: str) -> str:
    t = thought.rstrip()
    return t if t.endswith((".", "!", "?")) else t + "."


def pick_cots(cots: list[dict[str, Any]], share: float | None) -> list[dict[str, Any]]:
    """The simple CoTs in `share` (`lgt.ids.in_share` of the CoT id), by (sample index, id)."""
    return sorted((c for c in cots if in_share(share, c["cot_id"])), key=lambda c: (c["sample_index"], c["cot_id"]))


def leak_reason(
    text: str, pattern: re.Pattern | None, entries: Sequence[str], object_ids: Sequence[str] = ()
) -> str | None:
    """Why a continuation leaks what the reasoner read, or None: `word:<entry>` for a leak word or phrase (the
    longest list entry the word starts with), `object_id` ("object 3", or an id of the image's objects that is
    no plain number), `coordinates` (box numbers, "x 0.086", "(12, 40)", bounding-box talk)."""
    if (word := leak(text, pattern)) is not None:
        w = word.lower()
        return "word:" + max(
            (e.strip().lower() for e in entries if w.startswith(e.strip().lower())), key=len, default=w
        )
    ids = [re.escape(i) for i in object_ids if i and not i.isdigit() and any(c.isdigit() for c in i)]
    if OBJECT_ID.search(text) or (ids and re.search(rf"(?<!\w)(?:{'|'.join(ids)})(?!\w)", text)):
        return "object_id"
    if COORDINATES.search(text):
        return "coordinates"
    return None


def expansion_prefill(cot: dict[str, Any], question: dict[str, Any], cue: str, sep: str) -> tuple[str, str]:
    """(the assistant prefill, the part of it that belongs to the final thought)."""
    opening = load_prompt(OPENING).render(
        question=question["question"], options=list(zip(LETTERS, question["options"]))
    )
    kept = with_full_stop(cot["thought"]) + sep + cue
    return f"<think>\n{opening}\n\n{kept}", kept


def long_cot_requests(
    simple: pa.Table,
    questions: pa.Table,
    images: pa.Table,
    settings: LongCotsSettings,
    keys: Sequence[str] | None = None,
) -> tuple[list[tuple[dict, dict, str, str, int]], list[Request]]:
    """One request per (simple CoT, sample): its own cue and separator, so each sample has its own prefill."""
    q_by_id = {q["question_id"]: q for q in questions.to_pylist()}
    img_by_id = {r["image_id"]: r for r in images.to_pylist()}
    cots = pick_cots(simple.to_pylist(), settings.share)
    prompt = load_prompt(PROMPT)
    banned = sorted({*settings.sampling.banned_words, *settings.banned_words})
    objects = settings.reasoner_reads == "caption+objects"

    jobs: list[tuple[dict, dict, str, str, int]] = []  # (cot, question, cue, kept prefill, sample index)
    requests: list[Request] = []
    for cot in cots:
        q = q_by_id[cot["question_id"]]
        user = prompt.render(
            scene=stand_in(img_by_id[cot["image_id"]], keys, objects=objects),
            objects=objects,
            question=q["question"],
            options=list(zip(LETTERS, q["options"])),
            answer_format=q["answer_format"],
        )
        for j in range(settings.sampling.n):
            rng = random.Random(content_id("cue", settings.seed, cot["cot_id"], j))
            cue, sep = rng.choice(settings.cues), rng.choice(SEPARATORS)
            prefill, kept = expansion_prefill(cot, q, cue, sep)
            sampling = settings.sampling.model_copy(
                update={"n": 1, "seed": settings.sampling.seed + j, "banned_words": banned}
            )
            requests.append(Request(messages=[{"role": "user", "content": user}], prefill=prefill, sampling=sampling))
            jobs.append((cot, q, cue, kept, j))
    return jobs, requests


@timed
def build_long_cots(
    simple: pa.Table,
    questions: pa.Table,
    images: pa.Table,
    settings: LongCotsSettings,
    engine_for: EngineFor,
    keys: Sequence[str] | None = None,
) -> StageResult:
    jobs, requests = long_cot_requests(simple, questions, images, settings, keys)
    pattern = leak_pattern(settings.banned_words, settings.leak_phrases, settings.leak_exempt)
    entries = [*settings.banned_words, *settings.leak_phrases]
    ids_of = {
        r["image_id"]: [o["object_id"] for o in r["objects"] or ()]
        for r in images.select(["image_id", "objects"]).to_pylist()
    }
    engine = engine_for(settings.role)
    results = engine.generate(requests)
    rejects: Counter = Counter()
    rows: list[dict[str, Any]] = []
    for (cot, q, cue, kept, j), req, res in zip(jobs, requests, results):
        s = res.samples[0]
        if not usable(s, settings.keep_forced, rejects):
            continue
        parsed = parse_think_answer(req.prefill + s.text)
        if not isinstance(parsed, Parsed):
            why = "thought_not_closed" if parsed == "thought_not_closed" and s.finish_reason == "length" else parsed
            rejects[f"unparseable/{why}"] += 1
            continue
        added = s.text[: s.text.lower().index("</think>")].rstrip()
        if not added.strip():
            rejects["empty_continuation"] += 1
            continue
        if (why := leak_reason(added, pattern, entries, ids_of[cot["image_id"]])) is not None:
            rejects[f"leak/{why}"] += 1
            continue
        choice = letter(choice_in_answer(parsed.answer, q["options"]))
        correct = choice == q["gold_letter"]
        rows.append(
            {
                "trace_id": content_id("long", cot["cot_id"], s.key),
                "cot_id": cot["cot_id"],
                **{k: cot[k] for k in ("question_id", "image_id", "source", "stage", "family")},
                "sample_index": j,
                "cue": cue,
                "continuation": s.text,
                "thought": kept + added,
                "added_chars": len(cue + added),
                "answer": parsed.answer,
                "choice": choice,
                "gold_letter": q["gold_letter"],
                "simple_correct": cot["correct"],
                "correct": correct,
                "category": long_category(cot["correct"], correct),
                "forced_close": s.forced_close,
                "forced_continue": s.forced_continue,
                "ban_enforced": res.ban_enforced,
                "model": engine.backend.model_id,
                "prompt_version": f"{load_prompt(PROMPT).version};{load_prompt(OPENING).version}",
                "call_keys": [cot["call_key"], s.key],
            }
        )
    funnel = {
        "simple_cots": simple.num_rows,
        "expanded": len({cot["cot_id"] for cot, *_ in jobs}),
        "samples": len(requests),
        "kept": len(rows),
        "correct": sum(r["correct"] for r in rows),
        "forced_close": sum(r["forced_close"] for r in rows),
    }
    return StageResult(
        pa.Table.from_pylist(rows, schema=LONG_COTS_ARROW), funnel, rejects, Counter(r["category"] for r in rows)
    )
