"""`questions`: both stages' items, deduplicated, shuffled and formatted, ready to send (LPT formatting).

Per question, a generator seeded by the recipe seed and the question id
shuffles the four options, then draws the option style ("(A) text" or
"A. text") and the requested answer format ("(X)", "X." or the option text).
The system prompt asks for <think>…</think><answer>…</answer>, names the
reasoning type and states the answer format.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from typing import Any

import pyarrow as pa

from lgt.prompts import load_prompt
from lgt.questions.rows import dedupe
from lgt.questions.settings import QuestionsSettings
from lgt.results import StageResult, timed
from schemas.questions import QUESTIONS_ARROW
from schemas.vocab import LETTERS

SYSTEM_PROMPT = "question_system.j2"
USER_PROMPT = "question_user.j2"


def question_seed(seed: int, question_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"lgt-q:{seed}:{question_id}".encode()).digest()[:8], "big") >> 1


def format_question(item: dict[str, Any], settings: QuestionsSettings) -> dict[str, Any]:
    """Shuffle, letter and render one item; deterministic in (recipe seed, question id)."""
    seed = question_seed(settings.seed, item["question_id"])
    rng = random.Random(seed)
    options = [item["answer"], *item["distractors"]]
    rng.shuffle(options)
    style = str(rng.choice(settings.option_styles))  # plain strings in the row and the prompt
    answer_format = str(rng.choice(settings.answer_formats))
    system, user = load_prompt(SYSTEM_PROMPT), load_prompt(USER_PROMPT)
    return {
        "question_id": item["question_id"],
        "image_id": item["image_id"],
        "source": item["source"],
        "stage": item["stage"],
        "family": item["family"],
        "origin": item["origin"],
        "hops": item["hops"],
        "question": item["question"],
        "options": options,
        "gold_letter": LETTERS[options.index(item["answer"])],
        "gold_text": item["answer"],
        "option_style": style,
        "answer_format": answer_format,
        "reasoning_type": item["reasoning_type"],
        "system_prompt": system.render(reasoning_type=item["reasoning_type"], answer_format=answer_format),
        "user_prompt": user.render(question=item["question"], options=list(zip(LETTERS, options)), option_style=style),
        "grounding_ids": item["grounding_ids"],
        "parents": item["parents"],
        "prompt_version": f"{item['prompt_version']};{system.version};{user.version}",
        "seed": seed,
    }


@timed
def build_questions(grounded: pa.Table, composed: pa.Table, settings: QuestionsSettings) -> StageResult:
    items = grounded.to_pylist() + composed.to_pylist()
    rejects: Counter = Counter()
    kept = dedupe(items, rejects)  # stage 1 first: a composed question equal to a stage-1 one is the copy
    rows = [format_question(it, settings) for it in kept]
    table = pa.Table.from_pylist(rows, schema=QUESTIONS_ARROW)
    funnel = {"stage_1": grounded.num_rows, "stage_2": composed.num_rows, "kept": len(rows)}
    return StageResult(table, funnel, rejects, Counter(f"{r['stage']}/{r['family']}" for r in rows))
