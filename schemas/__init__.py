"""One pandera model and one Arrow schema per artifact. Imports nothing of ours."""

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

# asset key -> the Arrow schema its parquet files are written with
ARROW_SCHEMAS = {
    "images": IMAGES_ARROW,
    "images_quarantine": QUARANTINE_ARROW,
    "questions_grounded": QUESTION_ITEMS_ARROW,
    "questions_composed": QUESTION_ITEMS_ARROW,
    "questions": QUESTIONS_ARROW,
    "simple_cots": SIMPLE_COTS_ARROW,
    "long_cots": LONG_COTS_ARROW,
    "four_phase": FOUR_PHASE_ARROW,
    "difficulty": DIFFICULTY_ARROW,
    "sft_data": SFT_ARROW,
    "dpo_pairs": DPO_ARROW,
    "rl_prompts": RL_ARROW,
}

__all__ = [
    "ARROW_SCHEMAS",
    "IMAGES_ARROW",
    "QUARANTINE_ARROW",
    "QUESTIONS_ARROW",
    "QUESTION_ITEMS_ARROW",
    "DifficultySchema",
    "DpoSchema",
    "FourPhaseSchema",
    "ImagesQuarantineSchema",
    "ImagesSchema",
    "LongCotsSchema",
    "QuestionItemsSchema",
    "QuestionsSchema",
    "RlSchema",
    "SftSchema",
    "SimpleCotsSchema",
]
