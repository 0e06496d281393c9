"""The training runner: `python -m lgt.training.train job.json` (or the same module under `accelerate launch`).

One code path on CPU and GPU, text and vision-language models:

- The model: a config with `vision_config` loads as AutoModelForImageTextToText with its processor (TRL's vision
  collators), else AutoModelForCausalLM with its tokenizer. The vision tower (`visual`, `model.visual`,
  `vision_tower`, `model.vision_tower`, `vision_model`, `model.vision_model`) is frozen when `freeze_vision`.
- The data: each phase's parquet files (the TRL export) are loaded with `datasets`, checked row by row, and trained
  in order on the same model; between phases the model goes through a checkpoint on disk, so ZeRO-3's sharded
  weights are gathered the same way as at the end.
- SFT loss: on the assistant turns where TRL can mark them for the model's chat template (a template with
  `{% generation %}` markers or one TRL knows how to patch), else on the last turn, by splitting each conversation
  into TRL's prompt/completion form. The exported conversations have one assistant turn, so both train the answer.
- DPO: sigmoid loss plus the SFT loss on the chosen answer at `sft_weight`; the reference model is the starting
  model (TRL loads it again; with LoRA it is the model with the adapter disabled).
- LoRA adapters are merged into the saved checkpoint.

The checkpoint, its tokenizer or processor, `training.json` and the revision file are written to a hidden folder
next to `output_dir` and renamed into place, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from lgt.engines.checkpoint import REVISION_FILE
from lgt.storage import replace_dir
from lgt.training.job import METRICS_FILE, TrainJob, read_job
from lgt.training.settings import DpoCheckpointSettings, SftCheckpointSettings, TrainingSettings

VISION_TOWERS = ("visual", "model.visual", "vision_tower", "model.vision_tower", "vision_model", "model.vision_model")
COLUMNS = {"sft": ("messages",), "dpo": ("prompt", "chosen", "rejected")}
ROLES = ("system", "user", "assistant")
_BATCH = 1000  # rows checked per Arrow batch


class NoTrainingRows(ValueError):
    """Every phase of the job is empty."""


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


def log(msg: str) -> None:
    if _rank() == 0:  # one process speaks for all of them
        print(f"[lgt.training] {msg}", flush=True)


# --- settings and files ------------------------------------------------------------------------------------


def stage_settings(job: TrainJob, job_path: Path | str = "job") -> TrainingSettings:
    cls = SftCheckpointSettings if job.kind == "sft" else DpoCheckpointSettings
    try:
        return cls.model_validate(job.settings)
    except ValueError as e:
        raise ValueError(f"{job_path}: field 'settings': {e}") from e


def file_rows(path: str) -> int:
    """Rows in a parquet file, from its footer (datasets refuses to load a file with no rows)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: training file not found")
    return pq.read_metadata(path).num_rows


# --- row checks --------------------------------------------------------------------------------------------


def _parts(content: Any) -> list[dict]:
    return content if isinstance(content, list) else [{"type": "text", "text": content}]


def _turn_problem(turns: Any, roles: tuple[str, ...] | None, last: str | None) -> str | None:
    """What is wrong with a list of chat turns, or None."""
    if not isinstance(turns, list) or not turns:
        return "no turns"
    for j, t in enumerate(turns):
        if not isinstance(t, dict) or t.get("role") not in (roles or ROLES):
            return f"turn {j}: role {t.get('role') if isinstance(t, dict) else t!r} not in {list(roles or ROLES)}"
        if t.get("content") is None:
            return f"turn {j}: no content"
        for k, part in enumerate(_parts(t["content"])):
            if part.get("type") not in ("text", "image"):
                return f"turn {j}: part {k}: type {part.get('type')!r} is not 'text' or 'image'"
            if part.get("type") == "text" and not isinstance(part.get("text"), str):
                return f"turn {j}: part {k}: text part without text"
    if last is not None and turns[-1]["role"] != last:
        return f"last turn is {turns[-1]['role']!r}, expected {last!r}"
    return None


