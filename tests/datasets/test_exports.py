"""Exports: HF parquet, TRL conversational, LLaMA-Factory ShareGPT and the card, loaded back by the real readers.

The rows are built here in the schemas' layouts (tests do not depend on lgt.datasets.training_sets), with real PNGs.
One real SFT step and one real DPO step run on the exported TRL files with SmolLM2-135M-Instruct.
"""

import hashlib
import json
import math

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from lgt.datasets import exports
from lgt.datasets.card import CardInfo, render_card
from lgt.datasets.exports import EXPORT_SPLITS, write_exports
from lgt.images.stand_in import stand_in
from schemas.images import IMAGES_ARROW
from schemas.traces import DPO_ARROW, RL_ARROW, SFT_ARROW
from tests.fixtures import BLUE, GREEN, RED, png

YELLOW = (255, 255, 0)
SYSTEM = "Think in <think> </think>, then answer in <answer> </answer>."
RECIPE_HASH = "9f1c2e7ab3d45e60"


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# image_id -> (colour, size)
IMAGES = {h("img-red"): (RED, (64, 48)), h("img-green"): (GREEN, (32, 32)), h("img-blue"): (BLUE, (40, 20))}
IMG_RED, IMG_GREEN, IMG_BLUE = IMAGES


def images_table(extra: dict | None = None) -> pa.Table:
    rows = []
    for image_id, (colour, (w, hgt)) in (IMAGES | (extra or {})).items():
        rows.append(
            {
                "image_id": image_id,
                "source": "synthetic",
                "split": "train",
                "image": {"bytes": png(colour, (w, hgt)), "path": None},
                "width": w,
                "height": hgt,
                "caption": f"A plain {w}x{hgt} picture.",
                "objects": [
                    {
                        "object_id": "o1",
                        "label": "square",
                        "bbox_xyxy": [0.0, 0.0, w / 2, hgt / 2],
                        "attributes": [{"key": "color", "value": "red"}, {"key": "size", "value": "small"}],
                        "area": w / 2 * hgt / 2,
                    }
                ],
                "metadata": "{}",
            }
        )
    return pa.Table.from_pylist(rows, schema=IMAGES_ARROW)


def _q(n: int, image_id: str, stage: int) -> dict:
    return {"question_id": h(f"q{n}"), "image_id": image_id, "source": "synthetic", "stage": stage, "family": "count"}


def target(thought: str, answer: str) -> str:
    return f"<think> {thought} </think> <answer> {answer} </answer>"


def sft_table() -> pa.Table:
    specs = [(1, IMG_RED, 1, "O"), (2, IMG_GREEN, 1, "O->O"), (3, IMG_BLUE, 2, "X->O")]
    rows = []
    for n, image_id, stage, category in specs:
        thought = f"There is one square in picture {n}, so the answer is B."
        rows.append(
            {
                "sft_id": h(f"sft{n}"),
                "split": f"stage{stage}",
                **_q(n, image_id, stage),
                "category": category,
                "system_prompt": SYSTEM,
                "user_prompt": f"Question {n}: how many squares are there?\n(A) 0\n(B) 1\n(C) 2\n(D) 3",
                "thought": thought,
                "answer": "(B) 1",
                "target": target(thought, "(B) 1"),
                "weight": 1.0,
                "trace_id": h(f"trace{n}"),
                "call_keys": [f"key{n}"],
            }
        )
    return pa.Table.from_pylist(rows, schema=SFT_ARROW)


def dpo_table() -> pa.Table:
    # dpo_stage2 stays empty: the empty-split path of every format is exercised
    rows = []
    for n, image_id in ((1, IMG_RED), (2, IMG_GREEN)):
        rows.append(
            {
                "pair_id": h(f"pair{n}"),
                "split": "stage1",
                **_q(n, image_id, 1),
                "rule": "O>X",
                "system_prompt": SYSTEM,
                "user_prompt": f"Question {n}: how many squares?\n(A) 0\n(B) 1",
                "chosen": target("I count one square.", "(B) 1"),
                "rejected": target("I see no square.", "(A) 0"),
                "chosen_id": h(f"c{n}"),
                "rejected_id": h(f"r{n}"),
                "chosen_category": "O",
                "rejected_category": "X",
                "call_keys": [f"kc{n}", f"kr{n}"],
            }
        )
    return pa.Table.from_pylist(rows, schema=DPO_ARROW)


