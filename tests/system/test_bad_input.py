"""A corrupted shard through the real CLI: every kind of bad row is quarantined with its reason, field and row, the
counts per reason reach the materialization metadata, and every other partition comes out whole.

One parquet source, three shards of 14 rows (contiguous ranges: rows 0-13, 14-27, 28-41). Shard 1 holds one row of
each corruption between good rows; shards 0 and 2 are all good. Everything expected is worked out here from what
was planted, never read back from the run.
"""

import io
import json
import random
import struct
import zlib
from collections import Counter
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

from tests.fixtures import sha32
from tests.system.cli import dagster, fresh_env

SHARDS, PER_SHARD = 3, 14
BAD_SHARD = 1
MAX_PIXELS = 1_000_000  # the recipe's limit; the over-limit image is 1200 x 1000
W, H = 64, 48
TOL = 0.02  # the default box_clip_tolerance
OBJ = pa.struct(
    [
        ("label", pa.string()),
        ("bbox", pa.list_(pa.float64())),
        ("attributes", pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))),
    ]
)
IMG = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
COLORS = ["red", "blue", "green", "yellow", "purple", "orange"]
RGB = {"red": (230, 25, 25), "blue": (25, 25, 230), "green": (25, 200, 25), "yellow": (240, 230, 20)}
RGB |= {"purple": (140, 30, 180), "orange": (250, 140, 20)}


def scene(row: int) -> tuple[bytes, list[dict]]:
    """A distinct small PNG (its background encodes the row) with three labelled, coloured boxes in it."""
    img = Image.new("RGB", (W, H), (row * 5 % 256, 255 - row * 3 % 256, 90))
    d = ImageDraw.Draw(img)
    objects = []
    for i, (label, box) in enumerate(
        [("circle", (2, 4, 18, 20)), ("square", (24, 10, 40, 30)), ("star", (46, 26, 62, 46))]
    ):
        color = COLORS[(row + i) % len(COLORS)]
        d.rectangle(box, fill=RGB[color])
        objects.append(
            {"label": label, "bbox": [float(v) for v in box], "attributes": [{"key": "color", "value": color}]}
        )
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue(), objects


def noisy(fmt: str, seed: int) -> bytes:
    """Incompressible pixels, so cutting the file in half cuts into the image data."""
    buf = io.BytesIO()
    Image.frombytes("RGB", (W, H), random.Random(seed).randbytes(W * H * 3)).save(buf, fmt)
    return buf.getvalue()


