"""One pandera model and one Arrow schema per artifact. Imports nothing of ours."""

from schemas.images import IMAGES_ARROW, QUARANTINE_ARROW, ImagesQuarantineSchema, ImagesSchema
from schemas.questions import QUESTION_ITEMS_ARROW, QUESTIONS_ARROW, QuestionItemsSchema, QuestionsSchema

# asset key -> the Arrow schema its parquet files are written with
ARROW_SCHEMAS = {
    "images": IMAGES_ARROW,
    "images_quarantine": QUARANTINE_ARROW,
    "questions_grounded": QUESTION_ITEMS_ARROW,
    "questions_composed": QUESTION_ITEMS_ARROW,
    "questions": QUESTIONS_ARROW,
}

__all__ = [
    "ARROW_SCHEMAS",
    "IMAGES_ARROW",
    "QUARANTINE_ARROW",
    "QUESTION_ITEMS_ARROW",
    "QUESTIONS_ARROW",
    "ImagesSchema",
    "ImagesQuarantineSchema",
    "QuestionItemsSchema",
    "QuestionsSchema",
]
