"""The training runner end to end on CPU: real TRL SFT and DPO on the embedded SmolLM2, and SFT on a tiny Qwen2-VL.

Every run goes through `launch.run(launch.command(...))`, as the asset runs it. What training did is measured here
independently of TRL: the answer loss and the DPO reward margin are computed with plain forward passes, and the
token count from the chat template.
"""

import io
import json
import math
import re
import sys
from pathlib import Path

import datasets
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, AutoTokenizer

from lgt.datasets.exports import _trl_features
from lgt.engines.checkpoint import REVISION_FILE, checkpoint_revision
from lgt.training import launch
from lgt.training.job import TrainJob, dpo_phases, read_job, read_metrics, sft_phases, write_job
from lgt.training.settings import DpoCheckpointSettings, SftCheckpointSettings
from lgt.training.train import load_phase, sft_loss_mode
from tests.engines.tiny_qwen2vl import build

ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "LGT_TORCH_THREADS": "2"}
SYSTEM = "You answer multiple-choice questions about an image. Think first, then answer with the option letter."
QUESTIONS = [  # (scene, question, right, wrong)
    ("A red box and a blue box on a shelf.", "Which box is on the left? (A) the red box (B) the blue box", "A", "B"),
    ("Three dogs sit on the grass.", "How many dogs are there? (A) two (B) three", "B", "A"),
    ("A white cup stands on a wooden table.", "Is the cup on the table? (A) yes (B) no", "A", "B"),
    ("A green car is parked by a tree.", "What colour is the car? (A) white (B) green", "B", "A"),
]


LOOK = "I look at the objects the question names and compare them."
GUESS = "The question is hard to see, so I guess."  # a rejected trace reasons differently, as sampled ones do


def target(letter: str, thought: str = LOOK) -> str:
    return f"<think> {thought} </think> <answer> ({letter}) </answer>"


def prompt(scene: str, question: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"{scene}\n\n{question}"}]


def write_split(path: Path, kind: str, rows: list[dict], with_images: bool = False) -> None:
    """A TRL split as exports.py writes it: HF datasets parquet with the export's features."""
    features = _trl_features(kind, with_images)
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict({c: [r[c] for r in rows] for c in features}, features=features).to_parquet(str(path))


def sft_row(i: int, scene: str, question: str, right: str, _wrong: str) -> dict:
    messages = [*prompt(scene, question), {"role": "assistant", "content": target(right)}]
    return {"messages": messages, "sft_id": f"sft-{i}", "question_id": f"q{i}", "image_id": f"img{i}"}


def dpo_row(i: int, scene: str, question: str, right: str, wrong: str) -> dict:
    return {
        "prompt": prompt(scene, question),
        "chosen": [{"role": "assistant", "content": target(right)}],
        "rejected": [{"role": "assistant", "content": target(wrong, GUESS)}],
        "pair_id": f"pair-{i}",
        "question_id": f"q{i}",
        "image_id": f"img{i}",
    }


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    """sft_stage1/2 with two rows each; dpo_stage1 with all four pairs and an empty dpo_stage2."""
    root = tmp_path_factory.mktemp("export")
    sft = [sft_row(i, *q) for i, q in enumerate(QUESTIONS)]
    dpo = [dpo_row(i, *q) for i, q in enumerate(QUESTIONS)]
    write_split(root / "trl/sft_stage1.parquet", "sft", sft[:2])
    write_split(root / "trl/sft_stage2.parquet", "sft", sft[2:])
    write_split(root / "trl/dpo_stage1.parquet", "dpo", dpo)
    write_split(root / "trl/dpo_stage2.parquet", "dpo", [])
    return root


def train(job: TrainJob, settings, tmp: Path) -> list[str]:
    lines: list[str] = []
    job_path = write_job(job, tmp / f"{job.kind}-job.json")
    launch.run(launch.command(job_path, settings, python=sys.executable), lines.append, env=ENV)
    return lines


def ids(tok, messages: list[dict], generation_prompt: bool = False) -> list[int]:
    out = tok.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt, return_dict=True)
    return list(out["input_ids"])


