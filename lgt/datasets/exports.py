"""Training-data exports: HF datasets parquet, TRL conversational parquet, LLaMA-Factory ShareGPT JSON, and a card.

Layout under `out_dir` (splits: sft_stage1, sft_stage2, dpo_stage1, dpo_stage2, rl_stage1, rl_stage2):

    README.md                          dataset card (lgt.datasets.card), `configs:` for the Hub viewer
    hf/<split>/data.parquet            every column of the row + `image` (datasets.Image), all six splits
    trl/<split>.parquet                TRL conversational: SFT `messages`; DPO `prompt`/`chosen`/`rejected`;
                                       RL `prompt` + `gold_letter`/`gold_text`/`answer_format`; ids;
                                       `images` (list of one datasets.Image) when `trl_images`
    llamafactory/<split>.json          ShareGPT, SFT and DPO splits only (LLaMA-Factory is not used for RL)
    llamafactory/dataset_info.json     one entry per non-empty split, named f"{name}_{split}"
    llamafactory/images/<image_id>.<ext>   when `trl_images`: the original image bytes, referenced by the JSON

Empty splits: every file above is written for every split, so the layout does not depend on the data
(an empty parquet keeps its schema; an empty LLaMA-Factory file is `[]`). `datasets.load_dataset`
refuses a file with no rows ("corresponds to no data"), and LLaMA-Factory loads through it, so empty
splits are left out of `dataset_info.json` and of the card's `configs:`: every name listed there loads.

The export is written into a hidden temporary folder next to `out_dir` and swapped in by renames, so
a crash leaves either the previous export or the new one, never a half-written mix.

With `trl_images=False` the model reads `stand_in(image)` (caption + object boxes) before the user
prompt instead of the image, in TRL and LLaMA-Factory alike; the HF parquet always carries the image.
"""

from __future__ import annotations

import io
import json
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.compute as pc

from lgt.datasets.card import CardInfo, render_card
from lgt.engines.resize import fit_pixels
from lgt.images.stand_in import stand_in
from lgt.storage import replace_dir
from schemas.vocab import SPLITS

STAGES = SPLITS  # stage1, stage2
KINDS = ("sft", "dpo", "rl")
EXPORT_SPLITS = tuple(f"{kind}_{stage}" for kind in KINDS for stage in STAGES)
LLAMAFACTORY_KINDS = ("sft", "dpo")

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)


def _image_ext(data: bytes) -> str:
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return ""  # anything else is re-encoded as PNG where a file name needs an extension


class _Images:
    """The `images` rows an export uses, looked up by image_id."""

    def __init__(self, images: pa.Table, used_ids: set[str], max_pixels: int | None = None):
        ids = images.column("image_id")
        wanted = images.filter(pc.is_in(ids, value_set=pa.array(sorted(used_ids), pa.string())))
        self.rows = {r["image_id"]: r for r in wanted.to_pylist()}
        missing = used_ids - self.rows.keys()
        if missing:
            raise ValueError(f"{len(missing)} image_id(s) not in the images table, e.g. {sorted(missing)[:3]}")
        self._stand_in: dict[tuple[str, tuple[str, ...] | None], str] = {}
        self._file: dict[str, tuple[str, bytes]] = {}
        self.max_pixels = max_pixels

    def file(self, image_id: str) -> tuple[str, bytes]:
        """(file name, bytes): the bytes the teacher saw (scaled down to `max_pixels` as the engine does), or a PNG
        re-encoding when the format has no known extension."""
        if image_id not in self._file:
            data = fit_pixels(self.rows[image_id]["image"]["bytes"], self.max_pixels)
            ext = _image_ext(data)
            if not ext:
                from PIL import Image

                buf = io.BytesIO()
                Image.open(io.BytesIO(data)).save(buf, "PNG")
                data, ext = buf.getvalue(), "png"
            self._file[image_id] = (f"{image_id}.{ext}", data)
        return self._file[image_id]

    def hf_image(self, image_id: str) -> dict[str, Any]:
        name, data = self.file(image_id)
        return {"bytes": data, "path": name}

    def stand_in(self, image_id: str, keys: Sequence[str] | None) -> str:
        k = (image_id, tuple(keys) if keys is not None else None)
        if k not in self._stand_in:
            self._stand_in[k] = stand_in(self.rows[image_id], keys)
        return self._stand_in[k]


