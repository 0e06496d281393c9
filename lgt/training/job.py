"""A training job as a JSON file: what the Dagster asset hands the runner (`python -m lgt.training.train job.json`).

The runner is a subprocess (or `accelerate launch` of one process per GPU), so everything it needs travels in the
file: the base checkpoint, the output folder, the parquet files in training order, the stage settings, and the data
version. The file's canonical JSON also names the trained checkpoint's revision, so the engine's call cache keys
replies of two differently trained checkpoints apart even when they are written to the same folder.

This module is light (no torch): the asset imports it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from schemas.vocab import SPLITS

KINDS = ("sft", "dpo")
SCHEDULES = ("mixed", "staged")
METRICS_FILE = "training.json"
_FIELDS = ("kind", "model", "output_dir", "phases", "settings", "data_version")


def _plain_settings(settings: Any) -> dict[str, Any]:
    """A stage's settings as JSON values: a pydantic model is dumped in JSON mode, a dict's Paths become strings."""
    if hasattr(settings, "model_dump"):
        return settings.model_dump(mode="json")
    if not isinstance(settings, dict):
        raise TypeError(f"settings: expected a dict or a TrainingSettings, got {type(settings).__name__}")
    return json.loads(json.dumps(settings, default=str))


@dataclass(frozen=True)
class TrainJob:
    """One training run: `phases` are lists of parquet files, trained one after the other on the same model."""

    kind: str
    model: str
    output_dir: str
    phases: list[list[str]]
    settings: dict[str, Any] = field(default_factory=dict)
    data_version: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: {self.kind!r} is not one of {list(KINDS)}")
        if not isinstance(self.phases, list | tuple) or not all(isinstance(p, list | tuple) for p in self.phases):
            raise ValueError("phases: expected a list of lists of parquet files")
        # frozen: normalise through object.__setattr__ so a job built from Paths serialises like one read back
        object.__setattr__(self, "model", str(self.model))
        object.__setattr__(self, "output_dir", str(self.output_dir))
        object.__setattr__(self, "phases", [[str(f) for f in phase] for phase in self.phases])
        object.__setattr__(self, "settings", _plain_settings(self.settings))
        object.__setattr__(self, "data_version", str(self.data_version))

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): the same job always gives the same text, hence the same revision."""
        return json.dumps(asdict(self), sort_keys=True, indent=2) + "\n"

    def revision(self) -> str:
        """What the trained checkpoint's REVISION_FILE holds: a hash of this job."""
        return "trained:" + hashlib.sha256(self.to_json().encode()).hexdigest()[:16]


def write_job(job: TrainJob, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(job.to_json(), encoding="utf-8")
    return path


def read_job(path: Path | str) -> TrainJob:
    """The job in `path`; a missing or malformed field is named with the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    missing = [k for k in _FIELDS if k not in data]
    if missing:
        raise ValueError(f"{path}: missing field(s) {missing}")
    unknown = sorted(set(data) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {unknown}")
    if not isinstance(data["settings"], dict):
        raise ValueError(f"{path}: field 'settings': expected an object, got {type(data['settings']).__name__}")
    try:
        return TrainJob(**data)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: field {e}") from e


def _trl_file(export_dir: Path | str, split: str) -> str:
    f = Path(export_dir) / "trl" / f"{split}.parquet"
    if not f.is_file():
        raise FileNotFoundError(f"{f}: no TRL export for split {split!r}")
    return str(f)


def sft_phases(export_dir: Path | str, schedule: str) -> list[list[str]]:
    """mixed: one phase holding every stage's SFT file (rows shuffled together); staged: one phase per stage."""
    files = [_trl_file(export_dir, f"sft_{stage}") for stage in SPLITS]
    if schedule == "mixed":
        return [files]
    if schedule == "staged":
        return [[f] for f in files]
    raise ValueError(f"schedule: {schedule!r} is not one of {list(SCHEDULES)}")


def dpo_phases(export_dir: Path | str) -> list[list[str]]:
    """DPO trains on both stages' pairs at once: one phase."""
    return [[_trl_file(export_dir, f"dpo_{stage}") for stage in SPLITS]]


def read_metrics(output_dir: Path | str) -> dict[str, Any]:
    """The runner's `training.json` in a trained checkpoint folder."""
    f = Path(output_dir) / METRICS_FILE
    if not f.is_file():
        raise FileNotFoundError(f"{f}: no training metrics (did the training run finish?)")
    return json.loads(f.read_text(encoding="utf-8"))