def _image_parts(turns: list[dict]) -> int:
    return sum(1 for t in turns for p in _parts(t["content"]) if p.get("type") == "image")


def check_rows(path: str, table, kind: str, with_images: bool, first_row: int = 0) -> None:
    """Raise ValueError naming the file, the row and the field of the first malformed row in an Arrow table."""
    need = {"sft": {"messages": "assistant"}, "dpo": {"prompt": "user", "chosen": "assistant", "rejected": "assistant"}}
    counts = pc.list_value_length(table.column("images")).to_pylist() if with_images else None
    cols = {c: table.column(c).to_pylist() for c in need[kind]}
    for i in range(table.num_rows):
        row = first_row + i
        for col, last in need[kind].items():
            roles = ("assistant",) if col in ("chosen", "rejected") else None
            problem = _turn_problem(cols[col][i], roles, last)
            if problem:
                raise ValueError(f"{path}: row {row}: field {col!r}: {problem}")
        if with_images:
            col = "messages" if kind == "sft" else "prompt"
            placeholders, images = _image_parts(cols[col][i]), counts[i] or 0
            if placeholders != images:
                raise ValueError(
                    f"{path}: row {row}: field 'images': {images} image(s) for {placeholders} placeholder(s)"
                )


# --- the model ---------------------------------------------------------------------------------------------


def _checkpoint_dtype(config):
    import torch

    for c in (config, config.get_text_config()):
        d = getattr(c, "dtype", None)
        if isinstance(d, str):
            d = getattr(torch, d, None)
        if isinstance(d, torch.dtype):
            return d
    return torch.float32


def pick_dtype(precision: str, config, cuda: bool):
    """The dtype trained in. auto: bf16 on a GPU; float32 on a CPU, even for a bf16 checkpoint (without fp32 master
    weights, updates at small learning rates round away in bf16). `save_trained` writes the checkpoint's own dtype."""
    import torch

    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp32":
        return torch.float32
    return torch.bfloat16 if cuda else torch.float32


def is_vision_config(config) -> bool:
    return getattr(config, "vision_config", None) is not None


def find_vision_tower(model) -> tuple[str, Any] | None:
    """(name, module) of the vision encoder under the names VISION_TOWERS lists, or None."""
    for name in VISION_TOWERS:
        try:
            return name, model.get_submodule(name)
        except AttributeError:
            continue
    return None


def _skip_absent(self, argument_name, argument):
    return (
        None if argument is None else super(type(self), self).check_argument_for_proper_class(argument_name, argument)
    )


def load_processor(path: str, config):
    """The model's processor; without torchvision (no CPU build here) its video half cannot be built, so the same
    processor class is made with `video_processor=None` and the PIL image processor."""
    from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING

    try:
        return AutoProcessor.from_pretrained(path)
    except (ImportError, AttributeError) as e:
        try:
            cls = PROCESSOR_MAPPING[type(config)]
        except KeyError:
            raise RuntimeError(f"{path}: cannot build its processor ({e})") from e
        if "video_processor" not in cls.get_attributes():
            raise RuntimeError(f"{path}: cannot build its processor ({e})") from e
        log(f"processor without its video half ({type(e).__name__}: torchvision missing?); images use the PIL backend")
        # the class check looks the video processor's base class up, which is a dummy without torchvision
        sub = type(cls.__name__, (cls,), {"check_argument_for_proper_class": _skip_absent, "lgt_without_video": True})
        tok = AutoTokenizer.from_pretrained(path)
        images = AutoImageProcessor.from_pretrained(path, backend="pil")
        return sub(image_processor=images, tokenizer=tok, video_processor=None, chat_template=tok.chat_template)


def save_processing_class(processing_class, src: str, dst: Path) -> None:
    if not getattr(processing_class, "lgt_without_video", False):
        processing_class.save_pretrained(dst)
        return
    # the processor built without its video half cannot save itself: save its parts, copy the rest from the base
    processing_class.tokenizer.save_pretrained(dst)
    processing_class.image_processor.save_pretrained(dst)
    for name in ("processor_config.json", "video_preprocessor_config.json", "chat_template.json"):
        if (Path(src) / name).is_file() and not (dst / name).exists():
            shutil.copy2(Path(src) / name, dst / name)


