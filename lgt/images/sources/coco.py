"""COCO format: instances JSON (+ optional captions JSON) and an image folder."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from lgt.config import resolve_path
from lgt.images.sources.base import SourceConfig, first_occurrences, require_dir, shard_range
from lgt.images.validate import Quarantine, RawObject, RawRecord, read_image_file, safe_join


class CocoSource(SourceConfig):
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


def read_coco(src: CocoSource, shard: int) -> Iterator[RawRecord]:
    require_dir(src.images, "COCO image folder")
    inst = load_json(src.instances, "COCO instances file")
    if not isinstance(inst, dict):  # a list here would otherwise fail as an AttributeError naming no file
        raise ValueError(f"{src.instances}: COCO instances file is not a JSON object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(inst.get(key), list):
            raise ValueError(f"{src.instances}: COCO instances file has no list {key!r}")
    cats = {c.get("id"): c for c in inst["categories"] if isinstance(c, dict)}
    anns: dict[Any, list[dict]] = defaultdict(list)
    for a in inst["annotations"]:
        if isinstance(a, dict):
            anns[a.get("image_id")].append(a)
    caps: dict[Any, list[str]] = defaultdict(list)
    if src.captions is not None:
        cap_data = load_json(src.captions, "COCO captions file")
        if not isinstance(cap_data, dict) or not isinstance(cap_data.get("annotations", []), list):
            raise ValueError(f"{src.captions}: COCO captions file has no list 'annotations'")
        for c in cap_data.get("annotations", []):
            if isinstance(c, dict) and c.get("caption") is not None:
                caps[c.get("image_id")].append(c["caption"])
    require = src.require_caption if src.require_caption is not None else src.captions is not None

    images = inst["images"]
    first = first_occurrences([str(im.get("id")) if isinstance(im, dict) else None for im in images])
    for row in shard_range(len(images), src.shards, shard):
        im = images[row]
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
            raw={"image": im, "annotations": len(anns.get(im_d.get("id"), []))},
        )
        try:
            if not im_d or im_d.get("id") is None or "file_name" not in im_d:
                raise Quarantine("record_malformed", "images[].id/file_name", "an image entry needs id and file_name")
            if first[str(im_d["id"])] != row:
                seen = first[str(im_d["id"])]
                raise Quarantine("duplicate_id", "id", f"image id {im_d['id']} first seen at row {seen}")
            rec.image_bytes = read_image_file(safe_join(str(src.images), im_d["file_name"], "file_name"))
            if isinstance(im_d.get("width"), int) and isinstance(im_d.get("height"), int):
                rec.declared_size = (im_d["width"], im_d["height"])
            texts = caps.get(im_d["id"], [])
            rec.caption = " ".join(t.strip() for t in texts if isinstance(t, str)) if texts else None
            if texts and not all(isinstance(t, str) for t in texts):
                raise Quarantine("record_malformed", "captions", "a caption is not text")
            for a in anns.get(im_d["id"], []):
                cat = cats.get(a.get("category_id"))
                if cat is None:
                    raise Quarantine(
                        "record_malformed", "annotations[].category_id", f"unknown category {a.get('category_id')!r}"
                    )
                attrs = {"iscrowd": "true" if a.get("iscrowd") else "false"}
                if cat.get("supercategory"):
                    attrs["supercategory"] = str(cat["supercategory"])
                if a.get("area") is not None:
                    attrs["segmentation_area"] = str(a["area"])
                rec.objects.append(
                    RawObject(
                        label=cat.get("name"),
                        bbox=a.get("bbox"),
                        bbox_format="xywh",
                        attributes=attrs,
                        object_id=str(a["id"]) if a.get("id") is not None else None,
                    )
                )
            rec.metadata = {"coco_image_id": im_d["id"], "file_name": im_d["file_name"]}
        except Quarantine as q:
            rec.error = q
        yield rec
