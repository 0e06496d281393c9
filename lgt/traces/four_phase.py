"""MMFR's four-phase distillation, `four_phase`: a second trace recipe next to LPT's.

The teacher (a recipe role; it is shown the image, not the caption) answers
under the four-phase prompt, its reply prefilled with <think>. Kept traces
have exactly one think block, balanced answer tags, a final answer after the
thought (one only inside it is rejected), at least `min_words` words, and no
`ngram`-word run repeated `max_ngram_repeats` times. The final answer is
checked against the gold by matching first (`lgt.answers.choice_in_answer`);
an answer that matching cannot read goes to the verifier role as a judge,
whose last line must be Equivalent or Different (`judge_verdict`; anything
else counts as `judge_unreadable`, never as a verdict). Traces are kept with
`is_consistent` so the data shows both; the training sets take the consistent ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from lgt.answers import choice_in_answer, judge_verdict
from lgt.engines import EngineFor, Request, Sampling
from lgt.ids import content_id
from lgt.prompts import load_prompt
from lgt.results import StageResult, timed
from lgt.traces.parse import Parsed, four_phase_structure, parse_think_answer, repeated_ngram, usable
from lgt.traces.requests import question_requests
from lgt.traces.settings import FourPhaseSettings
from schemas.traces import FOUR_PHASE_ARROW
from schemas.vocab import LETTERS

PROMPT = "four_phase.j2"
JUDGE_PROMPT = "judge_equivalence.j2"
PREFILL = "<think>"


def four_phase_requests(
    questions: pa.Table,
    by_image: dict[str, dict[str, Any]],
    settings: FourPhaseSettings,
    keys: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], list[Request]]:
    """The teacher's requests: the question's own system prompt replaced by the four-phase one."""
    sent, requests = question_requests(
        questions.to_pylist(), by_image, settings.share, settings.sampling, PREFILL, keys
    )
    prompt = load_prompt(PROMPT)
    for q, req in zip(sent, requests):
        req.messages[0] = {"role": "system", "content": prompt.render(answer_format=q["answer_format"])}
    return sent, requests


def judge_requests(
    rows: list[dict[str, Any]], questions: dict[str, dict[str, Any]], sampling: Sampling
) -> list[Request]:
    judge = load_prompt(JUDGE_PROMPT)
    return [
        Request(
            messages=[
                {
                    "role": "user",
                    "content": judge.render(
                        question=questions[r["question_id"]]["user_prompt"],
                        reference=f"({r['answer']}) {r['original_answer']}",
                        candidate=r["final_answer"],
                    ),
                }
            ],
            sampling=sampling.model_copy(update={"n": 1}),
        )
        for r in rows
    ]


@timed
def build_four_phase(
    questions: pa.Table,
    images: pa.Table,
    settings: FourPhaseSettings,
    judge_sampling: Sampling,
    engine_for: EngineFor,
    keys: Sequence[str] | None = None,
) -> StageResult:
    by_image = {r["image_id"]: r for r in images.to_pylist()}
    sent, requests = four_phase_requests(questions, by_image, settings, keys)
    prompt = load_prompt(PROMPT)
    engine = engine_for(settings.role)
    results = engine.generate(requests)

    rejects: Counter = Counter()
    judged: Counter = Counter()
    rows: list[dict[str, Any]] = []
    to_judge: list[int] = []
    for q, res in zip(sent, results):
        for s in res.samples:
            if not usable(s, settings.keep_forced, rejects):
                continue
            response = PREFILL + s.text
            if why := four_phase_structure(response, settings.min_words):
                rejects[f"structure/{why}"] += 1
                continue
            if repeated_ngram(response, settings.ngram, settings.max_ngram_repeats):
                rejects["repetition"] += 1
                continue
            parsed = parse_think_answer(response)  # the structure is checked: only an empty part can fail here
            if not isinstance(parsed, Parsed):
                rejects[f"structure/{parsed}"] += 1
                continue
            picked = choice_in_answer(parsed.answer, q["options"])
            gold = LETTERS.index(q["gold_letter"])
            rows.append(
                {
                    "id": content_id("four_phase", q["question_id"], s.key),
                    **{k: q[k] for k in ("question_id", "image_id", "source", "stage", "family")},
                    "original_question": q["question"],
                    "original_answer": q["gold_text"],
                    "question": q["user_prompt"],
                    "answer": q["gold_letter"],
                    "caption": by_image[q["image_id"]]["caption"],
                    "response": response,
                    "thought": parsed.thought,
                    "final_answer": parsed.answer,
                    "words": len(response.split()),
                    "is_consistent": picked == gold,
                    "consistency_analysis": (
                        f"matched option {LETTERS[picked]}; gold {q['gold_letter']}" if picked is not None else ""
                    ),
                    "checked_by": "normalised",
                    "grounding": res.grounding,
                    "forced_close": s.forced_close,
                    "forced_continue": s.forced_continue,
                    "model": engine.backend.model_id,
                    "prompt_version": f"{prompt.version};{q['prompt_version']}",
                    "call_keys": [s.key],
                }
            )
            if picked is None:
                to_judge.append(len(rows) - 1)

    if to_judge and settings.judge:
        judge = load_prompt(JUDGE_PROMPT)
        reqs = judge_requests([rows[i] for i in to_judge], {q["question_id"]: q for q in sent}, judge_sampling)
        for i, res in zip(to_judge, engine_for("verifier").generate(reqs)):
            s, row = res.samples[0], rows[i]
            verdict = judge_verdict(s.text) if s.ok else None
            row["checked_by"] = "judge"
            row["is_consistent"] = verdict is True
            row["consistency_analysis"] = (
                f"judge: {s.text.strip()[:500]}"
                if verdict is not None
                else f"judge call failed ({s.error})"
                if not s.ok
                else f"judge unreadable (last line not Equivalent/Different): {s.text.strip()[-200:]}"
            )
            row["call_keys"] = row["call_keys"] + ([s.key] if s.key else [])
            row["prompt_version"] += f";{judge.version}"
            outcome = {True: "equivalent", False: "different", None: "unreadable" if s.ok else "failed"}[verdict]
            judged[f"judge_{outcome}"] += 1
    else:
        for i in to_judge:
            rows[i]["consistency_analysis"] = "matching could not read the answer; the judge is off"

    samples = sum(len(r.samples) for r in results)
    consistent = sum(r["is_consistent"] for r in rows)
    funnel = {
        "questions": questions.num_rows,
        "sent": len(sent),
        "samples": samples,
        "passed_filters": len(rows),
        "matched": len(rows) - len(to_judge),
        **judged,
        "consistent": consistent,
        "forced_close": sum(r["forced_close"] for r in rows),
    }
    if len(rows) > consistent:
        rejects["inconsistent"] += len(rows) - consistent
    return StageResult(
        pa.Table.from_pylist(rows, schema=FOUR_PHASE_ARROW),
        funnel,
        rejects,
        Counter("consistent" if r["is_consistent"] else "inconsistent" for r in rows),
    )