def rl_table() -> pa.Table:
    specs = [(1, IMG_RED, 1, 0.25), (2, IMG_GREEN, 1, 0.5), (3, IMG_BLUE, 2, float("nan"))]
    rows = []
    for n, image_id, stage, rate in specs:
        rows.append(
            {
                **_q(n, image_id, stage),
                "split": f"stage{stage}",
                "system_prompt": SYSTEM,
                "user_prompt": f"Question {n}: how many squares?",
                "question": "How many squares?",
                "options": ["0", "1", "2", "3"],
                "gold_letter": "B",
                "gold_text": "1",
                "answer_format": "(X)",
                "pass_rate": rate,
            }
        )
    return pa.Table.from_pylist(rows, schema=RL_ARROW)


CARD = CardInfo(
    name="lgt-test",
    recipe_name="tiny",
    recipe_hash=RECIPE_HASH,
    prompt_versions={"simple_cot": "v3", "expand": "v1"},
    models={"reasoner": "HuggingFaceTB/SmolLM2-135M-Instruct", "solver": "Qwen/Qwen2-VL-2B-Instruct"},
    funnels={"simple_cots": {"questions": 10, "samples": 40, "parsed": 37, "kept": 12}},
    rejects={"simple_cots": {"unparseable": 3, "duplicate": 25}},
    cot_lengths={"O": [10, 20, 30, 40, 50, 60, 70, 80, 90, 1000], "X->O": [7]},
    cot_forced={"O": 3},
    pass_rates=[0.25, 0.5, 0.5, 0.75, 0.75, 0.75, float("nan")],
)
EXPECTED_ROWS = {"sft_stage1": 2, "sft_stage2": 1, "dpo_stage1": 2, "dpo_stage2": 0, "rl_stage1": 2, "rl_stage2": 1}
KEYS = ["color"]


def export(out_dir, trl_images: bool, **kw) -> list[dict]:
    args = {
        "sft": sft_table(),
        "dpo": dpo_table(),
        "rl": rl_table(),
        "images": images_table(),
        "name": "lgt",
        "trl_images": trl_images,
        "stand_in_keys": KEYS,
        "card": CARD,
    } | kw
    return write_exports(out_dir, **args)


@pytest.fixture(scope="module")
def text_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("text") / "export"
    return out, export(out, trl_images=False)


@pytest.fixture(scope="module")
def vision_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("vision") / "export"
    return out, export(out, trl_images=True)


def load(path, cache) -> datasets.Dataset:
    return datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(cache))


def colour_of(img: Image.Image):
    return img.convert("RGB").getpixel((0, 0))


def test_the_rows_built_here_pass_the_artifact_schemas():
    from schemas.images import ImagesSchema
    from schemas.traces import DpoSchema, RlSchema, SftSchema

    for schema, table in (
        (SftSchema, sft_table()),
        (DpoSchema, dpo_table()),
        (RlSchema, rl_table()),
        (ImagesSchema, images_table()),
    ):
        schema.validate(table.to_pandas())


# --- HF parquet ---------------------------------------------------------------------------------------------


def test_hf_parquet_loads_every_split_with_decoded_images(vision_export, tmp_path):
    out, _ = vision_export
    sources = {"sft": sft_table(), "dpo": dpo_table(), "rl": rl_table()}
    for split, n in EXPECTED_ROWS.items():
        path = out / "hf" / split / "data.parquet"
        kind = split.split("_")[0]
        if n == 0:  # written for a stable layout; datasets refuses a file with no rows, pyarrow reads it
            t = pq.read_table(path)
            assert t.num_rows == 0 and {"image", *sources[kind].column_names} <= set(t.column_names)
            continue
        ds = load(path, tmp_path)
        assert len(ds) == n
        assert isinstance(ds.features["image"], datasets.Image)
        assert set(ds.column_names) == {"image", *sources[kind].column_names}
        for row in ds:
            colour, size = IMAGES[row["image_id"]]
            assert isinstance(row["image"], Image.Image)
            assert row["image"].size == size and colour_of(row["image"]) == colour
            assert row["split"] == "stage" + split[-1]


# --- TRL ------------------------------------------------------------------------------------------------------