def answer_loss(model_dir: Path, tok, conversations: list[list[dict]]) -> float:
    """Mean cross-entropy of the assistant turn given the prompt, per answer token."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for m in conversations:
            full, head = ids(tok, m), ids(tok, m[:-1], generation_prompt=True)
            assert full[: len(head)] == head
            x = torch.tensor([full])
            labels = x.clone()
            labels[0, : len(head)] = -100
            n = len(full) - len(head)
            total += model(input_ids=x, labels=labels).loss.item() * n
            count += n
    return total / count


def completion_logps(model_dir: Path, tok, pairs: list[dict]) -> list[tuple[float, float]]:
    """(log p(chosen | prompt), log p(rejected | prompt)) per pair: sums of the completion tokens' log-probs."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()

    def logp(head_msgs, completion) -> float:
        head, full = ids(tok, head_msgs, generation_prompt=True), ids(tok, head_msgs + completion)
        x = torch.tensor([full])
        with torch.no_grad():
            lp = torch.log_softmax(model(input_ids=x).logits[0, :-1].float(), -1)
        picked = lp.gather(-1, x[0, 1:, None])[:, 0]
        return picked[len(head) - 1 :].sum().item()  # position t predicts token t+1

    return [(logp(p["prompt"], p["chosen"]), logp(p["prompt"], p["rejected"])) for p in pairs]


def changed(a: Path, b: Path) -> tuple[set[str], set[str]]:
    """(names of tensors that differ, names of tensors that are equal) between two checkpoints' safetensors."""
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert set(wa) == set(wb)
    differ = {k for k in wa if not torch.equal(wa[k], wb[k])}
    return differ, set(wa) - differ


def check_metrics(out: Path, job: TrainJob, steps: int, rows: list[int]) -> dict:
    m = read_metrics(out)
    assert m["kind"] == job.kind and m["steps"] == steps and m["rows"] == rows
    assert [s for s, _ in m["losses"]] == list(range(1, steps + 1))  # every optimizer step logged
    assert all(math.isfinite(loss) for _, loss in m["losses"]) and m["final_loss"] == m["losses"][-1][1]
    assert m["data_version"] == job.data_version and m["base_model"] == job.model and m["settings"] == job.settings
    assert m["wall_seconds"] > 0
    # the revision names this job, so the call cache keys this checkpoint's replies apart from others
    assert (out / REVISION_FILE).read_text().strip() == job.revision() == checkpoint_revision(out)
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no temp folder left
    return m


def test_a_bfloat16_checkpoint_trains_in_float32_on_the_cpu_and_is_saved_in_bfloat16(smollm2, export, tmp_path):
    """The demo's base is bf16 where the CPU has it: training keeps fp32 weights (bf16 updates round away) and the
    checkpoint comes back in the base's dtype, so the engine serves it as it served the base."""
    base = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.bfloat16).save_pretrained(base)
    AutoTokenizer.from_pretrained(smollm2).save_pretrained(base)
    settings = SftCheckpointSettings(
        learning_rate=1e-4, max_steps=1, batch_size=2, gradient_accumulation=1, max_length=256
    )
    job = TrainJob("sft", base, tmp_path / "out", sft_phases(export, "mixed"), settings, "data-v1")
    lines = train(job, settings, tmp_path)
    assert any("in torch.float32" in line for line in lines), lines
    weights = load_file(str(tmp_path / "out" / "model.safetensors"))
    assert {w.dtype for w in weights.values()} == {torch.bfloat16}
    assert json.loads((tmp_path / "out" / "config.json").read_text())["dtype"] == "bfloat16"
    differ, _ = changed(base, tmp_path / "out")
    assert differ