def load_model(path: str, dtype, vision: bool):
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    cls = AutoModelForImageTextToText if vision else AutoModelForCausalLM
    return cls.from_pretrained(path, dtype=dtype)


def freeze_vision_tower(model) -> str:
    found = find_vision_tower(model)
    if found is None:
        raise RuntimeError(f"freeze_vision: no vision tower in {type(model).__name__} under {list(VISION_TOWERS)}")
    name, tower = found
    for p in tower.parameters():
        p.requires_grad_(False)
    return name


def lora_config(settings: TrainingSettings, exclude: str | None):
    from peft import LoraConfig

    lora = settings.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        # a frozen vision tower gets no adapters either (peft matches the whole module name)
        exclude_modules=rf"{re.escape(exclude)}\..*" if exclude else None,
        task_type="CAUSAL_LM",
    )


# --- the data ----------------------------------------------------------------------------------------------


def _text_only(turns: list[dict]) -> list[dict]:
    """A text model reads string contents: image parts are dropped, text parts joined."""
    return [
        {"role": t["role"], "content": "".join(p["text"] for p in _parts(t["content"]) if p.get("type") == "text")}
        for t in turns
    ]


def load_phase(files: list[str], kind: str, vision: bool, sft_mode: str, seed: int):
    """The phase's rows as one datasets.Dataset in TRL's layout (shuffled with the seed), or None when it is empty."""
    import datasets

    parts = []
    for f in files:
        if file_rows(f) == 0:
            log(f"{f}: no rows, skipped")
            continue
        ds = datasets.load_dataset("parquet", data_files=[f], split="train")
        missing = [c for c in COLUMNS[kind] if c not in ds.column_names]
        if missing:
            raise ValueError(f"{f}: no column(s) {missing} (columns: {ds.column_names})")
        keep_images = vision and "images" in ds.column_names
        arrow = ds.with_format("arrow")
        for start in range(0, len(ds), _BATCH):
            check_rows(f, arrow[start : start + _BATCH], kind, keep_images, start)
        ds = ds.select_columns([*COLUMNS[kind], *(["images"] if keep_images else [])])
        if not vision and any(isinstance(t["content"], list) for t in ds[0][COLUMNS[kind][0]]):
            log(f"{f}: text model: image parts and images dropped, text parts joined")
            ds = ds.map(
                lambda *cols: {c: _text_only(v) for c, v in zip(COLUMNS[kind], cols)}, input_columns=list(COLUMNS[kind])
            )
        parts.append(ds)
    if not parts:
        return None
    ds = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
    if kind == "sft" and sft_mode == "last_turn":
        ds = ds.map(
            lambda m: {"prompt": m[:-1], "completion": m[-1:]}, input_columns="messages", remove_columns="messages"
        )
    return ds.shuffle(seed=seed)  # mixed stages: rows from every file interleave (packing packs them together too)


def sft_loss_mode(processing_class) -> str:
    """assistant_only where TRL can mark assistant tokens for this chat template, else last_turn."""
    from trl.chat_template_utils import get_training_chat_template

    try:
        get_training_chat_template(processing_class)
    except Exception as e:  # unsupported template (ValueError) or one TRL cannot render its probe with
        log(f"assistant-only loss unavailable for this chat template ({type(e).__name__}); loss on the last turn")
        return "last_turn"
    return "assistant_only"


# --- training ----------------------------------------------------------------------------------------------


@dataclass
class PhaseResult:
    steps: int = 0
    tokens: int = 0
    losses: list[list[float]] = field(default_factory=list)


