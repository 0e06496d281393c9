"""Rows of the question tables: stable ids, the shared layout, dedup and the yield funnel."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from lgt.ids import content_id
from lgt.questions.families import Draft
from schemas.questions import QUESTION_ITEMS_ARROW


def canon(text: str) -> str:
    """Case and spacing folded: the form question texts are compared and hashed in."""
    return " ".join(text.lower().split())


def question_id(image_id: str, question: str, answer: str, distractors: Iterable[str]) -> str:
    """Content hash of the question and its image (LPT): the same item made twice gets the same id."""
    return content_id(image_id, canon(question), canon(answer), *sorted(canon(d) for d in distractors))


def item_row(
    d: Draft,
    image_id: str,
    source: str,
    *,
    stage: int,
    origin: str,
    prompt_version: str,
    model: str = "",
    call_keys: Iterable[str] = (),
    templated: str | None = None,
    rewrite: str = "",
    question: str | None = None,
) -> dict[str, Any]:
    q = question or d.question
    return {
        "question_id": question_id(image_id, q, d.answer, d.distractors),
        "image_id": image_id,
        "source": source,
        "stage": stage,
        "family": d.family,
        "origin": origin,
        "hops": d.hops if stage == 2 else 1,
        "question": q,
        "templated_question": templated if templated is not None else d.question,
        "rewrite": rewrite,
        "answer": d.answer,
        "distractors": list(d.distractors),
        "reasoning_type": d.reasoning_type,
        "grounding_ids": list(d.grounding),
        "parents": list(d.parents),
        "spec": json.dumps(d.spec, separators=(",", ":")),
        "prompt_version": prompt_version,
        "model": model,
        "call_keys": list(call_keys),
    }


def dedupe(rows: list[dict[str, Any]], rejects: Counter) -> list[dict[str, Any]]:
    """One row per image, normalised question text and option set; later copies count as `duplicate`.

    The options are part of the key because one text can ask different things
    ("Which of these can be seen?" over different options).
    """
    seen: set[tuple] = set()
    out = []
    for r in rows:
        k = (r["image_id"], canon(r["question"]), frozenset(canon(o) for o in [r["answer"], *r["distractors"]]))
        if k in seen:
            rejects["duplicate"] += 1
            continue
        seen.add(k)
        out.append(r)
    return out


def items_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=QUESTION_ITEMS_ARROW)


def config_version(name: str, *configs: Any) -> str:
    """A version for code-made questions: the settings that shape them, hashed."""
    text = json.dumps(configs, sort_keys=True, default=str, separators=(",", ":"))
    return f"{name}@{hashlib.sha256(text.encode()).hexdigest()[:12]}"
