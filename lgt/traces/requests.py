"""What the trace stages share: which questions a shard sends, how a question is sent, and row ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lgt.engines import ImageInput, Request, Sampling
from lgt.ids import in_share
from lgt.images.stand_in import stand_in


def pick_questions(questions: list[dict[str, Any]], share: float | None) -> list[dict[str, Any]]:
    """The questions in `share` (`lgt.ids.in_share` of the question id), in the order given."""
    return [q for q in questions if in_share(share, q["question_id"])]


def question_requests(
    questions: list[dict[str, Any]],
    images: dict[str, dict[str, Any]],
    share: float | None,
    sampling: Sampling,
    prefill: str = "",
    keys: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], list[Request]]:
    """The questions a shard sends (`pick_questions`) and one request each."""
    sent = pick_questions(questions, share)
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