def make_config(kind: str, s: TrainingSettings, run_dir: Path, bf16: bool, sft_mode: str, packing: bool):
    import torch

    common = dict(
        output_dir=str(run_dir),
        learning_rate=s.learning_rate,
        num_train_epochs=s.epochs,
        max_steps=s.max_steps if s.max_steps is not None else -1,
        per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.gradient_accumulation,
        max_length=s.max_length,
        lr_scheduler_type=s.lr_scheduler,
        warmup_steps=s.warmup_ratio,  # transformers 5: a float in [0, 1) is a ratio of the total steps
        seed=s.seed,
        data_seed=s.seed,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),  # transformers refuses bf16 without a GPU unless told it is a CPU run
        activation_checkpointing=s.gradient_checkpointing,  # transformers 5 name of gradient_checkpointing
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,  # one log line per step instead of progress-bar redraws
    )
    if kind == "sft":
        from trl import SFTConfig

        return SFTConfig(
            **common,
            packing=packing,
            assistant_only_loss=sft_mode == "assistant_only",
            completion_only_loss=sft_mode == "last_turn",
        )
    from trl import DPOConfig

    weights = [1.0, s.sft_weight] if s.sft_weight > 0 else [1.0]
    return DPOConfig(**common, beta=s.beta, loss_type=["sigmoid", "sft"][: len(weights)], loss_weights=weights)


def save_trained(trainer, src: str, dst: Path, dtype, vision: bool, save_dtype=None) -> None:
    """The trained weights as a full safetensors checkpoint in `dst` (LoRA merged), in `save_dtype` (the starting
    checkpoint's own, so the engine serves it as it served the base); every process must call it."""
    from peft import PeftModel

    acc = trainer.accelerator
    state_dict = acc.get_state_dict(trainer.model_wrapped)  # under ZeRO-3 a collective gather of the 16-bit weights
    model = acc.unwrap_model(trainer.model)
    if save_dtype is not None and state_dict is not None:
        cast: dict[tuple, Any] = {}  # tied weights (embeddings and lm_head) stay one tensor, saved once
        for k, v in state_dict.items():
            if v.is_floating_point():
                state_dict[k] = cast.setdefault((v.data_ptr(), tuple(v.shape)), v.to(save_dtype))
    if isinstance(model, PeftModel):
        adapter = dst / ".adapter"  # inside the folder being written, so a crash leaves nothing elsewhere
        if acc.is_main_process:
            model.save_pretrained(adapter, state_dict=state_dict)
            from transformers.integrations.deepspeed import unset_hf_deepspeed_config

            unset_hf_deepspeed_config()  # the merge is a plain load on this process, not a sharded one
            base = load_model(src, dtype, vision)
            merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
            merged.to(save_dtype or dtype).save_pretrained(dst)
            shutil.rmtree(adapter, ignore_errors=True)
    elif acc.is_main_process:
        model.save_pretrained(dst, state_dict=state_dict)
        if save_dtype is not None:  # save_pretrained records the dtype the model trained in, not the one saved
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(dst)
            config.dtype = save_dtype
            config.save_pretrained(dst)
    acc.wait_for_everyone()


def train_phase(job: TrainJob, s: TrainingSettings, files: list[str], src: str, dst: Path, work: Path, fresh):
    """Train on one phase's files from checkpoint `src`; save to `dst`. `fresh()` runs once the processes can
    synchronise (after the trainer config exists) and before anything is written. Returns (PhaseResult, the
    tokenizer or processor)."""
    import torch
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(src)
    vision = is_vision_config(config)
    dtype = pick_dtype(s.precision, config, torch.cuda.is_available())
    processing_class = load_processor(job.model, config) if vision else AutoTokenizer.from_pretrained(job.model)
    sft_mode = sft_loss_mode(processing_class) if job.kind == "sft" else "dpo"
    packing = bool(getattr(s, "packing", False))
    if packing and vision:
        log("packing is for text models: off for this vision-language model")
        packing = False
    # the config first: under accelerate + DeepSpeed it sets up ZeRO-3, so the model loads already sharded
    args = make_config(job.kind, s, work / "run", dtype == torch.bfloat16, sft_mode, packing)
    fresh()
    data = load_phase(files, job.kind, vision, sft_mode, s.seed)
    model = load_model(src, dtype, vision)
    log(f"{job.kind}: {len(data)} rows from {files}; {type(model).__name__} in {dtype}; loss: {sft_mode}")
    frozen = None
    if vision and s.freeze_vision:
        frozen = freeze_vision_tower(model)
        log(f"vision tower {frozen!r} frozen")
    peft_config = lora_config(s, frozen) if s.lora else None
    if job.kind == "sft":
        from trl import SFTTrainer as Trainer
    else:
        from trl import DPOTrainer as Trainer
    trainer = Trainer(
        model=model, args=args, train_dataset=data, processing_class=processing_class, peft_config=peft_config
    )
    trainer.train()
    history = trainer.state.log_history
    result = PhaseResult(
        steps=trainer.state.global_step,
        # TRL logs the running count of non-padding input tokens (attention mask), summed over processes
        tokens=int(max((e.get("num_tokens", 0) for e in history), default=0)),
        losses=[[e["step"], e["loss"]] for e in history if "loss" in e],
    )
    save_trained(trainer, src, dst, dtype, vision, save_dtype=_checkpoint_dtype(config))
    del trainer, model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result, processing_class