def test_trl_text_files_are_conversational_with_the_stand_in(text_export, tmp_path):
    out, _ = text_export
    imgs = {r["image_id"]: r for r in images_table().to_pylist()}
    sft = load(out / "trl/sft_stage1.parquet", tmp_path)
    assert "images" not in sft.column_names and len(sft) == 2
    assert set(sft.column_names) == {"messages", "sft_id", "question_id", "image_id"}
    m = sft[0]["messages"]
    assert [t["role"] for t in m] == ["system", "user", "assistant"]
    assert m[0]["content"] == SYSTEM and m[2]["content"].startswith("<think> ")
    assert (
        m[1]["content"] == stand_in(imgs[sft[0]["image_id"]], KEYS) + "\n\n" + sft_table().to_pylist()[0]["user_prompt"]
    )
    assert "color=red" in m[1]["content"] and "size=" not in m[1]["content"]  # stand_in_keys honoured

    dpo = load(out / "trl/dpo_stage1.parquet", tmp_path)
    assert set(dpo.column_names) == {"prompt", "chosen", "rejected", "pair_id", "question_id", "image_id"}
    assert [t["role"] for t in dpo[0]["prompt"]] == ["system", "user"]
    assert dpo[0]["chosen"] == [{"role": "assistant", "content": target("I count one square.", "(B) 1")}]
    assert dpo[0]["rejected"][0]["content"].endswith("<answer> (A) 0 </answer>")
    assert pq.read_table(out / "trl/dpo_stage2.parquet").num_rows == 0

    rl = load(out / "trl/rl_stage2.parquet", tmp_path)
    assert set(rl.column_names) == {"prompt", "gold_letter", "gold_text", "answer_format", "question_id", "image_id"}
    assert rl[0]["gold_letter"] == "B" and rl[0]["gold_text"] == "1" and rl[0]["answer_format"] == "(X)"


def test_trl_vision_files_have_the_layout_trl_vision_expects(vision_export, tmp_path):
    """TRL's vision path: an `images` column of PIL images and a user turn with an image part.

    No VLM training step here: building a VLM processor needs torchvision, which this machine lacks.
    TRL's own `prepare_multimodal_messages` (what its vision collators call) checks that the
    placeholders and the images line up.
    """
    from trl.data_utils import prepare_multimodal_messages

    out, _ = vision_export
    for split, n in EXPECTED_ROWS.items():
        if n == 0:
            continue
        ds = load(out / f"trl/{split}.parquet", tmp_path)
        assert ds.features["images"] == datasets.List(datasets.Image())
        for row in ds:
            assert len(row["images"]) == 1 and isinstance(row["images"][0], Image.Image)
            colour, size = IMAGES[row["image_id"]]
            assert row["images"][0].size == size and colour_of(row["images"][0]) == colour
            turns = row["messages"] if split.startswith("sft") else row["prompt"]
            user = turns[1]
            assert user["role"] == "user" and [p["type"] for p in user["content"]] == ["image", "text"]
            assert "Image description" not in user["content"][1]["text"]  # the model sees the image, not the stand-in
            filled = prepare_multimodal_messages(turns, images=row["images"])
            assert filled[1]["content"][0]["image"] is row["images"][0]
            if split.startswith("dpo"):
                assert row["chosen"][0]["content"] == [{"type": "text", "text": target("I count one square.", "(B) 1")}]


# --- LLaMA-Factory ----------------------------------------------------------------------------------------------


def test_llamafactory_json_and_dataset_info(vision_export, text_export):
    out, _ = vision_export
    lf = out / "llamafactory"
    info = json.loads((lf / "dataset_info.json").read_text())
    assert set(info) == {"lgt_sft_stage1", "lgt_sft_stage2", "lgt_dpo_stage1"}  # dpo_stage2 is empty
    for ds_name, entry in info.items():
        split = ds_name.removeprefix("lgt_")
        assert entry["formatting"] == "sharegpt" and (lf / entry["file_name"]).is_file()
        assert entry["tags"] == {
            "role_tag": "from",
            "content_tag": "value",
            "user_tag": "human",
            "assistant_tag": "gpt",
        }
        assert entry["columns"]["messages"] == "conversations" and entry["columns"]["images"] == "images"
        rows = json.loads((lf / entry["file_name"]).read_text())
        assert len(rows) == EXPECTED_ROWS[split]
        for r in rows:
            assert r["system"] == SYSTEM and r["conversations"][0]["from"] == "human"
            assert r["conversations"][0]["value"].count("<image>") == len(r["images"]) == 1
            for p in r["images"]:  # resolved against media_dir = the llamafactory folder
                with Image.open(lf / p) as im:
                    assert im.size in {s for _, s in IMAGES.values()}
        if split.startswith("dpo"):
            assert entry["ranking"] is True and entry["columns"]["chosen"] == "chosen"
            assert [t["from"] for t in rows[0]["conversations"]] == ["human"]
            assert rows[0]["chosen"]["from"] == rows[0]["rejected"]["from"] == "gpt"
        else:
            assert "ranking" not in entry
            assert [t["from"] for t in rows[0]["conversations"]] == ["human", "gpt"]
    assert json.loads((lf / "dpo_stage2.json").read_text()) == []
    assert not (lf / "rl_stage1.json").exists()

    out, _ = text_export  # images off: stand-in text, no images column or folder
    lf = out / "llamafactory"
    info = json.loads((lf / "dataset_info.json").read_text())
    assert all("images" not in e["columns"] for e in info.values()) and not (lf / "images").exists()
    row = json.loads((lf / "sft_stage2.json").read_text())[0]
    assert "images" not in row and row["conversations"][0]["value"].startswith("Image description: ")
    assert "<image>" not in row["conversations"][0]["value"]