def _by_split(table: pa.Table, kind: str) -> dict[str, pa.Table]:
    found = set(table.column("split").unique().to_pylist()) if table.num_rows else set()
    unknown = found - set(STAGES)
    if unknown:
        raise ValueError(f"{kind}: unknown split value(s) {sorted(unknown)}; expected {list(STAGES)}")
    return {f"{kind}_{s}": table.filter(pc.equal(table.column("split"), s)) for s in STAGES}


# --- HF datasets parquet -----------------------------------------------------------------------------------


def _write_hf(table: pa.Table, imgs: _Images, path: Path) -> int:
    image_col = pa.array(
        [imgs.hf_image(i) for i in table.column("image_id").to_pylist()],
        pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
    )
    t = table.replace_schema_metadata(None)
    t = pa.Table.from_arrays([image_col, *t.columns], names=["image", *t.column_names])
    features = datasets.Features.from_arrow_schema(t.schema)
    features["image"] = datasets.Image()
    ds = datasets.Dataset(t).cast(features)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))
    return len(ds)


# --- TRL conversational ------------------------------------------------------------------------------------


def _trl_features(kind: str, with_images: bool) -> datasets.Features:
    if with_images:  # every turn is a list of parts so the Arrow column has one type
        content = datasets.List({"type": datasets.Value("string"), "text": datasets.Value("string")})
    else:
        content = datasets.Value("string")
    turns = datasets.List({"role": datasets.Value("string"), "content": content})
    s = datasets.Value("string")
    if kind == "sft":
        cols = {"messages": turns, "sft_id": s}
    elif kind == "dpo":
        cols = {"prompt": turns, "chosen": turns, "rejected": turns, "pair_id": s}
    else:
        cols = {"prompt": turns, "gold_letter": s, "gold_text": s, "answer_format": s}
    cols |= {"question_id": s, "image_id": s}
    if with_images:
        cols["images"] = datasets.List(datasets.Image())
    return datasets.Features(cols)


def _turn(role: str, text: str, with_images: bool) -> dict[str, Any]:
    return {"role": role, "content": [{"type": "text", "text": text}] if with_images else text}


def _user_turn(row: dict, imgs: _Images, with_images: bool, keys: Sequence[str] | None) -> dict[str, Any]:
    if with_images:
        return {
            "role": "user",
            "content": [{"type": "image", "text": None}, {"type": "text", "text": row["user_prompt"]}],
        }
    return {"role": "user", "content": imgs.stand_in(row["image_id"], keys) + "\n\n" + row["user_prompt"]}


def _trl_row(kind: str, row: dict, imgs: _Images, with_images: bool, keys: Sequence[str] | None) -> dict[str, Any]:
    prompt = [_turn("system", row["system_prompt"], with_images), _user_turn(row, imgs, with_images, keys)]
    if kind == "sft":
        out = {"messages": [*prompt, _turn("assistant", row["target"], with_images)], "sft_id": row["sft_id"]}
    elif kind == "dpo":
        out = {
            "prompt": prompt,
            "chosen": [_turn("assistant", row["chosen"], with_images)],
            "rejected": [_turn("assistant", row["rejected"], with_images)],
            "pair_id": row["pair_id"],
        }
    else:
        out = {
            "prompt": prompt,
            "gold_letter": row["gold_letter"],
            "gold_text": row["gold_text"],
            "answer_format": row["answer_format"],
        }
    out |= {"question_id": row["question_id"], "image_id": row["image_id"]}
    if with_images:
        out["images"] = [imgs.hf_image(row["image_id"])]
    return out


def _write_trl(
    kind: str, rows: list[dict], imgs: _Images, path: Path, with_images: bool, keys: Sequence[str] | None
) -> int:
    features = _trl_features(kind, with_images)
    out = [_trl_row(kind, r, imgs, with_images, keys) for r in rows]
    ds = datasets.Dataset.from_dict({c: [r[c] for r in out] for c in features}, features=features)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_parquet(str(path))
    return len(ds)


# --- LLaMA-Factory ShareGPT --------------------------------------------------------------------------------

_LF_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"}


def _lf_row(kind: str, row: dict, imgs: _Images, with_images: bool, keys: Sequence[str] | None) -> dict[str, Any]:
    if with_images:
        human = "<image>" + row["user_prompt"]  # one <image> token per entry of `images`
    else:
        human = imgs.stand_in(row["image_id"], keys) + "\n\n" + row["user_prompt"]
    out: dict[str, Any] = {"conversations": [{"from": "human", "value": human}]}
    if kind == "sft":
        out["conversations"].append({"from": "gpt", "value": row["target"]})
    else:
        out["chosen"] = {"from": "gpt", "value": row["chosen"]}
        out["rejected"] = {"from": "gpt", "value": row["rejected"]}
    out["system"] = row["system_prompt"]
    if with_images:
        out["images"] = ["images/" + imgs.file(row["image_id"])[0]]
    return out


