"""The verifier role's view of a question: the image (or its stand-in) and the options, shuffled by the question.

Stage 1 (LLM-written items, rewrites) and stage 2 (rewrites) verify through this one view.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from lgt.engines import ImageInput, Request
from lgt.images.stand_in import stand_in
from lgt.prompts import load_prompt
from schemas.vocab import LETTERS

SOLVE_PROMPT = "solve_mcq.j2"


def solve_request(row: dict[str, Any], question: str, options: list[str], sampling, keys=None) -> Request:
    """The verifier's view of a question: the image (or its stand-in) and the lettered options."""
    text = load_prompt(SOLVE_PROMPT).render(question=question, options=list(zip(LETTERS, options)))
    image = ImageInput(row["image"]["bytes"], stand_in=stand_in(row, keys))
    content = [{"type": "image", "image": image}, {"type": "text", "text": text}]
    return Request(messages=[{"role": "user", "content": content}], sampling=sampling)


def verifier_view(question: str, options: Sequence[str], answer_index: int) -> tuple[list[str], int]:
    """The options in the order the verifier sees them, shuffled by a seed of the question, and the gold's index.

    Not the writer's order: a verifier that favours a position must not agree with a writer that favours
    the same one. Stage 1 and stage 2 verify through this one view.
    """
    order = list(range(len(options)))
    random.Random(f"lgt-verify:{question}").shuffle(order)
    return [options[i] for i in order], order.index(answer_index)
