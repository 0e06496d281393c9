"""One pandera model and one Arrow schema per artifact. Imports nothing of ours."""

from schemas.images import IMAGES_ARROW, QUARANTINE_ARROW, ImagesQuarantineSchema, ImagesSchema

# asset key -> the Arrow schema its parquet files are written with
ARROW_SCHEMAS = {"images": IMAGES_ARROW, "images_quarantine": QUARANTINE_ARROW}

__all__ = ["ARROW_SCHEMAS", "IMAGES_ARROW", "QUARANTINE_ARROW", "ImagesSchema", "ImagesQuarantineSchema"]
