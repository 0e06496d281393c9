"""The training-data stages' settings: `stages.sft_data`, `stages.dpo_pairs`, `stages.rl_prompts` and
`stages.exports`. The defaults are LPT's (SFT and DPO) and MMFR's (the RL holdout) published values."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from lgt.settings import Strict
from schemas.vocab import DpoRule, FourPhaseSubset, PassRateSubset


class SftDataSettings(Strict):
    """LPT's SFT construction, plus the MMFR traces that passed every filter; RL's held-out questions left out."""

    fraction: float = Field(
        0.10, gt=0, le=1, description="share of O and O->O traces kept, rounded down (LPT: int(n * 0.1))"
    )
    rank_decay: float = Field(
        0.5,
        gt=0,
        le=1,
        description="within a question, weight = rank_decay ** rank, longest first (O and O->O by thought length, "
        "X->O by the thinking added)",
    )
    min_per_question: int = Field(
        1,
        ge=1,
        description="the equal per-question quota (total // questions, for the pool and for X->O) is raised to this "
        "as far as the exact total allows",
    )
    seed: int = 0
    four_phase: FourPhaseSubset = Field(
        FourPhaseSubset.ALL, description="which consistent four-phase traces join, by the small solver's pass rate"
    )


class DpoPairsSettings(Strict):
    rules: list[DpoRule] = Field(
        list(DpoRule),
        min_length=1,
        description="LPT's pair rules, in the order pairs are kept when deduplicating "
        "(the released config trains on X->O only)",
    )


class RlPromptsSettings(Strict):
    """GRPO/RLVR prompts: a uniform holdout of the questions (as MMFR's RL slice), kept out of SFT and DPO."""

    subset: PassRateSubset = Field(PassRateSubset.ALL, description="held-out questions kept, by pass rate")
    rl_holdout: int | float = Field(
        0.02,
        description="questions held out for RL, never in sft_data or dpo_pairs: a fraction in (0, 1) of each "
        "shard's questions, rounded down, or a whole count per shard (0: none, and no RL prompts). MMFR holds out "
        "a uniform 40K of 1.8M, about 2 %; a shard under 50 questions holds out none at 2 %, so the demo recipe "
        "sets a count",
    )
    seed: int = Field(0, description="with the question ids, decides which questions are held out")

    @field_validator("rl_holdout", mode="before")
    @classmethod
    def _holdout(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"expected a fraction in (0, 1) or a whole count of questions, got {v!r}")
        if isinstance(v, int) and v < 0:
            raise ValueError(f"a count of held-out questions cannot be negative, got {v}")
        if isinstance(v, float) and not 0 < v < 1:
            raise ValueError(
                f"a fraction must lie strictly between 0 and 1, got {v} (for a count, write a whole number)"
            )
        return v


class ExportsSettings(Strict):
    name: str | None = Field(
        None, description="dataset name in the card and LLaMA-Factory entries; empty: the recipe's name"
    )
    trl_images: bool = Field(
        True,
        description="TRL/LLaMA-Factory files carry the image; false: its text stand-in "
        "(for text-only models, as the CPU demo's traces were made)",
    )