def _lf_info(kind: str, file_name: str, with_images: bool) -> dict[str, Any]:
    columns = {"messages": "conversations", "system": "system"}
    if kind == "dpo":
        columns |= {"chosen": "chosen", "rejected": "rejected"}
    if with_images:
        columns["images"] = "images"
    info: dict[str, Any] = {"file_name": file_name, "formatting": "sharegpt"}
    if kind == "dpo":
        info["ranking"] = True
    return info | {"columns": columns, "tags": dict(_LF_TAGS)}


def _write_json_list(path: Path, entries: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = ",\n".join(json.dumps(e, ensure_ascii=False) for e in entries)
    path.write_text("[\n" + body + "\n]\n" if entries else "[]\n", encoding="utf-8")


# --- the export --------------------------------------------------------------------------------------------


def _entry(root: Path, rel: str, fmt: str, split: str | None, rows: int | None) -> dict[str, Any]:
    p = root / rel
    size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    # every entry has the same keys, so the manifest is a table (pa.Table.from_pylist reads the first row's keys)
    return {"path": rel, "format": fmt, "split": split, "rows": rows, "bytes": size, "dataset": None}


def write_exports(
    out_dir,
    *,
    sft: pa.Table,
    dpo: pa.Table,
    rl: pa.Table,
    images: pa.Table,
    name: str,
    trl_images: bool,
    stand_in_keys: list[str] | None,
    card: CardInfo,
    max_pixels: int | None = None,
) -> list[dict]:
    """Write every export format and the card under `out_dir`, replacing what was there.

    Returns the manifest: one dict per file written (`path` relative to `out_dir`, `format`, `split`, `rows`,
    `bytes`, `dataset`: the name in llamafactory/dataset_info.json, else None); the
    LLaMA-Factory image folder is one entry (`format` "images", `rows` = number of images).
    """
    datasets.disable_progress_bars()  # a bar per split and file is noise in the run's log; the manifest says it all
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    parts = {"sft": _by_split(sft, "sft"), "dpo": _by_split(dpo, "dpo"), "rl": _by_split(rl, "rl")}
    used = set()
    for table in (sft, dpo, rl):
        used |= set(table.column("image_id").to_pylist())
    imgs = _Images(images, used, max_pixels)

    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        manifest: list[dict] = []
        dataset_info: dict[str, Any] = {}
        lf_images: set[str] = set()
        for kind in KINDS:
            for split, table in parts[kind].items():
                rel = f"hf/{split}/data.parquet"
                manifest.append(_entry(tmp, rel, "hf", split, _write_hf(table, imgs, tmp / rel)))

                rows = table.to_pylist()
                rel = f"trl/{split}.parquet"
                n = _write_trl(kind, rows, imgs, tmp / rel, trl_images, stand_in_keys)
                manifest.append(_entry(tmp, rel, "trl", split, n))

                if kind in LLAMAFACTORY_KINDS:
                    rel = f"llamafactory/{split}.json"
                    _write_json_list(tmp / rel, [_lf_row(kind, r, imgs, trl_images, stand_in_keys) for r in rows])
                    entry = _entry(tmp, rel, "llamafactory", split, len(rows))
                    if rows:  # datasets cannot load a file with no rows, so only loadable splits are named
                        dataset_info[f"{name}_{split}"] = _lf_info(kind, f"{split}.json", trl_images)
                        entry["dataset"] = f"{name}_{split}"  # its name in dataset_info.json
                    manifest.append(entry)
                    if trl_images:
                        lf_images |= {r["image_id"] for r in rows}

        (tmp / "llamafactory").mkdir(exist_ok=True)
        (tmp / "llamafactory/dataset_info.json").write_text(json.dumps(dataset_info, indent=2) + "\n")
        manifest.append(_entry(tmp, "llamafactory/dataset_info.json", "llamafactory", None, len(dataset_info)))
        if trl_images:
            folder = tmp / "llamafactory/images"
            folder.mkdir()
            for image_id in sorted(lf_images):
                file_name, data = imgs.file(image_id)
                (folder / file_name).write_bytes(data)
            manifest.append(_entry(tmp, "llamafactory/images", "images", None, len(lf_images)))

        (tmp / "README.md").write_text(render_card(card, manifest), encoding="utf-8")
        manifest.append(_entry(tmp, "README.md", "card", None, None))
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest
