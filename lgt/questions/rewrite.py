"""LLM rewrites of templated questions, for fluency and variety; a rewrite is kept only if the verifier agrees.

LGT's questions are written by an LLM; ours come from templates, which are verified by construction but have
few phrasings. A rewrite is kept only if it parses, does not contain the answer, and the verifier role, reading
the rewritten question (options shuffled, `verify.verifier_view`), picks the gold option. Otherwise the templated
form stays and the row records why (`rewrite`). Stage 1 and stage 2 both use it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from lgt.answers import read_choice
from lgt.engines import EngineFor, Request
from lgt.ids import content_id, in_share
from lgt.language import normalize
from lgt.prompts import load_prompt
from lgt.questions.families import Draft
from lgt.questions.settings import LLMRewrite
from lgt.questions.verify import solve_request, verifier_view
from lgt.roles import Models

REWRITE_PROMPT = "question_rewrite.j2"
_QUESTION = re.compile(r"<question>\s*(.*?)\s*</question>", re.IGNORECASE | re.DOTALL)


def parse_rewrite(text: str, finished: bool = False) -> str | None:
    """The last <question>…</question> of a rewrite, whitespace collapsed.

    `finished`: the model ended its reply itself, so an unclosed final
    <question> runs to the end of the text (it stopped after the question).
    """
    found = _QUESTION.findall(text)
    if not found and finished:
        found = re.findall(r"<question>\s*(.*)$", text, re.IGNORECASE | re.DOTALL)
    q = " ".join(found[-1].split()) if found else ""
    return q or None


def leaks_answer(question: str, answer: str) -> bool:
    a = normalize(answer)
    return bool(a) and re.search(rf"(?<!\w){re.escape(a)}(?!\w)", normalize(question)) is not None


def rewrite_questions(
    drafts: Sequence[tuple[dict, Draft]],
    call: LLMRewrite,
    models: Models,
    engine_for: EngineFor,
    keys: list[str] | None,
    outcome: Counter,
) -> list[tuple[str, str, list[str]]]:
    """(question, rewrite status, call keys) per (image row, draft): the rewrite where it was kept, else the
    templated question and why not ("" for a draft outside `call.share`, not sent). `keys`: the
    attributes the verifier's stand-in lists."""
    chosen = [i for i, (row, d) in enumerate(drafts) if in_share(call.share, content_id(row["image_id"], d.question))]
    decided = [(d.question, "", []) for _, d in drafts]
    sent = _rewrite_all([drafts[i] for i in chosen], call, models, engine_for, keys, outcome)
    for i, out in zip(chosen, sent):
        decided[i] = out
    return decided


def _rewrite_all(
    drafts: Sequence[tuple[dict, Draft]],
    call: LLMRewrite,
    models: Models,
    engine_for: EngineFor,
    keys: list[str] | None,
    outcome: Counter,
) -> list[tuple[str, str, list[str]]]:
    """The rewrite and its verification for every draft given."""
    prompt = load_prompt(REWRITE_PROMPT)
    sampling = call.sampling_for(models).model_copy(update={"n": 1})  # one rewrite per question is read
    reqs = [
        Request(
            messages=[{"role": "user", "content": prompt.render(question=d.question)}],
            prefill="<question>",
            sampling=sampling,
        )
        for _, d in drafts
    ]
    results = engine_for(call.role).generate(reqs)
    decided: list[tuple[str, str, list[str]]] = []
    pending: list[tuple[int, str, list[str], list[str], int]] = []  # (draft, rewrite, call keys, options, gold)
    for i, ((_, d), res) in enumerate(zip(drafts, results)):
        s = res.samples[0]
        q = parse_rewrite("<question>" + s.text, finished=s.finish_reason == "stop") if s.ok else None
        status = (
            "rewrite_failed"
            if not s.ok
            else "rewrite_unparseable"
            if q is None
            else "rewrite_unchanged"
            if normalize(q) == normalize(d.question)
            else "rewrite_leaks_answer"
            if leaks_answer(q, d.answer)
            else "verifying"
        )
        decided.append((d.question, status, [s.key] if s.key else []))
        if status == "verifying":
            pending.append((i, q, [s.key], *verifier_view(d.question, [d.answer, *d.distractors], 0)))
    verdicts = (
        engine_for("verifier").generate(
            [solve_request(drafts[i][0], q, options, models.verifier.sampling, keys) for i, q, _, options, _ in pending]
        )
        if pending
        else []
    )
    for (i, q, call_keys, options, gold), res in zip(pending, verdicts):
        s, d = res.samples[0], drafts[i][1]
        if not s.ok:
            decided[i] = (d.question, "verifier_failed", call_keys)
        elif read_choice(s.text, options) != gold:
            decided[i] = (d.question, "verifier_disagrees", call_keys + [s.key])
        else:
            decided[i] = (q, "kept", call_keys + [s.key])
    outcome.update(status for _, status, _ in decided)
    return decided
