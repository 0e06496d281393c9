"""COCO format: instances JSON (+ optional captions JSON) and an image folder.

A large split's instances file (train2017: ~450 MB) is parsed once per source, not once per shard: the first read
writes a per-image index, one JSON line per image (segmentation polygons left out) and the lines' byte offsets,
under <LGT_HOME>/cache/coco-index/<sha256 of the files' contents>/; every shard then reads only its own lines.
An edited file hashes to a new index; the files are written to a temporary name and renamed, so a crash or two
shards building at once never leave a half index. Records are the same with or without the index.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from lgt.images.sources.base import SourceSettings, first_occurrences, require_dir, shard_range
from lgt.images.validate import Quarantine, RawObject, RawRecord, read_image_file, safe_join
from lgt.paths import lgt_home
from lgt.settings import resolve_path

INDEX_VERSION = 1  # bump when an index entry's layout changes: older indexes are then never read
PARSES: Counter = Counter()  # instances path -> times parsed into entries (tests check an index spares the parse)


class CocoSource(SourceSettings):
    kind: Literal["coco"]
    images: Path = Field(description="folder holding the image files")
    instances: Path = Field(description="COCO instances JSON")
    captions: Path | None = Field(None, description="optional COCO captions JSON")
    require_caption: bool | None = Field(None, description="default: true when captions is set")

    _paths = field_validator("images", "instances", "captions")(resolve_path)


def load_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_bytes())
    except OSError as e:
        raise FileNotFoundError(f"{path}: cannot read the {what}: {e.strerror}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: the {what} is not valid JSON: {e}") from None


def file_sha256(path: Path, what: str) -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise FileNotFoundError(f"{path}: cannot read the {what}: {e.strerror}") from None


def _hashable(value: Any) -> bool:
    return not isinstance(value, list | dict)  # what JSON gives that cannot be a dict key


def coco_entries(src: CocoSource) -> tuple[list[dict[str, Any]], list[Any]]:
    """(entries, categories): one entry per `images[]` item, in file order, holding all a record needs: the item
    itself, its annotations (without segmentation) each with its category's position in `categories` (None: an
    unknown category), its caption texts and the row where its id first occurs."""
    PARSES[str(src.instances)] += 1
    inst = load_json(src.instances, "COCO instances file")
    if not isinstance(inst, dict):  # a list here would otherwise fail as an AttributeError naming no file
        raise ValueError(f"{src.instances}: COCO instances file is not a JSON object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(inst.get(key), list):
            raise ValueError(f"{src.instances}: COCO instances file has no list {key!r}")
    cats: dict[Any, int] = {}  # category id -> its position; a repeated id: the last one, as a dict would
    for i, c in enumerate(inst["categories"]):
        if isinstance(c, dict):
            if not _hashable(c.get("id")):
                raise ValueError(f"{src.instances}: categories[{i}].id is not a number or a string")
            cats[c.get("id")] = i
    anns: dict[Any, list[list]] = defaultdict(list)  # image id -> [[annotation, category position or None], ...]
    for i, a in enumerate(inst["annotations"]):
        if isinstance(a, dict):
            if not _hashable(a.get("image_id")):
                raise ValueError(f"{src.instances}: annotations[{i}].image_id is not a number or a string")
            cat_id = a.get("category_id")
            ann = {k: v for k, v in a.items() if k != "segmentation"}  # polygons: most of the file, never read
            anns[a.get("image_id")].append([ann, cats.get(cat_id) if _hashable(cat_id) else None])
    caps: dict[Any, list[Any]] = defaultdict(list)
    if src.captions is not None:
        cap_data = load_json(src.captions, "COCO captions file")
        if not isinstance(cap_data, dict) or not isinstance(cap_data.get("annotations", []), list):
            raise ValueError(f"{src.captions}: COCO captions file has no list 'annotations'")
        for i, c in enumerate(cap_data.get("annotations", [])):
            if isinstance(c, dict) and c.get("caption") is not None:
                if not _hashable(c.get("image_id")):
                    raise ValueError(f"{src.captions}: annotations[{i}].image_id is not a number or a string")
                caps[c.get("image_id")].append(c["caption"])

    images = inst["images"]
    first = first_occurrences([str(im.get("id")) if isinstance(im, dict) else None for im in images])
    entries = []
    for row, im in enumerate(images):
        im_id = im.get("id") if isinstance(im, dict) else None
        known = _hashable(im_id)
        entries.append(
            {
                "image": im,
                "annotations": anns.get(im_id, []) if known else [],
                "captions": caps.get(im_id, []) if known else [],
                "first": first[str(im_id)] if isinstance(im, dict) else row,
            }
        )
    return entries, inst["categories"]


def index_root() -> Path:
    """<LGT_HOME>/cache/coco-index; a remote home indexes in the user's cache (the index is read with seeks)."""
    home = lgt_home().removeprefix("file://")
    if "://" in home:
        return Path.home() / ".cache" / "lgt" / "coco-index"
    return Path(home) / "cache" / "coco-index"


