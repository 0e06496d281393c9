"""The trace stages' settings: LPT's simple and long CoTs (`stages.simple_cots`, `stages.long_cots`) and MMFR's
four-phase traces and pass rates (`stages.four_phase`, `stages.difficulty`).

The defaults are the papers' published values; the sampling fields' descriptions cite them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from lgt.engines.settings import Sampling
from lgt.roles import RoleName
from lgt.settings import Strict
from lgt.traces.parse import LEAK_EXEMPT, LEAK_PHRASES, LEAK_WORDS


class SimpleCotsSettings(Strict):
    """LPT stage B: the VLM answers each question n times, its reply prefilled with <think>."""

    role: RoleName = "vlm"
    sampling: Sampling = Field(
        Sampling(n=4, temperature=0.7, top_p=0.8, repetition_penalty=1.05, max_new_tokens=1024),
        description="LPT: n 10 in the released code (default 4 for CPU), T 0.7, top-p 0.8, rep. penalty 1.05, "
        "1024 tokens",
    )
    share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of a shard's questions sent to the model, kept by a hash of the question id "
        "(lgt.ids.in_share); empty: all",
    )
    preview: int = Field(4, ge=0, le=32)
    keep_forced: bool = Field(
        True, description="keep samples whose thinking budget ran out (sampling.thinking); false: drop them, counted"
    )


class LongCotsSettings(Strict):
    """LPT stage C: the reasoner continues each simple CoT from a cue word, reading the caption, not the image."""

    role: RoleName = "reasoner"
    sampling: Sampling = Field(
        Sampling(n=3, temperature=0.7, top_p=0.8, top_k=50, repetition_penalty=1.05, max_new_tokens=256),
        description="LPT: n 3-5, T 0.7, top-p 0.8, top-k 50, rep. penalty 1.05, about 256 new tokens",
    )
    cues: list[str] = Field(["Wait,", "Hmm,", "Alternatively,"], min_length=1)
    reasoner_reads: Literal["caption", "caption+objects"] = Field(
        "caption",
        description="what stands in for the image: the dense caption alone (LPT), or with the object list (ids, "
        "attributes, normalised boxes)",
    )
    banned_words: list[str] = Field(
        LEAK_WORDS,
        description="banned at decode time where the backend can, and filtered after: case-insensitive, from a "
        "word's start ('mention' catches 'mentioning')",
    )
    leak_phrases: list[str] = Field(LEAK_PHRASES, description="filtered after decoding, as banned_words")
    leak_exempt: list[str] = Field(
        LEAK_EXEMPT, description="words starting with one of these are no leak ('textur': texture, textured)"
    )
    share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of a shard's simple CoTs expanded, kept by a hash of the CoT id "
        "(lgt.ids.in_share); empty: all",
    )
    keep_forced: bool = Field(
        True, description="keep samples whose thinking budget ran out (sampling.thinking); false: drop them, counted"
    )
    seed: int = 0
    preview: int = Field(4, ge=0, le=32)


class FourPhaseSettings(Strict):
    """MMFR distillation: extract, set up, execute, validate; then the quality filters and the answer check."""

    enabled: bool = True
    role: RoleName = "vlm"
    sampling: Sampling = Field(
        Sampling(n=1, temperature=1.0, top_p=0.95, max_new_tokens=16384),
        description="MMFR teacher: T 1.0, top-p 0.95, up to 16K tokens",
    )
    min_words: int = Field(100, ge=0, description="shorter traces are dropped")
    ngram: int = Field(50, ge=1, description="the repetition filter's n-gram length, in words")
    max_ngram_repeats: int = Field(3, ge=2, description="a trace in which any n-gram occurs this often is dropped")
    judge: bool = Field(True, description="the verifier role judges answers that matching cannot decide")
    keep_forced: bool = Field(
        True, description="keep samples whose thinking budget ran out (sampling.thinking); false: drop them, counted"
    )
    share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of a shard's questions sent to the teacher, kept by a hash of the question id "
        "(lgt.ids.in_share); empty: all",
    )
    preview: int = Field(2, ge=0, le=32)


class DifficultySettings(Strict):
    """MMFR difficulty: the small solver answers each question k = sampling.n times; pass rate = correct / k."""

    role: RoleName = "small_solver"
    sampling: Sampling = Field(
        Sampling(n=4, temperature=0.7, top_p=0.8, max_new_tokens=1024),
        description="n is k, the attempts per question (MMFR: 4)",
    )
    share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of a shard's questions the solver attempts, kept by a hash of the question id "
        "(lgt.ids.in_share); empty: all",
    )
    histogram_bins: int = Field(0, ge=0, description="0: one bin per possible pass rate (k + 1 bins)")
    blind: bool = Field(
        True,
        description="also one greedy attempt per question from the text alone (no image, no stand-in): the bias "
        "audit's model baseline, a question a blind model gets right teaches guessing",
    )
