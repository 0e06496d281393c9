"""The question stages' settings: `stages.questions_grounded` (stage 1), `stages.questions_composed` (stage 2) and
`stages.questions` (ready to send)."""

from __future__ import annotations

from pydantic import Field, field_validator

from lgt.engines.settings import Sampling
from lgt.questions.compose import COMPOSITIONS
from lgt.questions.families import FAMILIES, GROUP_BOXED_LABELS, phrasing_slots
from lgt.roles import Models, RoleName
from lgt.settings import Strict
from schemas.vocab import AnswerFormat, OptionStyle


class AttributeSettings(Strict):
    noun: str = Field(min_length=1, description="how a question names the attribute, e.g. 'colour'")
    values: list[str] = Field(
        min_length=1, description="its vocabulary: values absent from a scene serve as distractors"
    )


class FamilySettings(Strict):
    max_per_image: int = Field(2, ge=0, description="questions of this family kept per image")
    phrasings: list[str] = Field([], description="str.format templates; empty: the built-in phrasings")


class Margins(Strict):
    """Near-ties are skipped, so every gold answer is clear by at least these margins."""

    position_gap: float = Field(
        0.02, ge=0, le=0.5, description="left/right/above/below: boxes apart by this fraction of the side"
    )
    area_ratio: float = Field(0.10, ge=0, description="relative size: areas differ by at least this fraction")
    distance_ratio: float = Field(
        0.10, ge=0, description="closest/farthest: the runner-up is this fraction further (nearer)"
    )
    extreme_gap: float = Field(
        0.02, ge=0, le=0.5, description="left-most etc.: centres apart by this fraction of the side"
    )


class LLMCall(Strict):
    """An LLM step inside a stage: which recipe role it calls and, optionally, its own sampling."""

    enabled: bool = Field(False, description="LLM steps are opt-in: they cost model calls")
    role: RoleName = "reasoner"
    sampling: Sampling | None = Field(None, description="replaces the role's sampling for this step")

    def sampling_for(self, models: Models) -> Sampling:
        return self.sampling or getattr(models, self.role).sampling


class LLMRewrite(LLMCall):
    """The verified rewrite of templated questions (stage 1 and stage 2)."""

    share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of a shard's questions sent to the rewrite, kept by a hash of the image id and question "
        "(lgt.ids.in_share); empty: all",
    )


class LLMQuestions(LLMCall):
    questions_per_image: int = Field(5, ge=1, le=20, description="how many MCQs the prompt asks for")
    share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of a shard's images sent to the LLM, kept by a hash of the image id "
        "(lgt.ids.in_share); empty: all",
    )
    verify: bool = Field(True, description="re-solve each kept item with the verifier role and drop disagreements")


class QuestionsGroundedSettings(Strict):
    seed: int = 0
    attributes: dict[str, AttributeSettings] = Field(
        {},
        description="object attributes questions may use, most distinctive first "
        "(referring expressions try them in this order)",
    )
    labels: list[str] = Field([], description="extra labels for existence distractors (besides those in the shard)")
    margins: Margins = Margins()
    min_object_area: float = Field(
        0.001,
        ge=0,
        lt=1,
        description="objects covering less than this fraction of the image are never named, and block counting "
        "their label (a 10-pixel figure is found only by elimination, and its count cannot be checked)",
    )
    uncountable_labels: list[str] = Field(
        list(GROUP_BOXED_LABELS),
        description="labels that real annotations box in groups (two boxes for sixty bananas): never counted",
    )
    families: dict[str, FamilySettings] = Field(
        default_factory=lambda: {f: FamilySettings() for f in FAMILIES}, description="the programmatic families to run"
    )
    compose_support: bool = Field(True, description="also keep the items stage-2 chains need as parents")
    llm: LLMQuestions = LLMQuestions()
    rewrite: LLMRewrite = Field(
        LLMRewrite(),
        description="LLM rewrite of the template questions, for variety beyond their phrasings (as stage 2's); "
        "kept only where the verifier, reading it, still picks the gold",
    )
    preview_questions: int = Field(6, ge=0, le=32)

    @field_validator("families")
    @classmethod
    def _families(cls, v: dict[str, FamilySettings]) -> dict[str, FamilySettings]:
        for name, spec in v.items():
            if name not in FAMILIES:
                raise ValueError(f"unknown question family {name!r}; known: {', '.join(FAMILIES)}")
            for p in spec.phrasings:
                try:
                    slots = phrasing_slots(p)
                except ValueError as e:
                    raise ValueError(f"{name}: phrasing {p!r} is not a str.format template: {e}") from None
                if slots != FAMILIES[name].slots:
                    want = ", ".join("{" + s + "}" for s in sorted(FAMILIES[name].slots)) or "no placeholders"
                    raise ValueError(f"{name}: phrasing {p!r} must use exactly {want}")
        return v

    def phrasings(self, family: str) -> tuple[str, ...]:
        return tuple(self.families[family].phrasings) or FAMILIES[family].phrasings


class CompositionSettings(Strict):
    max_per_image: int = Field(2, ge=0)


class QuestionsComposedSettings(Strict):
    seed: int = 0
    compositions: dict[str, CompositionSettings] = Field(
        default_factory=lambda: {k: CompositionSettings() for k in COMPOSITIONS},
        description="the compositions to build (lgt.questions.compose.COMPOSITIONS), each with its quota per image",
    )
    rewrite: LLMRewrite = Field(
        LLMRewrite(), description="LLM rewrite for fluency; the verifier must still reach the gold"
    )
    preview_questions: int = Field(6, ge=0, le=32)

    @field_validator("compositions")
    @classmethod
    def _compositions(cls, v: dict[str, CompositionSettings]) -> dict[str, CompositionSettings]:
        for name in v:
            if name not in COMPOSITIONS:
                raise ValueError(f"unknown composition {name!r}; known: {', '.join(COMPOSITIONS)}")
        return v


class QuestionsSettings(Strict):
    seed: int = 0
    option_styles: list[OptionStyle] = Field(list(OptionStyle), min_length=1)
    answer_formats: list[AnswerFormat] = Field(list(AnswerFormat), min_length=1)
    preview_questions: int = Field(6, ge=0, le=32)