def png_bomb(side: int) -> bytes:
    """A valid 1-bit PNG of side x side black pixels: ~110 KB on disk for 30000 x 30000, 112 MB once inflated."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    line = bytes(1 + (side + 7) // 8)  # filter byte 0, then the packed row
    idat = b"".join(z.compress(line) for _ in range(side)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def build_source(data: Path) -> tuple[list[dict], dict[int, dict], dict[int, tuple]]:
    """Writes data/rows.parquet and data/images/; returns (rows as written, good rows by row index with what the
    images table must hold, planted bad rows by row index: (reason, field, image_path, detail or None))."""
    images = data / "images"
    images.mkdir(parents=True)
    (data / "outside.png").write_bytes(scene(99)[0])  # a real image the traversal would reach
    (images / "empty.png").write_bytes(b"")
    big = io.BytesIO()
    Image.new("1", (1200, 1000)).save(big, "PNG")
    bomb = png_bomb(30_000)
    assert len(bomb) < 200_000  # small on disk

    rows: list[dict] = []
    good: dict[int, dict] = {}
    bad: dict[int, tuple] = {}

    def add_good(row: int, as_file: bool, objects_override=None, expect_boxes=None) -> None:
        data_bytes, objects = scene(row)
        if objects_override is not None:
            objects = objects_override
        if as_file:  # half the good rows name a file under image_root, half carry their bytes
            (images / f"r{row}.png").write_bytes(data_bytes)
            img = {"bytes": None, "path": f"r{row}.png"}
        else:
            img = {"bytes": data_bytes, "path": None}
        caption = f"Row {row}: a circle, a square and a star."
        rows.append({"uid": f"id{row}", "img": img, "text": caption.encode(), "objs": objects})
        boxes = expect_boxes or [o["bbox"] for o in objects]
        good[row] = {"image_id": sha32(data_bytes), "caption": caption, "boxes": boxes, "path": img["path"]}

    def add_bad(row: int, img: dict, reason: str, field: str, detail=None, caption=None, objects=None) -> None:
        text = caption if caption is not None else f"Row {row}.".encode()
        rows.append({"uid": f"id{row}", "img": img, "text": text, "objs": objects or []})
        bad[row] = (reason, field, img["path"], detail)

    s0 = BAD_SHARD * PER_SHARD
    for row in range(SHARDS * PER_SHARD):
        k = row - s0
        good_img, good_objs = scene(row)
        if not 0 <= k < PER_SHARD:
            add_good(row, as_file=row % 2 == 1)
        elif k == 0:
            add_good(row, as_file=False)
        elif k == 1:  # garbage bytes
            add_bad(row, {"bytes": random.Random(1).randbytes(500), "path": None}, "image_unreadable", "image")
        elif k == 2:  # a PNG cut in half
            add_bad(row, {"bytes": noisy("PNG", 2)[:2000], "path": None}, "image_unreadable", "image")
        elif k == 3:  # a JPEG cut in half
            add_bad(row, {"bytes": noisy("JPEG", 3)[:1500], "path": None}, "image_unreadable", "image")
        elif k == 4:  # the second box has a negative width (x2 < x1)
            objs = [good_objs[0], {**good_objs[1], "bbox": [30.0, 10.0, 20.0, 20.0]}, good_objs[2]]
            add_bad(row, {"bytes": good_img, "path": None}, "box_negative", "objects[1].bbox", objects=objs)
        elif k == 5:  # the first box leaves the image by 16 px, far over 2 % of 64
            objs = [{**good_objs[0], "bbox": [10.0, 10.0, W + 16.0, 20.0]}, *good_objs[1:]]
            add_bad(row, {"bytes": good_img, "path": None}, "box_out_of_bounds", "objects[0].bbox", objects=objs)
        elif k == 6:  # a NaN coordinate in the third box
            objs = [*good_objs[:2], {**good_objs[2], "bbox": [1.0, float("nan"), 5.0, 5.0]}]
            add_bad(row, {"bytes": good_img, "path": None}, "box_invalid", "objects[2].bbox", objects=objs)
        elif k == 7:
            add_good(row, as_file=True)
        elif k == 8:  # climbs out of image_root to a file that is there
            add_bad(row, {"bytes": None, "path": "../outside.png"}, "path_escapes_root", "img")
        elif k == 9:  # Latin-1 bytes in a UTF-8 caption column
            add_bad(
                row,
                {"bytes": good_img, "path": None},
                "text_undecodable",
                "caption",
                "not UTF-8 at byte 3",
                caption=b"caf\xe9 au lait",
            )
        elif k == 10:  # a zero-byte file
            add_bad(row, {"bytes": None, "path": "empty.png"}, "image_unreadable", "image", "no image bytes")
        elif k == 11:  # header says 30000 x 30000: PIL's bomb guard, before any pixel is inflated
            add_bad(row, {"bytes": bomb, "path": None}, "image_too_large", "image")
        elif k == 12:  # a real 1200 x 1000 image, over the recipe's max_pixels
            detail = f"1200x1000 = 1200000 pixels > max_pixels {MAX_PIXELS}"
            add_bad(row, {"bytes": big.getvalue(), "path": None}, "image_too_large", "image", detail)
        else:  # good, one box out by under the tolerance: clipped into the image, not quarantined
            objs = [{**good_objs[0], "bbox": [-1.0, -0.5, 18.0, 20.0]}, *good_objs[1:]]
            boxes = [[0.0, 0.0, 18.0, 20.0], *[o["bbox"] for o in good_objs[1:]]]
            assert 1.0 < TOL * W and 0.5 < TOL * H
            add_good(row, as_file=False, objects_override=objs, expect_boxes=boxes)
    table = pa.table(
        {
            "uid": pa.array([r["uid"] for r in rows]),
            "img": pa.array([r["img"] for r in rows], type=IMG),
            "text": pa.array([r["text"] for r in rows], type=pa.binary()),
            "objs": pa.array([r["objs"] for r in rows], type=pa.list_(OBJ)),
        }
    )
    pq.write_table(table, data / "rows.parquet")
    return rows, good, bad


RECIPE = f"""
name: bad-input
sources:
  - name: corrupt
    kind: parquet
    path: data/rows.parquet
    image_root: data/images
    shards: {SHARDS}
    columns: {{image: img, caption: text, id: uid, objects: objs}}
