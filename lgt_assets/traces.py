"""The trace stages (logic: lgt/traces/): simple CoTs, long CoTs, four-phase traces and pass rates."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from lgt.preview import traces_markdown
from lgt.results import StageResult
from lgt.traces.difficulty import build_difficulty, pass_rate_histogram
from lgt.traces.four_phase import JUDGE_PROMPT, build_four_phase
from lgt.traces.four_phase import PROMPT as FOUR_PHASE_PROMPT
from lgt.traces.long_cots import OPENING, build_long_cots
from lgt.traces.long_cots import PROMPT as LONG_PROMPT
from lgt.traces.simple_cots import build_simple_cots
from lgt_assets.factory import Metadata, Stage, StageRun, group_of, stand_in_keys
from schemas import DIFFICULTY, FOUR_PHASE, LONG_COTS, SIMPLE_COTS

GROUP = group_of(__name__)


def _preview(text: str, label: str) -> Callable[[StageResult, StageRun], Metadata]:
    """The first rows' text and label; how many is the stage's `preview` setting."""
    return lambda result, run: {
        "preview": dg.MetadataValue.md(
            traces_markdown(result.table.slice(0, run.settings.preview).to_pylist(), text, label)
        )
    }


def _histogram(result: StageResult, run: StageRun) -> Metadata:
    hist = pass_rate_histogram(result.table.column("pass_rate").to_pylist(), run.settings.sampling.n)
    lines = ["| pass rate | questions |", "|---|---:|", *(f"| {b} | {n} |" for b, n in hist.items())]
    return {"pass_rate_histogram_md": dg.MetadataValue.md("\n".join(lines))}


def _role(recipe, settings) -> list[str]:
    return [settings.role]


ENTRIES = (
    Stage(
        "simple_cots",
        GROUP,
        ins=["images", "questions"],
        artifact=SIMPLE_COTS,
        build=lambda r: build_simple_cots(
            r.inputs["questions"], r.inputs["images"], r.settings, r.engine_for, r.stand_in_keys
        ),
        description="LPT stage B: the VLM's simple CoTs (n per question, prefilled <think>), marked O/X against "
        "the gold.",
        check="pandera SimpleCotsSchema: correct iff the gold letter, no duplicate replies",
        label="by_category",
        roles=_role,
        version_extra=stand_in_keys,
        metadata=_preview("response", "category"),
    ),
    Stage(
        "long_cots",
        GROUP,
        ins=["images", "questions", "simple_cots"],
        artifact=LONG_COTS,
        build=lambda r: build_long_cots(
            r.inputs["simple_cots"],
            r.inputs["questions"],
            r.inputs["images"],
            r.settings,
            r.engine_for,
            r.stand_in_keys,
        ),
        description="LPT stage C: the reasoner's expansions from a cue word, caption instead of image, "
        "leak-filtered; O->O … X->X.",
        check="pandera LongCotsSchema: the category follows both marks, the cue is in the thought",
        label="by_category",
        roles=_role,
        prompts=lambda recipe, s: [LONG_PROMPT, OPENING],
        version_extra=stand_in_keys,
        metadata=_preview("thought", "category"),
    ),
    Stage(
        "four_phase",
        GROUP,
        ins=["images", "questions"],
        artifact=FOUR_PHASE,
        build=lambda r: build_four_phase(
            r.inputs["questions"],
            r.inputs["images"],
            r.settings,
            r.recipe.models.verifier.sampling,
            r.engine_for,
            r.stand_in_keys,
        ),
        description="MMFR four-phase distillation: structure and 50-gram repetition filters, answer matched or judged.",
        check="pandera FourPhaseSchema: one think block, balanced answer tags",
        label="by_consistency",
        roles=lambda recipe, s: [s.role, "verifier"],
        prompts=lambda recipe, s: [FOUR_PHASE_PROMPT, JUDGE_PROMPT],
        version_extra=stand_in_keys,
        metadata=_preview("response", "is_consistent"),
        enabled=lambda recipe: recipe.stages.four_phase.enabled,
    ),
    Stage(
        "difficulty",
        GROUP,
        ins=["images", "questions"],
        artifact=DIFFICULTY,
        build=lambda r: build_difficulty(
            r.inputs["questions"], r.inputs["images"], r.settings, r.engine_for, r.stand_in_keys
        ),
        description="MMFR: the small solver's pass rate over k attempts per question; the zero and below-1 subsets.",
        check="pandera DifficultySchema: pass rate = correct / k, subset flags agree",
        label="pass_rate_histogram",
        roles=_role,
        version_extra=stand_in_keys,
        metadata=_histogram,
    ),
)
