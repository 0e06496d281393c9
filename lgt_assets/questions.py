"""The question stages (logic: lgt/questions/): stage 1, stage 2, and the questions ready to send."""

from __future__ import annotations

from typing import Any

import dagster as dg

from lgt.preview import questions_markdown
from lgt.questions.audit import audit, audit_table
from lgt.questions.composed import build_questions_composed
from lgt.questions.format import SYSTEM_PROMPT, USER_PROMPT, build_questions
from lgt.questions.grounded import WRITER_PROMPT, build_questions_grounded
from lgt.questions.rewrite import REWRITE_PROMPT
from lgt.questions.verify import SOLVE_PROMPT
from lgt.results import StageResult
from lgt_assets.factory import Metadata, Stage, StageRun, group_of
from schemas import QUESTION_ITEMS, QUESTIONS

GROUP = group_of(__name__)


def _spread(rows: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """Up to n rows, one family after another, so the preview shows every kind."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["family"], []).append(r)
    out: list[dict] = []
    while len(out) < n and any(by.values()):
        for fam in sorted(by):
            if by[fam] and len(out) < n:
                out.append(by[fam].pop(0))
    return out


def question_metadata(result: StageResult, run: StageRun) -> Metadata:
    """Questions per second and a preview spread over the families, with each question's image."""
    by_image = {r["image_id"]: r for r in run.inputs["images"].to_pylist()}
    rows = _spread(result.table.to_pylist(), run.settings.preview_questions)
    audits = audit(result.table.to_pylist())
    return {
        "questions_per_second": round(result.table.num_rows / max(result.seconds, 1e-9), 1),
        "preview": dg.MetadataValue.md(questions_markdown(rows, by_image)),
        # can the gold be guessed without the image? per family, the best blind baseline (see lgt/questions/audit)
        "bias_audit": dg.MetadataValue.md(audit_table(audits)),
        "blind_baseline_max": max((a.best[1] for a in audits), default=0.0),
    }


def _grounded_calls(s: Any) -> tuple[list[str], list[str]]:
    """Stage 1's roles and prompts: the LLM writer's and the rewrite's, each checked by the verifier."""
    roles, prompts = [], []
    if s.llm.enabled:
        roles, prompts = [s.llm.role, "verifier"], [WRITER_PROMPT, SOLVE_PROMPT]
    if s.rewrite.enabled:
        roles, prompts = roles + [s.rewrite.role, "verifier"], prompts + [REWRITE_PROMPT, SOLVE_PROMPT]
    return list(dict.fromkeys(roles)), list(dict.fromkeys(prompts))


ENTRIES = (
    Stage(
        "questions_grounded",
        GROUP,
        ins=["images"],
        artifact=QUESTION_ITEMS,
        build=lambda r: build_questions_grounded(
            r.inputs["images"],
            r.settings,
            r.recipe.models,
            r.source,
            r.engine_for,
            r.recipe.source(r.source).exhaustive,
        ),
        description="Stage 1: grounded object-centric MCQs from the object metadata (templates) and an LLM.",
        check="pandera QuestionItemsSchema: four distinct options, ids unique",
        roles=lambda recipe, s: _grounded_calls(s)[0],
        prompts=lambda recipe, s: _grounded_calls(s)[1],
        metadata=question_metadata,
    ),
    Stage(
        "questions_composed",
        GROUP,
        ins=["images", "questions_grounded"],
        artifact=QUESTION_ITEMS,
        build=lambda r: build_questions_composed(
            r.inputs["images"],
            r.inputs["questions_grounded"],
            r.settings,
            r.recipe.stages.questions_grounded,
            r.recipe.models,
            r.source,
            r.engine_for,
            r.recipe.source(r.source).exhaustive,
        ),
        description="Stage 2: chain, combine and conditional questions composed from stage-1 items; "
        "gold from metadata.",
        check="pandera QuestionItemsSchema: four distinct options, parents = hops",
        roles=lambda recipe, s: [s.rewrite.role, "verifier"] if s.rewrite.enabled else [],
        prompts=lambda recipe, s: [REWRITE_PROMPT, SOLVE_PROMPT] if s.rewrite.enabled else [],
        version_extra=lambda recipe: [recipe.stages.questions_grounded.model_dump(mode="json")],
        metadata=question_metadata,
    ),
    Stage(
        "questions",
        GROUP,
        ins=["images", "questions_grounded", "questions_composed"],
        artifact=QUESTIONS,
        build=lambda r: build_questions(r.inputs["questions_grounded"], r.inputs["questions_composed"], r.settings),
        description="Stage 1 and 2 questions, deduplicated, options shuffled and lettered, prompts rendered.",
        check="pandera QuestionsSchema: four distinct options, gold among them, ids unique",
        label="by_stage_and_family",
        prompts=lambda recipe, s: [SYSTEM_PROMPT, USER_PROMPT],
        metadata=question_metadata,
    ),
)
