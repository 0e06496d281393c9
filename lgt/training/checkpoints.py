"""A checkpoint as a pure function of its inputs: base model, training files and settings -> a folder, trained once.

`$LGT_HOME/checkpoints/<name>/<version>/` holds the safetensors, the tokenizer (or processor), `training.json`
(steps, tokens, losses, wall time, the data version and settings) and the revision file the call cache keys
replies by. The version hashes the base model's revision, the training rows and the settings, so rematerializing
with nothing changed finds the folder and trains nothing, and any change trains into a new folder.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from lgt.engines.checkpoint import checkpoint_revision
from lgt.storage import table_digest
from lgt.training.job import TrainJob, read_metrics, write_job
from lgt.training.launch import command, run


def checkpoints_dir(lgt_home: str) -> Path:
    """Checkpoints live on local disk, as the unpacked base model does: under LGT_HOME, else the user cache."""
    if "://" in lgt_home and not lgt_home.startswith("file://"):
        return Path.home() / ".cache" / "lgt" / "checkpoints"
    return Path(lgt_home.removeprefix("file://")) / "checkpoints"


def data_version(phases: Sequence[Sequence[str | Path]]) -> str:
    """A hash of the training rows, phase by phase (the tables' values, not the files' bytes)."""
    h = hashlib.sha256()
    for phase in phases:
        for f in phase:
            h.update(table_digest(pq.read_table(f)).encode())
        h.update(b"|")
    return h.hexdigest()[:16]


def checkpoint_version(base: Path, data: str, settings: Any) -> str:
    parts = [checkpoint_revision(base), data, settings.model_dump(mode="json")]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_checkpoint(
    kind: str,
    name: str,
    base: Path,
    phases: list[list[str]],
    settings: Any,
    lgt_home: str,
    log: Callable[[str], None],
) -> tuple[Path, dict[str, Any], bool]:
    """(checkpoint folder, training.json, whether it was trained now) for `kind` ("sft" or "dpo") from `base`.

    Training runs in a subprocess (`python -m lgt.training.train`, or `accelerate launch` for DeepSpeed), so a
    GPU job gets a clean process and the caller's memory is not held by the trainer.
    """
    rows = sum(pq.read_metadata(f).num_rows for phase in phases for f in phase)
    if rows == 0:
        files = ", ".join(str(f) for phase in phases for f in phase)
        raise ValueError(f"{name}: no training rows in {files}; the upstream sets are empty")
    data = data_version(phases)
    out = checkpoints_dir(lgt_home) / name / checkpoint_version(base, data, settings)
    if (out / "training.json").is_file():
        log(f"{name}: {out} already holds this model (same base, data {data} and settings): not retrained")
        return out, read_metrics(out), False
    job = TrainJob(
        kind=kind,
        model=str(base),
        output_dir=str(out),
        phases=[[str(f) for f in phase] for phase in phases],
        settings=settings.model_dump(mode="json"),
        data_version=data,
    )
    with tempfile.TemporaryDirectory(prefix="lgt-job-") as tmp:
        job_path = Path(tmp) / "job.json"
        write_job(job, job_path)
        cmd = command(job_path, settings, python=sys.executable)
        log(f"{name}: training on {rows} rows: {' '.join(map(str, cmd))}")
        run(cmd, log)
    return out, read_metrics(out), True
