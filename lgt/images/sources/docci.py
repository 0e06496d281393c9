"""DOCCI format: JSON lines with example_id, image_file, description.

DOCCI has no boxes; an optional boxes file (JSON lines with the same
example_id and `objects`: [{label, bbox_xyxy, attributes?}]) adds them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from lgt.images.sources.base import SourceSettings, first_occurrences, require_dir, shard_range
from lgt.images.validate import Quarantine, RawObject, RawRecord, read_image_file, safe_join
from lgt.settings import resolve_path


class DocciSource(SourceSettings):
    kind: Literal["docci"]
    descriptions: Path = Field(description="JSON lines with example_id, image_file, description")
    images: Path = Field(description="folder holding the image files")
    boxes: Path | None = Field(None, description="optional JSON lines with example_id and objects")
    require_caption: bool = True

    _paths = field_validator("descriptions", "images", "boxes")(resolve_path)


def _lines(path: Path) -> list[bytes]:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise FileNotFoundError(f"{path}: cannot read: {e.strerror}") from None
    return [ln for ln in data.splitlines() if ln.strip()]


def _parse(line: bytes) -> dict[str, Any]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Quarantine("text_undecodable", "<line>", f"not UTF-8 at byte {e.start}") from None
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise Quarantine("record_malformed", "<line>", f"not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise Quarantine("record_malformed", "<line>", "a line must be a JSON object")
    return obj


def _boxes(path: Path) -> dict[str, list]:
    out: dict[str, list] = {}
    for i, line in enumerate(_lines(path)):
        try:
            obj = _parse(line)
        except Quarantine as q:
            raise ValueError(f"{path}: line {i + 1}: {q}") from None
        if "example_id" not in obj or not isinstance(obj.get("objects"), list):
            raise ValueError(f"{path}: line {i + 1}: needs example_id and a list 'objects'")
        out[str(obj["example_id"])] = obj["objects"]
    return out


def read_docci(src: DocciSource, shard: int) -> Iterator[RawRecord]:
    require_dir(src.images, "DOCCI image folder")
    lines = _lines(src.descriptions)
    boxes = _boxes(src.boxes) if src.boxes else {}
    parsed: list[dict | Quarantine] = []
    for line in lines:
        try:
            parsed.append(_parse(line))
        except Quarantine as q:
            parsed.append(q)
    # a record without an id is its own object(), so it duplicates nothing
    first = first_occurrences(
        [str(p.get("example_id")) if isinstance(p, dict) and "example_id" in p else object() for p in parsed]
    )
    for row in shard_range(len(parsed), src.shards, shard):
        p = parsed[row]
        d = p if isinstance(p, dict) else {}
        rec = RawRecord(
            source=src.name,
            split=str(d.get("split") or src.split),
            shard=shard,
            row=row,
            file=f"{src.descriptions}:{row + 1}",
            source_id=str(d.get("example_id")),
            image_path=d.get("image_file") if isinstance(d.get("image_file"), str) else None,
            caption=d.get("description"),
            require_caption=src.require_caption,
            raw=d if d else {"line": lines[row][:2000].decode("utf-8", "replace")},
        )
        try:
            if isinstance(p, Quarantine):
                raise p
            for key in ("example_id", "image_file"):
                if key not in d:
                    raise Quarantine("record_malformed", key, f"missing {key!r}")
            eid = str(d["example_id"])
            if first[eid] != row:
                raise Quarantine("duplicate_id", "example_id", f"{eid!r} first seen on line {first[eid] + 1}")
            rec.image_bytes = read_image_file(safe_join(str(src.images), d["image_file"], "image_file"))
            for i, o in enumerate(boxes.get(eid, [])):
                if not isinstance(o, dict):
                    raise Quarantine("record_malformed", f"objects[{i}]", "an object must be a JSON object")
                if not isinstance(o.get("attributes") or {}, dict):  # .items() below would stop the whole shard
                    raise Quarantine("record_malformed", f"objects[{i}].attributes", "attributes must be a JSON object")
                rec.objects.append(
                    RawObject(
                        label=o.get("label"),
                        bbox=o.get("bbox_xyxy"),
                        attributes={str(k): str(v) for k, v in (o.get("attributes") or {}).items()},
                        object_id=o.get("object_id"),
                    )
                )
            rec.metadata = {k: v for k, v in d.items() if k not in ("description",)}
        except Quarantine as q:
            rec.error = q
        yield rec