@pytest.fixture(scope="module")
def sft_run(smollm2, export, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sft")
    settings = SftCheckpointSettings(
        learning_rate=1e-4, max_steps=4, batch_size=2, gradient_accumulation=1, max_length=256, lr_scheduler="constant"
    )
    job = TrainJob("sft", smollm2, tmp / "sft-model", sft_phases(export, "mixed"), settings, "data-v1")
    return job, train(job, settings, tmp)


def test_sft_lowers_the_answer_loss(smollm2, export, sft_run):
    job, lines = sft_run
    out = Path(job.output_dir)
    m = check_metrics(out, job, steps=4, rows=[4])
    assert "[lgt.training] torch threads: 2 (LGT_TORCH_THREADS)" in lines

    conversations = [sft_row(i, *q)["messages"] for i, q in enumerate(QUESTIONS)]
    tok = AutoTokenizer.from_pretrained(out)  # the saved tokenizer renders the same chat
    assert tok.chat_template == AutoTokenizer.from_pretrained(smollm2).chat_template
    # 4 steps of 2 rows over 4 rows: every conversation seen twice, none padded away or truncated
    assert m["tokens_seen"] == 2 * sum(len(ids(tok, c)) for c in conversations)

    differ, _ = changed(smollm2, out)
    assert differ
    before, after = answer_loss(smollm2, tok, conversations), answer_loss(out, tok, conversations)
    assert after < 0.7 * before, (before, after)


def test_dpo_from_the_sft_model_widens_the_reward_margin(sft_run, export, tmp_path):
    sft_job, _ = sft_run
    sft_out = Path(sft_job.output_dir)
    settings = DpoCheckpointSettings(
        learning_rate=1e-4, max_steps=4, batch_size=2, gradient_accumulation=1, max_length=256, lr_scheduler="constant"
    )
    job = TrainJob("dpo", sft_out, tmp_path / "dpo-model", dpo_phases(export), settings, "data-v1")
    lines = train(job, settings, tmp_path)
    out = Path(job.output_dir)
    m = check_metrics(out, job, steps=4, rows=[4])
    assert any("dpo_stage2.parquet: no rows, skipped" in line for line in lines)

    pairs = [dpo_row(i, *q) for i, q in enumerate(QUESTIONS)]
    tok = AutoTokenizer.from_pretrained(out)
    # 4 steps of 2 pairs over 4 pairs: each pair twice, chosen and rejected each with the prompt
    per_pass = sum(len(ids(tok, p["prompt"] + p["chosen"])) + len(ids(tok, p["prompt"] + p["rejected"])) for p in pairs)
    assert m["tokens_seen"] == 2 * per_pass

    differ, _ = changed(sft_out, out)
    assert differ
    ref, policy = completion_logps(sft_out, tok, pairs), completion_logps(out, tok, pairs)
    # DPO's implicit reward margin: beta * ((log pi - log ref)(chosen) - (log pi - log ref)(rejected)); 0 at the start
    margins = [settings.beta * ((pc - rc) - (pr - rr)) for (rc, rr), (pc, pr) in zip(ref, policy)]
    assert sum(margins) / len(margins) > 0.5, margins
    assert all(mg > 0 for mg in margins), margins
    # and the chosen answer's own likelihood is not given up for it (the SFT term)
    assert sum(pc for pc, _ in policy) > sum(rc for rc, _ in ref) - 1.0


def png(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (100, 80), colour).save(buf, "PNG")
    return buf.getvalue()


def vision_sft_row(i: int, colour: str, letter: str) -> dict:
    """exports.py's layout with trl_images: every turn a list of parts; the user turn [image, text]; one image."""

    def text(role, t):
        return {"role": role, "content": [{"type": "text", "text": t}]}

    user = {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "Colour? (A) (B)"}]}
    return {
        "messages": [
            text("system", SYSTEM),
            user,
            text("assistant", f"<think> {colour} </think> <answer> ({letter}) </answer>"),
        ],
        "sft_id": f"sft-{i}",
        "question_id": f"q{i}",
        "image_id": f"img{i}",
        "images": [{"bytes": png(colour), "path": f"img{i}.png"}],
    }


@pytest.fixture(scope="module")
def vision(smollm2, tmp_path_factory) -> tuple[Path, Path]:
    """(tiny Qwen2-VL checkpoint, export with images: two SFT rows per stage)."""
    model = build(smollm2, tmp_path_factory.mktemp("qwen2vl"))
    root = tmp_path_factory.mktemp("vision-export")
    rows = [vision_sft_row(i, c, "AB"[i % 2]) for i, c in enumerate(["red", "blue", "green", "white"])]
    write_split(root / "trl/sft_stage1.parquet", "sft", rows[:2], with_images=True)
    write_split(root / "trl/sft_stage2.parquet", "sft", rows[2:], with_images=True)
    return model, root


def vision_checks(base: Path, out: Path) -> None:
    differ, same = changed(base, out)
    visual = {k for k in differ | same if "visual" in k}
    assert visual and visual <= same  # the vision tower is frozen: bit for bit the base's
    assert differ and not any("lora" in k for k in differ | same)  # the language model trained; adapters merged
    assert (out / "preprocessor_config.json").is_file()  # the processor travels with the weights
    AutoModelForImageTextToText.from_pretrained(out)


def test_vision_sft_staged_freezes_the_vision_tower(vision, tmp_path):
    base, export_dir = vision
    settings = SftCheckpointSettings(
        learning_rate=1e-3, max_steps=1, batch_size=2, gradient_accumulation=1, max_length=512, schedule="staged"
    )
    job = TrainJob("sft", base, tmp_path / "vl-model", sft_phases(export_dir, "staged"), settings, "data-v2")
    lines = train(job, settings, tmp_path)
    out = Path(job.output_dir)
    m = check_metrics(out, job, steps=2, rows=[2, 2])  # max_steps per phase, steps counted on across phases
    assert m["tokens_seen"] > 0
    assert "[lgt.training] vision tower 'model.visual' frozen" in lines
    assert any("phase 2 of 2: 2 rows" in line for line in lines)
    vision_checks(base, out)

    from lgt.engines.transformers_backend import load_processor

    assert load_processor(str(out), None).tokenizer.chat_template  # the engine can read what was saved