def index_dir(src: CocoSource, root: Path) -> Path:
    """The source's index folder, named by the hash of its files' contents (and the index layout)."""
    inst = file_sha256(src.instances, "COCO instances file")
    try:
        caps = file_sha256(src.captions, "COCO captions file") if src.captions is not None else None
    except FileNotFoundError:
        coco_entries(src)  # fail as a parse does: the instances file's own errors come first
        raise
    key = hashlib.sha256(json.dumps([INDEX_VERSION, inst, caps]).encode()).hexdigest()[:32]
    return root / key


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_index(src: CocoSource, entries: list[dict[str, Any]], categories: list[Any], directory: Path) -> None:
    """rows.jsonl (one line per image), then meta.json (offsets, categories); a reader trusts an index only once
    meta.json is there. Two shards writing at once write the same bytes, so either rename may win."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = directory / "rows.jsonl"
    tmp = rows.with_name(f"{rows.name}.{uuid.uuid4().hex}.tmp")
    offsets = [0]
    with open(tmp, "wb") as f:
        for e in entries:  # ASCII JSON: no raw newline inside a line
            line = json.dumps(e, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
            f.write(line)
            offsets.append(offsets[-1] + len(line))
    os.replace(tmp, rows)
    meta = {
        "version": INDEX_VERSION,
        "instances": str(src.instances),
        "captions": str(src.captions) if src.captions is not None else None,
        "rows": len(entries),
        "categories": categories,
        "offsets": offsets,
    }
    _replace(directory / "meta.json", json.dumps(meta, ensure_ascii=True).encode())


def read_index_meta(directory: Path) -> dict[str, Any] | None:
    """The index's meta, or None when there is none (or it does not match its rows file: then it is rebuilt)."""
    try:
        meta = json.loads((directory / "meta.json").read_bytes())
        size = (directory / "rows.jsonl").stat().st_size
        ok = (
            meta["version"] == INDEX_VERSION
            and meta["offsets"][-1] == size
            and len(meta["offsets"]) == meta["rows"] + 1
        )
    except (OSError, ValueError, KeyError, TypeError, IndexError):  # none, or damaged: rebuilt
        return None
    return meta if ok else None


def read_index_rows(directory: Path, offsets: list[int], rows: range) -> Iterator[dict[str, Any]]:
    """The entries of `rows` only: one seek and one read of their lines."""
    if not rows:
        return
    with open(directory / "rows.jsonl", "rb") as f:
        f.seek(offsets[rows.start])
        data = f.read(offsets[rows.stop] - offsets[rows.start])
    for line in data.split(b"\n")[:-1]:  # ASCII JSON lines: a newline only ends a line
        yield json.loads(line)


def shard_entries(
    src: CocoSource, shard: int, root: Path | None, indexed: bool
) -> tuple[list[Any], Iterator[tuple[int, dict[str, Any]]]]:
    """(categories, (row, entry) for the shard's rows): from the index when there is one, else parsed (and indexed
    unless `indexed` is false)."""
    directory = index_dir(src, root or index_root()) if indexed else None
    meta = read_index_meta(directory) if directory else None
    if meta is None:
        entries, categories = coco_entries(src)
        rows = shard_range(len(entries), src.shards, shard)
        if directory:
            write_index(src, entries, categories, directory)
        return categories, ((row, entries[row]) for row in rows)
    rows = shard_range(meta["rows"], src.shards, shard)
    return meta["categories"], zip(rows, read_index_rows(directory, meta["offsets"], rows), strict=True)


def read_coco(src: CocoSource, shard: int, index_root: Path | None = None, indexed: bool = True) -> Iterator[RawRecord]:
    """The shard's records; `index_root` overrides where the index lives, `indexed=False` parses without one."""
    require_dir(src.images, "COCO image folder")
    require = src.require_caption if src.require_caption is not None else src.captions is not None
    categories, entries = shard_entries(src, shard, index_root, indexed)
    for row, entry in entries:
        im = entry["image"]
        im_d = im if isinstance(im, dict) else {}
        rec = RawRecord(
            source=src.name,
            split=src.split,
            shard=shard,
            row=row,
            file=str(src.instances),
            source_id=str(im_d.get("id")),
            image_path=im_d.get("file_name") if isinstance(im_d.get("file_name"), str) else None,
            require_caption=require,
            raw={"image": im, "annotations": len(entry["annotations"])},
        )
        try:
            if not im_d or im_d.get("id") is None or "file_name" not in im_d:
                raise Quarantine("record_malformed", "images[].id/file_name", "an image entry needs id and file_name")
            if not _hashable(im_d["id"]):
                raise Quarantine("record_malformed", "images[].id", "an image id must be a number or a string")
            if entry["first"] != row:
                raise Quarantine("duplicate_id", "id", f"image id {im_d['id']} first seen at row {entry['first']}")
            rec.image_bytes = read_image_file(safe_join(str(src.images), im_d["file_name"], "file_name"))
            if isinstance(im_d.get("width"), int) and isinstance(im_d.get("height"), int):
                rec.declared_size = (im_d["width"], im_d["height"])
            texts = entry["captions"]
            rec.caption = " ".join(t.strip() for t in texts if isinstance(t, str)) if texts else None
            if texts and not all(isinstance(t, str) for t in texts):
                raise Quarantine("record_malformed", "captions", "a caption is not text")
            for a, k in entry["annotations"]:
                cat = categories[k] if k is not None else None
                if cat is None:
                    raise Quarantine(
                        "record_malformed", "annotations[].category_id", f"unknown category {a.get('category_id')!r}"
                    )
                attrs = {"supercategory": str(cat["supercategory"])} if cat.get("supercategory") else {}
                rec.objects.append(
                    RawObject(
                        label=cat.get("name"),
                        bbox=a.get("bbox"),
                        bbox_format="xywh",
                        attributes=attrs,
                        object_id=str(a["id"]) if a.get("id") is not None else None,
                        # the segmentation's area: what the object covers, not its box
                        area=a.get("area"),
                        area_from="segmentation" if a.get("area") is not None else "box",
                        crowd=bool(a.get("iscrowd")),
                    )
                )
            rec.metadata = {"coco_image_id": im_d["id"], "file_name": im_d["file_name"]}
        except Quarantine as q:
            rec.error = q
        yield rec