# --- manifest, card, atomic rewrite ---------------------------------------------------------------------------


def test_manifest_matches_the_files(vision_export):
    out, manifest = vision_export
    listed = set()
    for m in manifest:
        p = out / m["path"]
        assert p.exists(), m
        if m["format"] == "images":
            files = sorted(p.iterdir())
            assert len(files) == m["rows"] == 3
            listed |= {str(f.relative_to(out)) for f in files}
        else:
            listed.add(m["path"])
            assert p.stat().st_size == m["bytes"]
        if m["path"].endswith(".parquet"):
            assert pq.read_table(p).num_rows == m["rows"] == EXPECTED_ROWS[m["split"]]
        elif m["path"].endswith(".json") and m["split"]:
            assert len(json.loads(p.read_text())) == m["rows"] == EXPECTED_ROWS[m["split"]]
    on_disk = {str(f.relative_to(out)) for f in out.rglob("*") if f.is_file()}
    assert on_disk == listed
    assert {m["split"] for m in manifest if m["format"] in ("hf", "trl")} == set(EXPORT_SPLITS)
    info = json.loads((out / "llamafactory/dataset_info.json").read_text())
    assert pa.Table.from_pylist(manifest).num_columns == 6  # same keys everywhere: a table
    assert {m["dataset"]: m["path"] for m in manifest if m["dataset"]} == {
        k: "llamafactory/" + v["file_name"] for k, v in info.items()
    }
    assert [p.name for p in out.parent.iterdir()] == ["export"]  # no temporary folder left behind


def test_card_has_counts_yields_histogram_and_lineage(vision_export, tmp_path):
    out, manifest = vision_export
    card = (out / "README.md").read_text()
    assert card == render_card(CARD, manifest[:-1])  # the manifest's last entry is the card itself
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "other"
    configs = {c["config_name"]: c["data_files"][0]["path"] for c in front["configs"]}
    assert configs == {s: f"hf/{s}/data.parquet" for s, n in EXPECTED_ROWS.items() if n}
    # the card's configs load the way the Hub loads them
    ds = datasets.load_dataset(str(out), "sft_stage1", split="train", cache_dir=str(tmp_path))
    assert len(ds) == 2 and isinstance(ds[0]["image"], Image.Image)

    assert "| sft_stage1 | 2 | 2 | 2 |" in card and "| dpo_stage2 | 0 | 0 | 0 |" in card
    assert "| rl_stage2 | 1 | 1 | – |" in card
    assert "| simple_cots | questions | 10 | – |" in card
    assert "| simple_cots | samples | 40 | – |" in card  # more samples than questions: not a filter step
    assert "| simple_cots | parsed | 37 | 92.5% |" in card and "| simple_cots | kept | 12 | 32.4% |" in card
    assert "| simple_cots | duplicate | 25 | 89.3% |" in card
    # count, mean, median, p90 (nearest rank), max, share the thinking budget closed (3 of 10)
    assert "| O | 10 | 145.0 | 55 | 90 | 1000 | 30.0% |" in card
    assert "| X->O | 1 | 7.0 | 7 | 7 | 7 | 0.0% |" in card
    assert "| X->O | 1 | 7.0 | 7 | 7 | 7 |" in card
    assert "| 0.25 | 1 | 14.3% |" in card and "| 0.5 | 2 | 28.6% |" in card and "| 0.75 | 3 | 42.9% |" in card
    assert "| n/a (no difficulty row) | 1 | 14.3% |" in card
    assert RECIPE_HASH in card and "`tiny`" in card and "| `simple_cot` | `v3` |" in card
    assert "| solver | `Qwen/Qwen2-VL-2B-Instruct` |" in card
    assert "trl/sft_stage1.parquet" in card and "`lgt_sft_stage1`, `lgt_sft_stage2`, `lgt_dpo_stage1`" in card