def test_vision_sft_lora_is_merged_and_spares_the_vision_tower(vision, tmp_path):
    base, export_dir = vision
    settings = SftCheckpointSettings(
        learning_rate=1e-3,
        max_steps=2,
        batch_size=2,
        gradient_accumulation=1,
        max_length=512,
        lora={"r": 4, "alpha": 8},
    )
    job = TrainJob("sft", base, tmp_path / "vl-lora", sft_phases(export_dir, "mixed"), settings, "data-v3")
    train(job, settings, tmp_path)
    out = Path(job.output_dir)
    check_metrics(out, job, steps=2, rows=[4])
    vision_checks(base, out)
    assert json.loads((out / "config.json").read_text())["model_type"] == "qwen2_vl"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []  # the adapter folder is gone


def test_no_training_rows_fails_with_the_files_named(export, tmp_path):
    settings = DpoCheckpointSettings()
    empty = str(export / "trl/dpo_stage2.parquet")
    job = TrainJob("dpo", tmp_path / "no-model", tmp_path / "out", [[empty], [empty]], settings, "v")
    with pytest.raises(RuntimeError, match="no training rows in") as err:
        train(job, settings, tmp_path)
    assert empty in str(err.value)
    assert not (tmp_path / "out").exists()


def test_a_bad_row_is_named_by_file_row_and_field(tmp_path):
    rows = [sft_row(i, *q) for i, q in enumerate(QUESTIONS[:3])]
    rows[2]["messages"] = rows[2]["messages"][:-1]  # no assistant turn
    f = tmp_path / "sft_stage1.parquet"
    write_split(f, "sft", rows)
    expected = f"{f}: row 2: field 'messages': last turn is 'user', expected 'assistant'"
    with pytest.raises(ValueError, match=re.escape(expected)):
        load_phase([str(f)], "sft", vision=False, sft_mode="last_turn", seed=0)


def test_text_model_reads_an_image_export_as_text(tmp_path):
    f = tmp_path / "sft_stage1.parquet"
    write_split(f, "sft", [vision_sft_row(0, "red", "A")], with_images=True)
    ds = load_phase([str(f)], "sft", vision=False, sft_mode="last_turn", seed=0)
    assert ds.column_names == ["prompt", "completion"]  # no images; the last turn is the completion
    row = ds[0]
    assert row["prompt"][1] == {"role": "user", "content": "Colour? (A) (B)"}
    assert row["completion"] == [{"role": "assistant", "content": "<think> red </think> <answer> (A) </answer>"}]


def test_sft_loss_mode_follows_what_trl_can_mask(smollm2):
    """Assistant-only loss where TRL can mark the assistant tokens (Qwen2.5's template, which it patches with
    {% generation %} markers); SmolLM2's own template it cannot, so the loss falls back to the last turn."""
    import trl

    tok = AutoTokenizer.from_pretrained(smollm2)
    assert sft_loss_mode(tok) == "last_turn"
    tok.chat_template = (Path(trl.__file__).parent / "chat_templates/qwen2_5.jinja").read_text()
    assert sft_loss_mode(tok) == "assistant_only"


def test_job_round_trip_and_revision(tmp_path, export):
    settings = SftCheckpointSettings(max_steps=3)
    job = TrainJob("sft", "/models/base", tmp_path / "out", sft_phases(export, "staged"), settings, "v1")
    back = read_job(write_job(job, tmp_path / "job.json"))
    assert back == job and back.revision() == job.revision()
    assert job.phases == [[str(export / "trl/sft_stage1.parquet")], [str(export / "trl/sft_stage2.parquet")]]
    assert sft_phases(export, "mixed") == [
        [str(export / "trl/sft_stage1.parquet"), str(export / "trl/sft_stage2.parquet")]
    ]
    assert dpo_phases(export) == [[str(export / "trl/dpo_stage1.parquet"), str(export / "trl/dpo_stage2.parquet")]]
    other = TrainJob("sft", "/models/base", tmp_path / "out", job.phases, settings, "v2")
    assert other.revision() != job.revision() and job.revision().startswith("trained:")

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({k: v for k, v in json.loads(job.to_json()).items() if k != "phases"}))
    with pytest.raises(ValueError, match=re.escape(f"{bad}: missing field(s) ['phases']")):
        read_job(bad)
    with pytest.raises(FileNotFoundError, match="sft_stage1"):
        sft_phases(tmp_path, "mixed")
