"""One Arrow schema and one pandera model per artifact, paired as an `Artifact`. Imports nothing of ours."""

from schemas.artifact import Artifact
from schemas.evaluation import BENCHMARK_ARROW, EVAL_LETTERS, SCORES_ARROW, BenchmarkSchema, ScoresSchema
from schemas.images import IMAGES_ARROW, QUARANTINE_ARROW, ImagesQuarantineSchema, ImagesSchema
from schemas.questions import QUESTION_ITEMS_ARROW, QUESTIONS_ARROW, QuestionItemsSchema, QuestionsSchema
from schemas.traces import (
    DIFFICULTY_ARROW,
    DPO_ARROW,
    FOUR_PHASE_ARROW,
    LONG_COTS_ARROW,
    RL_ARROW,
    SFT_ARROW,
    SIMPLE_COTS_ARROW,
    DifficultySchema,
    DpoSchema,
    FourPhaseSchema,
    LongCotsSchema,
    RlSchema,
    SftSchema,
    SimpleCotsSchema,
)
from schemas.vocab import SPLITS

IMAGES = Artifact("images", IMAGES_ARROW, ImagesSchema)
QUARANTINE = Artifact("images_quarantine", QUARANTINE_ARROW, ImagesQuarantineSchema)
QUESTION_ITEMS = Artifact("question_items", QUESTION_ITEMS_ARROW, QuestionItemsSchema)  # stage 1 and stage 2
QUESTIONS = Artifact("questions", QUESTIONS_ARROW, QuestionsSchema)
SIMPLE_COTS = Artifact("simple_cots", SIMPLE_COTS_ARROW, SimpleCotsSchema)
LONG_COTS = Artifact("long_cots", LONG_COTS_ARROW, LongCotsSchema)
FOUR_PHASE = Artifact("four_phase", FOUR_PHASE_ARROW, FourPhaseSchema)
DIFFICULTY = Artifact("difficulty", DIFFICULTY_ARROW, DifficultySchema)
SFT = Artifact("sft_data", SFT_ARROW, SftSchema)
DPO = Artifact("dpo_pairs", DPO_ARROW, DpoSchema)
RL = Artifact("rl_prompts", RL_ARROW, RlSchema)
BENCHMARK = Artifact("benchmark_suites", BENCHMARK_ARROW, BenchmarkSchema)
SCORES = Artifact("benchmark_scores", SCORES_ARROW, ScoresSchema)

ARTIFACTS = (
    IMAGES,
    QUARANTINE,
    QUESTION_ITEMS,
    QUESTIONS,
    SIMPLE_COTS,
    LONG_COTS,
    FOUR_PHASE,
    DIFFICULTY,
    SFT,
    DPO,
    RL,
    BENCHMARK,
    SCORES,
)

__all__ = [
    "ARTIFACTS",
    "BENCHMARK",
    "EVAL_LETTERS",
    "SCORES",
    "DIFFICULTY",
    "DPO",
    "FOUR_PHASE",
    "IMAGES",
    "IMAGES_ARROW",
    "LONG_COTS",
    "QUARANTINE",
    "QUARANTINE_ARROW",
    "QUESTIONS",
    "QUESTIONS_ARROW",
    "QUESTION_ITEMS",
    "QUESTION_ITEMS_ARROW",
    "RL",
    "SFT",
    "SIMPLE_COTS",
    "SPLITS",
    "Artifact",
    "BenchmarkSchema",
    "DifficultySchema",
    "DpoSchema",
    "FourPhaseSchema",
    "ImagesQuarantineSchema",
    "ImagesSchema",
    "LongCotsSchema",
    "QuestionItemsSchema",
    "QuestionsSchema",
    "RlSchema",
    "ScoresSchema",
    "SftSchema",
    "SimpleCotsSchema",
]
