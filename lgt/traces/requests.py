"""What the trace stages share: which questions a shard sends, how a question is sent, and row ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lgt.engines import ImageInput, Request, Sampling
from lgt.images.stand_in import stand_in


def pick_questions(questions: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """Up to `limit` questions, stage 1 and stage 2 taken in turn (each in question-id order), so both get traces."""
    if limit is None or limit >= len(questions):
        return questions
    by_stage: dict[int, list[dict]] = {}
    for q in sorted(questions, key=lambda q: q["question_id"]):
        by_stage.setdefault(q["stage"], []).append(q)
    lanes = [by_stage[s] for s in sorted(by_stage)]
    out: list[dict] = []
    i = 0
    while len(out) < limit:
        lane = lanes[i % len(lanes)]
        if lane:
            out.append(lane.pop(0))
        i += 1
    return out


def question_requests(
    questions: list[dict[str, Any]],
    images: dict[str, dict[str, Any]],
    limit: int | None,
    sampling: Sampling,
    prefill: str = "",
    keys: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], list[Request]]:
    """The questions a shard sends (`pick_questions`) and one request each."""
    sent = pick_questions(questions, limit)
    return sent, [question_request(q, images[q["image_id"]], sampling, prefill, keys) for q in sent]


def question_request(
    question: dict[str, Any],
    image: dict[str, Any],
    sampling: Sampling,
    prefill: str = "",
    keys: Sequence[str] | None = None,
) -> Request:
    """A formatted question as LPT sends it: its system prompt, then the image and the lettered options."""
    img = ImageInput(image["image"]["bytes"], stand_in=stand_in(image, keys))
    return Request(
        messages=[
            {"role": "system", "content": question["system_prompt"]},
            {
                "role": "user",
                "content": [{"type": "image", "image": img}, {"type": "text", "text": question["user_prompt"]}],
            },
        ],
        prefill=prefill,
        sampling=sampling,
    )