def test_rewrite_replaces_the_export_and_a_crash_keeps_the_old_one(tmp_path, monkeypatch):
    out = tmp_path / "export"
    export(out, trl_images=True)
    (out / "stray.txt").write_text("from an older export")
    fewer = sft_table().slice(0, 1)
    manifest = export(out, trl_images=False, sft=fewer)
    assert not (out / "stray.txt").exists() and not (out / "llamafactory/images").exists()
    assert pq.read_table(out / "hf/sft_stage2/data.parquet").num_rows == 0
    before = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def boom(*a, **k):
        raise RuntimeError("crash while writing the card")

    monkeypatch.setattr(exports, "render_card", boom)
    with pytest.raises(RuntimeError):
        export(out, trl_images=True)
    after = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before and len(manifest) == len(before)
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_bad_inputs_fail_before_anything_is_written(tmp_path):
    out = tmp_path / "export"
    with pytest.raises(ValueError, match="not in the images table"):
        export(out, trl_images=True, images=images_table().slice(0, 2))
    bad = sft_table().set_column(1, "split", pa.array(["train"] * 3))
    with pytest.raises(ValueError, match="unknown split"):
        export(out, trl_images=True, sft=bad)
    assert list(tmp_path.iterdir()) == []


def test_non_png_images_keep_their_bytes_and_extension(tmp_path):
    from tests.fixtures import jpeg

    jid = h("img-jpeg")
    imgs = images_table()
    row = imgs.slice(0, 1).to_pylist()[0] | {"image_id": jid, "image": {"bytes": jpeg(YELLOW, (64, 48)), "path": None}}
    imgs = pa.concat_tables([imgs, pa.Table.from_pylist([row], schema=IMAGES_ARROW)])
    sft = sft_table().set_column(3, "image_id", pa.array([jid, IMG_GREEN, IMG_BLUE]))
    export(tmp_path / "export", trl_images=True, sft=sft, images=imgs)
    lf = json.loads((tmp_path / "export/llamafactory/sft_stage1.json").read_text())
    assert lf[0]["images"] == [f"images/{jid}.jpg"]
    assert (tmp_path / "export/llamafactory/images" / f"{jid}.jpg").read_bytes() == row["image"]["bytes"]


# --- one real training step each -------------------------------------------------------------------------------


def _train_args(cls, out, **kw):
    # CPU-cheap but real: one step, batch of one, no gradient checkpointing (TRL turns it on by default; it
    # only saves memory), plain SGD (AdamW's first step allocates and walks two 135M-float states)
    return cls(
        output_dir=str(out),
        max_steps=1,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=1,
        gradient_checkpointing=False,
        optim="sgd",
        learning_rate=1e-5,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
        **kw,
    )


def _model(path):
    """The real checkpoint with all but its last decoder layer frozen.

    The data path (chat template, tokenisation, collation, loss) is TRL's whole pipeline either way; freezing
    only keeps the backward pass short, which on this 2-core machine is most of a full step's minute.
    """
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path)
    last = f"model.layers.{model.config.num_hidden_layers - 1}."
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(last)
    return model


def _assert_one_step(trainer, result, model):
    assert trainer.state.global_step == 1
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert losses and all(math.isfinite(v) for v in losses)
    assert math.isfinite(result.training_loss)
    assert any(p.requires_grad for p in model.parameters())


def test_one_real_sft_step_on_the_exported_trl_file(text_export, smollm2, tmp_path, monkeypatch):
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out, _ = text_export
    ds = load(out / "trl/sft_stage1.parquet", tmp_path / "cache")  # passed unchanged, ids included
    model = _model(smollm2)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer = SFTTrainer(
        model=model,
        train_dataset=ds,
        processing_class=AutoTokenizer.from_pretrained(smollm2),
        args=_train_args(SFTConfig, tmp_path / "sft", max_length=160),
    )
    _assert_one_step(trainer, trainer.train(), model)
    assert any(not p.detach().equal(before[n]) for n, p in model.named_parameters() if p.requires_grad)


def test_one_real_dpo_step_on_the_exported_trl_file(text_export, smollm2, tmp_path, monkeypatch):
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out, _ = text_export
    ds = load(out / "trl/dpo_stage1.parquet", tmp_path / "cache")
    model = _model(smollm2)
    trainer = DPOTrainer(
        model=model,
        train_dataset=ds,
        processing_class=AutoTokenizer.from_pretrained(smollm2),
        args=_train_args(DPOConfig, tmp_path / "dpo", max_length=160),
    )
    _assert_one_step(trainer, trainer.train(), model)
    # the reference model is a fresh copy of the checkpoint, so the first step's sigmoid loss is -log sigmoid(0)
    assert trainer.ref_model is not None
    assert abs(trainer.state.log_history[0]["loss"] - math.log(2)) < 1e-3