models:
  vlm: {{backend: transformers, model: base_model}}
  reasoner: {{backend: transformers, model: base_model}}
  verifier: {{backend: transformers, model: base_model}}
  small_solver: {{backend: transformers, model: base_model}}
stages:
  images: {{max_pixels: {MAX_PIXELS}}}
  questions_grounded:
    attributes:
      color: {{noun: colour, values: {COLORS}}}
    llm: {{enabled: false}}
  questions_composed: {{rewrite: {{enabled: false}}}}
"""
SELECT = "images,images_quarantine,questions_grounded,questions_composed,questions"


def test_a_corrupted_shard_is_quarantined_while_every_partition_completes(tmp_path, monkeypatch):
    env = fresh_env(tmp_path, RECIPE, "bad")
    base = Path(env["LGT_RECIPE"]).parent
    rows, good, bad = build_source(base / "data")
    assert len(rows) == SHARDS * PER_SHARD and len(bad) == 11 and len(good) == 31
    keys = [f"corrupt/{s}" for s in range(SHARDS)]

    every = f"{keys[0]}...{keys[-1]}"  # one run over every partition, as a single-run backfill
    out = dagster(env, "asset", "materialize", "-m", "definitions", "--select", SELECT, "--partition-range", every)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-4000:]
    for check, asset in (("images_schema", "images"), ("quarantine_schema", "images_quarantine")):
        assert f"Asset check '{check}' on '{asset}' passed" in log, log[-4000:]
    for asset in ("questions_grounded", "questions_composed", "questions"):
        assert f"Asset check '{asset}_schema' on '{asset}' passed" in log, log[-4000:]

    storage = base / "lgt" / "storage"
    data_file = str(base / "data" / "rows.parquet")
    planted = Counter(reason for reason, *_ in bad.values())
    for shard in range(SHARDS):
        span = range(shard * PER_SHARD, (shard + 1) * PER_SHARD)  # the contiguous range this shard reads
        images = pq.read_table(storage / "images" / "corrupt" / f"{shard}.parquet").to_pylist()
        quarantine = pq.read_table(storage / "images_quarantine" / "corrupt" / f"{shard}.parquet").to_pylist()
        # every good row of the shard is an image, in row order, with its caption and (clipped) boxes
        want = [good[r] for r in span if r in good]
        assert [i["image_id"] for i in images] == [g["image_id"] for g in want]
        assert [i["caption"] for i in images] == [g["caption"] for g in want]
        assert [[o["bbox_xyxy"] for o in i["objects"]] for i in images] == [g["boxes"] for g in want]
        assert [json.loads(i["metadata"])["row"] for i in images] == [r for r in span if r in good]
        assert [(i["width"], i["height"]) for i in images] == [(W, H)] * len(want)
        # every planted row, and nothing else, is quarantined with its reason, field, row, id and file
        got = [(q["row"], q["source_id"], q["reason"], q["field"], q["image_path"], q["file"]) for q in quarantine]
        assert got == [(r, f"id{r}", *bad[r][:3], data_file) for r in span if r in bad]
        assert len(images) + len(quarantine) == PER_SHARD
        for q in quarantine:
            assert q["shard"] == shard and q["source"] == "corrupt" and q["split"] == "train"
            if bad[q["row"]][3] is not None:
                assert q["detail"] == bad[q["row"]][3], q
        if shard != BAD_SHARD:
            assert quarantine == [] and len(images) == PER_SHARD

    bad_q = {q["row"]: q for q in pq.read_table(storage / "images_quarantine" / "corrupt" / "1.parquet").to_pylist()}
    # the details name what broke: PIL's bomb guard (at twice its MAX_IMAGE_PIXELS), the truncation, the path
    bomb_row, limit = PER_SHARD + 11, 2 * Image.MAX_IMAGE_PIXELS
    assert bad_q[bomb_row]["detail"] == (
        f"{data_file} row {bomb_row}: Image size (900000000 pixels) exceeds limit of {limit} pixels, "
        "could be decompression bomb DOS attack."
    )
    garbage = PER_SHARD + 1
    assert bad_q[garbage]["detail"] == f"{data_file} row {garbage}: UnidentifiedImageError: cannot identify image file"
    for cut in (PER_SHARD + 2, PER_SHARD + 3):  # the PNG and the JPEG cut in half fail when decoded, not opened
        assert bad_q[cut]["detail"].startswith(f"{data_file} row {cut}: OSError: image file is truncated")
    assert "'../outside.png' is outside" in bad_q[PER_SHARD + 8]["detail"]

    # the questions are made from the good images only, in every partition
    for shard in range(SHARDS):
        image_ids = set(
            pq.read_table(storage / "images" / "corrupt" / f"{shard}.parquet").column("image_id").to_pylist()
        )
        for asset in ("questions_grounded", "questions_composed", "questions"):
            qs = pq.read_table(storage / asset / "corrupt" / f"{shard}.parquet")
            assert set(qs.column("image_id").to_pylist()) <= image_ids
            if asset == "questions_grounded":
                assert qs.num_rows > 0  # every partition's good images do make questions

    # the run recorded every partition of every asset, and the counts per reason in the images metadata
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])  # the run's own instance, read here
    instance = dg.DagsterInstance.get()
    try:
        for asset in SELECT.split(","):
            assert sorted(instance.get_materialized_partitions(dg.AssetKey(asset))) == keys, asset

        def latest(asset: str, key: str) -> dict:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1
            ).records
            return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}

        md = {k: latest("images", k) for k in keys}
        qmd = {k: latest("images_quarantine", k) for k in keys}
    finally:
        instance.dispose()
    # one ranged run, and each partition's event counts that partition only: the bad shard is the one with reasons
    for k in keys:
        assert md[k]["range"] == f"{keys[0]}...{keys[-1]} ({SHARDS} partitions in one step)"
    bad_key = keys[BAD_SHARD]
    assert md[bad_key]["quarantine_by_reason"] == dict(planted) == qmd[bad_key]["by_reason"]
    assert all(md[k]["quarantine_by_reason"] == {} == qmd[k]["by_reason"] for k in keys if k != bad_key)
    assert planted == {
        "image_unreadable": 4,
        "box_negative": 1,
        "box_out_of_bounds": 1,
        "box_invalid": 1,
        "path_escapes_root": 1,
        "text_undecodable": 1,
        "image_too_large": 2,
    }
    assert [md[k]["quarantined"] for k in keys] == [0 if k != bad_key else len(bad) for k in keys] and len(bad) == 11
    assert [md[k]["input_rows"] for k in keys] == [PER_SHARD] * SHARDS
    assert sum(md[k]["dagster/row_count"] for k in keys) == len(good) == 31
