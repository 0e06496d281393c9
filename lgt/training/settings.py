"""Training settings a recipe declares (`stages.sft_checkpoint`, `stages.dpo_checkpoint`).

The defaults are the published ones (LPT: SFT lr 8e-6 for 3 epochs with the vision tower frozen; DPO beta 0.2,
lr 6e-6, plus the SFT loss at weight 1; ZeRO-3 and bf16 on GPUs); the CPU demo recipe overrides them to run a
few real steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from lgt.settings import Strict, resolve_path


class Lora(Strict):
    """Train LoRA adapters through peft instead of every weight; the checkpoint is saved merged."""

    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"


class TrainingSettings(Strict):
    enabled: bool = True
    learning_rate: float = Field(gt=0)
    epochs: float = Field(3.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="stop after this many optimizer steps; empty: epochs")
    batch_size: int = Field(1, ge=1, description="per device")
    gradient_accumulation: int = Field(8, ge=1)
    max_length: int = Field(2048, ge=16, description="tokens per example; longer ones are truncated")
    lr_scheduler: Literal["linear", "cosine", "constant"] = "cosine"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    lora: Lora | None = None
    freeze_vision: bool = Field(True, description="a vision-language model's vision tower is not trained")
    gradient_checkpointing: bool = False
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description="auto: bf16 on a GPU, else the checkpoint's own dtype"
    )
    seed: int = 0
    launcher: Literal["python", "accelerate"] = Field(
        "python", description="python: one process (CPU or one GPU); accelerate: `accelerate launch` (DeepSpeed)"
    )
    accelerate_config: Path | None = Field(
        None, description="accelerate's config file (recipes/accelerate/zero3.yaml: DeepSpeed ZeRO-3)"
    )
    num_processes: int = Field(1, ge=1, description="accelerate: one process per GPU")

    _paths = field_validator("accelerate_config")(resolve_path)

    @model_validator(mode="after")
    def _accelerate_needs_config(self) -> TrainingSettings:
        if self.launcher == "accelerate" and self.accelerate_config is None:
            raise ValueError("launcher 'accelerate' needs accelerate_config (e.g. accelerate/zero3.yaml)")
        return self


class SftCheckpointSettings(TrainingSettings):
    learning_rate: float = Field(8e-6, gt=0)
    schedule: Literal["mixed", "staged"] = Field(
        "mixed", description="mixed: stage-1 and stage-2 rows shuffled together; staged: stage 1, then stage 2"
    )
    packing: bool = Field(False, description="pack several examples into each max_length sequence (text models)")


class DpoCheckpointSettings(TrainingSettings):
    learning_rate: float = Field(6e-6, gt=0)
    epochs: float = Field(1.0, gt=0)
    beta: float = Field(0.2, gt=0, description="LPT's released config: 0.2 (the paper says 1)")
    sft_weight: float = Field(1.0, ge=0, description="weight of the SFT loss on the chosen answer (LPT: 1)")