def run_job(job_path: Path | str) -> dict[str, Any] | None:
    """Train the job; returns the metrics written to training.json (None on processes other than the main one)."""
    start = time.monotonic()
    job = read_job(job_path)
    s = stage_settings(job, job_path)
    rows = [sum(file_rows(f) for f in phase) for phase in job.phases]
    if sum(rows) == 0:
        raise NoTrainingRows(f"no training rows in {[f for phase in job.phases for f in phase]}")
    for i, n in enumerate(rows):
        if n == 0:
            log(f"phase {i + 1} of {len(rows)} ({job.phases[i]}): no rows, skipped")
    live = [i for i, n in enumerate(rows) if n]

    out = Path(job.output_dir)
    revision = job.revision()
    tmp = out.with_name(f".{out.name}.tmp-{revision.split(':')[1][:8]}")  # the same path on every process
    work = tmp / ".work"

    def fresh() -> None:
        from accelerate import PartialState

        if _rank() == 0:  # a crashed earlier run of this job may have left its folder
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        PartialState().wait_for_everyone()

    src, results, processing_class = job.model, [], None
    for k, i in enumerate(live):
        dst = tmp if k == len(live) - 1 else work / f"phase-{i + 1}"
        if len(live) > 1:
            log(f"phase {i + 1} of {len(rows)}: {rows[i]} rows")
        result, processing_class = train_phase(job, s, job.phases[i], src, dst, work, fresh if k == 0 else lambda: None)
        results.append(result)
        src = str(dst)
    if _rank() != 0:
        return None

    save_processing_class(processing_class, job.model, tmp)
    losses, offset = [], 0
    for r in results:  # later phases continue the step count, so the curve reads left to right
        losses += [[offset + step, loss] for step, loss in r.losses]
        offset += r.steps
    metrics = {
        "kind": job.kind,
        "steps": sum(r.steps for r in results),
        "tokens_seen": sum(r.tokens for r in results),
        "wall_seconds": round(time.monotonic() - start, 3),
        "final_loss": losses[-1][1] if losses else None,
        "losses": losses,
        "rows": rows,
        "data_version": job.data_version,
        "base_model": job.model,
        "settings": job.settings,
    }
    (tmp / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (tmp / REVISION_FILE).write_text(revision + "\n")
    shutil.rmtree(work, ignore_errors=True)
    replace_dir(tmp, out)
    log(f"saved {out}: {metrics['steps']} steps, {metrics['tokens_seen']} tokens, final loss {metrics['final_loss']}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m lgt.training.train JOB.json", file=sys.stderr)
        return 2
    # datasets' and transformers' bars (each split generated, mapped, tokenized; weights loaded, shards written) are
    # noise in the run's log; the trainer's own per-step loss lines stay
    import datasets
    from transformers.utils import logging as transformers_logging

    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()
    threads = os.environ.get("LGT_TORCH_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
        log(f"torch threads: {torch.get_num_threads()} (LGT_TORCH_THREADS)")
    try:
        run_job(argv[0])
    except (NoTrainingRows, FileNotFoundError) as e:
        print(f"[lgt.training] error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
