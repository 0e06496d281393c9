"""Validation and quarantine: realistic bad input through the real loaders and `build_shard`.

Each case puts one bad row between two good ones and checks the quarantine row (reason, field, file, row), that
the good rows come out exactly as they would alone, that input rows = images + quarantine, and that both tables
pass their pandera models. `test_every_reason_is_reachable` runs all of them at once per loader.
"""

import io
import json
import os
import random
import struct
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from lgt.images.sources import CocoSource, DocciSource, ParquetColumns, ParquetSource, read_shard
from lgt.images.validate import Limits, build_shard
from schemas.images import QUARANTINE_REASONS, ImagesQuarantineSchema, ImagesSchema
from tests.fixtures import BLUE, GREEN, RED, png, sha32, write


@pytest.fixture(autouse=True)
def _lgt_home(tmp_path, monkeypatch):
    """COCO reads write their index under $LGT_HOME/cache: keep it in the test's own folder."""
    monkeypatch.setenv("LGT_HOME", str(tmp_path / "lgt-home"))


def noisy_png(size=(64, 48), seed=0) -> bytes:
    """Incompressible pixels, so cutting the file in half cuts into the image data."""
    buf = io.BytesIO()
    Image.frombytes("RGB", size, random.Random(seed).randbytes(size[0] * size[1] * 3)).save(buf, "PNG")
    return buf.getvalue()


def png_header_only(w: int, h: int) -> bytes:
    """A well-formed PNG that claims w x h pixels and carries no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def placeable_wmf(x0: int, y0: int, x1: int, y1: int, inch: int = 72) -> bytes:
    """A Windows metafile header (placeable, 72 units per inch), the one format PIL opens at zero width."""
    placeable = struct.pack("<IHhhhhHIH", 0x9AC6CDD7, 0, x0, y0, x1, y1, inch, 0, 0)
    standard = struct.pack("<HHHIHIH", 1, 9, 0x300, 0, 0, 0, 0)  # type, header words, version, ...
    return placeable + standard + b"\x00" * 4


def run(src, limits=Limits()):
    result = build_shard(read_shard(src, 0), limits)
    assert result.input_rows == result.images.num_rows + result.quarantine.num_rows
    ImagesSchema.validate(result.images.to_pandas())
    ImagesQuarantineSchema.validate(result.quarantine.to_pandas())
    return result


def only_quarantined(result, n_images=2):
    assert result.input_rows == n_images + 1
    assert result.images.num_rows == n_images and result.quarantine.num_rows == 1
    return result.quarantine.to_pylist()[0]


# --- DOCCI: good0, <bad>, good1 ----------------------------------------------

G0, G1 = png(RED), png(BLUE)
GOOD0 = {"example_id": "good0", "image_file": "good0.png", "description": "A red image."}
GOOD1 = {"example_id": "good1", "image_file": "good1.png", "description": "A blue image."}


def docci(tmp_path, bad_line, files=None, bad_boxes=None, limits=Limits()):
    """Run good0, bad_line (a dict or raw bytes), good1; check the good rows; return the quarantine row."""
    images = tmp_path / "images"
    write(images / "good0.png", G0)
    write(images / "good1.png", G1)
    for name, data in (files or {}).items():
        write(images / name, data)
    bad = bad_line if isinstance(bad_line, bytes) else json.dumps(bad_line).encode()
    desc = tmp_path / "descriptions.jsonl"
    desc.write_bytes(b"\n".join([json.dumps(GOOD0).encode(), bad, json.dumps(GOOD1).encode()]) + b"\n")
    boxes = tmp_path / "boxes.jsonl"
    lines = [{"example_id": "good0", "objects": [{"label": "square", "bbox_xyxy": [4, 4, 20, 20]}]}]
    if bad_boxes is not None:
        lines.append({"example_id": "bad", "objects": bad_boxes})
    boxes.write_text("".join(json.dumps(x) + "\n" for x in lines))
    src = DocciSource(kind="docci", name="d", descriptions=desc, images=images, boxes=boxes)
    result = run(src, limits)
    q = only_quarantined(result)
    # the good rows are exactly what they are without the bad one: nothing shifted, nothing lost
    r0, r1 = result.images.to_pylist()
    assert (r0["image_id"], r1["image_id"]) == (sha32(G0), sha32(G1))
    assert (r0["caption"], r1["caption"]) == ("A red image.", "A blue image.")
    assert r0["objects"] == [
        {
            "object_id": "0",
            "label": "square",
            "bbox_xyxy": [4.0, 4.0, 20.0, 20.0],
            "attributes": [],
            "area": 256.0,
            "area_from": "box",
            "crowd": False,
        }
    ]
    assert r1["objects"] == [] and (r1["width"], r1["height"]) == (64, 48)
    assert [json.loads(r["metadata"])["row"] for r in (r0, r1)] == [0, 2]
    # the quarantine row names the file (with its line) and the row
    assert (q["source"], q["shard"], q["row"], q["file"]) == ("d", 0, 1, f"{desc}:2")
    return q


def bad(**kv):
    return {"example_id": "bad", "image_file": "bad.png", "description": "A bad one.", **kv}


def test_docci_invalid_utf8_line(tmp_path):
    line = b'{"example_id": "bad", "image_file": "bad.png", "description": "caf\xe9"}'  # latin-1, not UTF-8
    q = docci(tmp_path, line, files={"bad.png": png(GREEN)})
    assert (q["reason"], q["field"], q["source_id"]) == ("text_undecodable", "<line>", "None")
    assert q["detail"] == "not UTF-8 at byte 66"
    assert json.loads(q["record"])["line"].endswith('"caf\ufffd"}')  # the line is kept, made readable


def test_docci_lone_surrogate_in_description(tmp_path):
    line = b'{"example_id": "bad", "image_file": "bad.png", "description": "caf\\udce9"}'
    q = docci(tmp_path, line, files={"bad.png": png(GREEN)})
    assert (q["reason"], q["field"], q["source_id"]) == ("text_undecodable", "caption", "bad")


def test_docci_lone_surrogates_in_id_path_and_split_are_quarantined_not_crashing(tmp_path):
    # JSON escapes are valid UTF-8 text but decode to strings Arrow cannot store
    line = b'{"example_id": "bad\\udc80", "image_file": "bad\\udc80.png", "description": "x"}'
    q = docci(tmp_path, line)
    assert (q["reason"], q["field"]) == ("text_undecodable", "image_file")
    assert (q["source_id"], q["image_path"]) == ("bad\\udc80", "bad\\udc80.png")  # stored escaped

    line = b'{"example_id": "bad", "image_file": "bad.png", "description": "x", "split": "t\\udc80"}'
    q = docci(tmp_path, line, files={"bad.png": png(GREEN)})
    assert (q["reason"], q["field"], q["split"]) == ("text_undecodable", "split", "t\\udc80")


@pytest.mark.parametrize("description", [None, "", "   \n"])
def test_docci_caption_missing(tmp_path, description):
    line = bad() if description is None else bad(description=description)
    if description is None:
        del line["description"]
    q = docci(tmp_path, line, files={"bad.png": png(GREEN)})
    assert (q["reason"], q["field"], q["source_id"]) == ("caption_missing", "caption", "bad")
    assert q["image_path"] == "bad.png"


def test_docci_duplicate_id_keeps_the_first(tmp_path):
    q = docci(tmp_path, bad(example_id="good0"), files={"bad.png": png(GREEN)})
    assert (q["reason"], q["field"], q["source_id"]) == ("duplicate_id", "example_id", "good0")
    assert q["detail"] == "'good0' first seen on line 1"
    assert json.loads(q["record"]) == bad(example_id="good0")  # the input record, verbatim


def test_docci_duplicate_image_keeps_the_first(tmp_path):
    q = docci(tmp_path, bad(image_file="copy_of_good0.png"), files={"copy_of_good0.png": G0})
    assert (q["reason"], q["field"], q["image_path"]) == ("duplicate_image", "image", "copy_of_good0.png")
    assert sha32(G0) in q["detail"]


@pytest.mark.parametrize("kind", ["dotdot", "absolute_inside", "symlink_out"])
def test_docci_path_escapes_root(tmp_path, kind):
    outside = tmp_path / "outside.png"
    write(outside, png(GREEN))  # a real, readable image: only the path is wrong
    if kind == "dotdot":
        path = "../outside.png"
    elif kind == "absolute_inside":
        path = str(tmp_path / "images" / "good1.png")  # absolute paths are refused even inside the root
    else:
        path = "link.png"
        (tmp_path / "images").mkdir()
        os.symlink(outside, tmp_path / "images" / "link.png")
    q = docci(tmp_path, bad(image_file=path))
    assert (q["reason"], q["field"], q["image_path"]) == ("path_escapes_root", "image_file", path)


@pytest.mark.parametrize(
    "line, field, detail",
    [
        (b"this is not json", "<line>", "not JSON"),
        (b'["a", "list"]', "<line>", "a line must be a JSON object"),
        (json.dumps({"example_id": "bad", "description": "no image"}).encode(), "image_file", "missing 'image_file'"),
        (json.dumps({"image_file": "bad.png", "description": "no id"}).encode(), "example_id", "missing 'example_id'"),
        (json.dumps(bad(image_file=17)).encode(), "image_file", "expected text, got int"),
        (json.dumps(bad(image_file="")).encode(), "image_file", "no image path"),
        (json.dumps(bad(image_file="bad.png\u0000.txt")).encode(), "image_file", "a NUL character in the image path"),
    ],
    ids=["not_json", "json_list", "no_image_file", "no_example_id", "path_not_text", "empty_path", "nul_in_path"],
)
def test_docci_record_malformed(tmp_path, line, field, detail):
    q = docci(tmp_path, line, files={"bad.png": png(GREEN)})
    assert (q["reason"], q["field"]) == ("record_malformed", field)
    assert detail in q["detail"]


@pytest.mark.parametrize(
    "objects, field",
    [
        ([{"label": "", "bbox_xyxy": [1, 1, 9, 9]}], "objects[0].label"),
        ([{"bbox_xyxy": [1, 1, 9, 9]}], "objects[0].label"),
        ([{"label": "ok", "bbox_xyxy": [1, 1, 9, 9]}, "a string"], "objects[1]"),
        ([{"label": "ok", "bbox_xyxy": [1, 1, 9, 9], "attributes": ["not", "a", "map"]}], "objects[0].attributes"),
        (
            [
                {"label": "a", "bbox_xyxy": [1, 1, 9, 9], "object_id": "x"},
                {"label": "b", "bbox_xyxy": [2, 2, 9, 9], "object_id": "x"},
            ],
            "objects",  # object ids repeat
        ),
    ],
)
def test_docci_malformed_objects(tmp_path, objects, field):
    q = docci(tmp_path, bad(), files={"bad.png": png(GREEN)}, bad_boxes=objects)
    assert (q["reason"], q["field"], q["source_id"]) == ("record_malformed", field, "bad")


@pytest.mark.parametrize(
    "data, detail",
    [
        (noisy_png()[:4000], "OSError: image file is truncated"),
        (b"", "no image bytes"),
        (b"hello, this is a text file\n", "UnidentifiedImageError"),
        (png_header_only(100, 100), "OSError"),  # a header and no pixels
        (placeable_wmf(0, 0, 64, 48), "cannot find loader for this WMF file"),  # identified, not decodable here
        (None, "cannot read"),  # the file does not exist
    ],
    ids=["truncated", "empty", "text", "no_pixels", "wmf", "missing"],
)
def test_docci_image_unreadable(tmp_path, data, detail):
    q = docci(tmp_path, bad(), files={} if data is None else {"bad.png": data})
    assert (q["reason"], q["field"], q["image_path"]) == ("image_unreadable", "image", "bad.png")
    assert detail in q["detail"]


def test_docci_image_zero_size(tmp_path):
    """PIL refuses zero-size PNG/GIF/BMP/... at open (image_unreadable: see the next test), but it opens a
    placeable WMF with an empty bounding box, a real file, as width 0 (its stub plugins allow a zero side)."""
    q = docci(tmp_path, bad(image_file="empty.wmf"), files={"empty.wmf": placeable_wmf(10, 0, 10, 48)})
    assert (q["reason"], q["field"], q["detail"]) == ("image_zero_size", "image", "0x48")


def test_zero_size_raster_files_are_unreadable(tmp_path):
    """PIL itself rejects raster images with a zero side ("cannot identify"), so they are image_unreadable."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 0, 48, 8, 2, 0, 0, 0)
    zero_png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
    zero_gif = b"GIF89a" + struct.pack("<HH", 0, 48) + b"\x00\x00\x00;"
    dib = struct.pack("<IiiHHIIiiII", 40, 0, 48, 1, 24, 0, 0, 0, 0, 0, 0)  # width 0
    zero_bmp = b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + dib
    for name, data in (("z.png", zero_png), ("z.gif", zero_gif), ("z.bmp", zero_bmp)):
        q = docci(tmp_path, bad(image_file=name), files={name: data})
        assert (q["reason"], q["field"]) == ("image_unreadable", "image"), name
        assert "UnidentifiedImageError" in q["detail"]


def test_docci_image_too_large_by_max_pixels(tmp_path):
    # the good images are 64 x 48 = 3072 pixels, exactly the limit: kept; 65 x 48 is one column over
    q = docci(tmp_path, bad(), files={"bad.png": png(GREEN, (65, 48))}, limits=Limits(max_pixels=3072))
    assert (q["reason"], q["field"]) == ("image_too_large", "image")
    assert q["detail"] == "65x48 = 3120 pixels > max_pixels 3072"


@pytest.mark.parametrize("side", [10_000, 20_000])  # over PIL's bomb limit, and over twice it
def test_docci_decompression_bomb_header(tmp_path, side):
    q = docci(tmp_path, bad(), files={"bad.png": png_header_only(side, side)})
    assert (q["reason"], q["field"]) == ("image_too_large", "image")
    assert f"{side * side} pixels" in q["detail"]


# --- COCO: image 1 (good), <bad image 2>, image 3 (good) ---------------------

C1, C3 = png(RED), png(BLUE, (32, 24))


def coco(tmp_path, bad_image=None, bad_anns=(), files=None, captions=None, limits=Limits()):
    images = tmp_path / "images"
    write(images / "one.png", C1)
    write(images / "three.png", C3)
    files = {"two.png": png(GREEN)} if files is None else files
    for name, data in files.items():
        write(images / name, data)
    image2 = {"id": 2, "file_name": "two.png", "width": 64, "height": 48} if bad_image is None else bad_image
    inst = {
        "images": [
            {"id": 1, "file_name": "one.png", "width": 64, "height": 48},
            image2,
            {"id": 3, "file_name": "three.png", "width": 32, "height": 24},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 5, 20, 15], "iscrowd": 0},
            *({"id": 100 + i, "image_id": 2, "category_id": 1, **a} for i, a in enumerate(bad_anns)),
            {"id": 3, "image_id": 3, "category_id": 2, "bbox": [0, 0, 32, 24], "iscrowd": 1},
        ],
        "categories": [{"id": 1, "name": "dog", "supercategory": "animal"}, {"id": 2, "name": "crowd"}],
    }
    (tmp_path / "instances.json").write_text(json.dumps(inst))  # NaN boxes are written as JSON's NaN
    caps = [{"image_id": 1, "caption": "One."}, {"image_id": 3, "caption": "Three."}]
    caps += [{"image_id": 2, "caption": "Two."}] if captions is None else captions
    (tmp_path / "captions.json").write_text(json.dumps({"annotations": caps}))
    src = CocoSource(
        kind="coco",
        name="c",
        images=images,
        instances=tmp_path / "instances.json",
        captions=tmp_path / "captions.json",
    )
    result = run(src, limits)
    return result, src


def coco_bad(tmp_path, **kw):
    result, src = coco(tmp_path, **kw)
    q = only_quarantined(result)
    r1, r3 = result.images.to_pylist()
    assert (r1["image_id"], r3["image_id"]) == (sha32(C1), sha32(C3))
    assert (r1["caption"], r3["caption"]) == ("One.", "Three.")
    assert (r1["width"], r1["height"], r3["width"], r3["height"]) == (64, 48, 32, 24)
    assert r1["objects"] == [
        {
            "object_id": "1",
            "label": "dog",
            "bbox_xyxy": [10.0, 5.0, 30.0, 20.0],
            "attributes": [{"key": "supercategory", "value": "animal"}],
            "area": 300.0,
            "area_from": "box",
            "crowd": False,
        }
    ]
    assert r3["objects"] == [
        {
            "object_id": "3",
            "label": "crowd",
            "bbox_xyxy": [0.0, 0.0, 32.0, 24.0],
            "attributes": [],
            "area": 768.0,
            "area_from": "box",
            "crowd": True,
        }
    ]
    assert (q["source"], q["row"], q["file"]) == ("c", 1, str(src.instances))
    return q


def test_coco_image_size_mismatch(tmp_path):
    q = coco_bad(tmp_path, bad_image={"id": 2, "file_name": "two.png", "width": 100, "height": 48})
    assert (q["reason"], q["field"], q["source_id"]) == ("image_size_mismatch", "image", "2")
    assert q["detail"] == "annotation says 100x48, file is 64x48"


@pytest.mark.parametrize(
    "bbox, reason",
    [
        ([float("nan"), 5, 20, 15], "box_invalid"),
        ([10, 5, float("inf"), 15], "box_invalid"),
        ([10, 5, 20], "box_invalid"),
        (None, "box_invalid"),
        (["ten", 5, 20, 15], "box_invalid"),
        ("1020", "box_invalid"),  # a string of four digits is not four numbers
        ([10, 5, -3, 4], "box_negative"),  # xywh with a negative width
        ([10, 5, 4, -0.5], "box_negative"),
        ([10, 5, 100, 10], "box_out_of_bounds"),  # x2 = 110 > 64 + 2% of 64
        ([-2, 5, 10, 10], "box_out_of_bounds"),  # x1 = -2 < -1.28
        ([0, 0, 65.4, 10], "box_out_of_bounds"),  # x2 = 65.4 > 65.28
        ([10, 5, 0, 10], "box_degenerate"),  # zero width
        ([10, 5, 0.5, 10], "box_degenerate"),  # half a pixel wide
        ([64.2, 0, 0.8, 10], "box_degenerate"),  # within tolerance, but clipped to [64, 0, 64, 10]
    ],
)
def test_coco_bad_boxes(tmp_path, bbox, reason):
    q = coco_bad(tmp_path, bad_anns=[{"bbox": bbox}])
    assert (q["reason"], q["field"], q["source_id"], q["image_path"]) == (reason, "objects[0].bbox", "2", "two.png")


def test_coco_one_bad_box_quarantines_the_whole_image(tmp_path):
    q = coco_bad(tmp_path, bad_anns=[{"bbox": [1, 1, 10, 10]}, {"bbox": [1, 1, 10, 10]}, {"bbox": [50, 1, 30, 10]}])
    assert (q["reason"], q["field"]) == ("box_out_of_bounds", "objects[2].bbox")
    assert json.loads(q["record"])["annotations"] == 3


def test_coco_boxes_slightly_outside_are_clipped_and_kept(tmp_path):
    result, _ = coco(
        tmp_path,
        bad_anns=[
            {"bbox": [-1, -0.5, 65.5, 49]},  # xyxy [-1, -0.5, 64.5, 48.5]: within 1.28 x 0.96 of the image
            {"bbox": [60, 40, 5, 8.5]},  # xyxy [60, 40, 65, 48.5]
            {"bbox": [0, 0, 65.2, 10]},  # x2 = 65.2, just inside 64 + 1.28
        ],
    )
    assert result.quarantine.num_rows == 0 and result.images.num_rows == 3
    two = result.images.to_pylist()[1]
    assert [(o["bbox_xyxy"], o["area"]) for o in two["objects"]] == [
        ([0.0, 0.0, 64.0, 48.0], 3072.0),
        ([60.0, 40.0, 64.0, 48.0], 32.0),
        ([0.0, 0.0, 64.0, 10.0], 640.0),
    ]


def test_coco_tolerance_comes_from_limits(tmp_path):
    # with no tolerance the same box that was clipped above is out of bounds
    result, _ = coco(tmp_path, bad_anns=[{"bbox": [60, 40, 5, 8.5]}], limits=Limits(box_clip_tolerance=0.0))
    assert result.quarantine.column("reason").to_pylist() == ["box_out_of_bounds"]


def test_coco_caption_missing_when_captions_are_given(tmp_path):
    q = coco_bad(tmp_path, captions=[])
    assert (q["reason"], q["field"], q["source_id"]) == ("caption_missing", "caption", "2")


def test_coco_duplicate_id_keeps_the_first(tmp_path):
    q = coco_bad(tmp_path, bad_image={"id": 1, "file_name": "two.png"})
    assert (q["reason"], q["field"], q["source_id"]) == ("duplicate_id", "id", "1")
    assert q["detail"] == "image id 1 first seen at row 0"


def test_coco_duplicate_image(tmp_path):
    q = coco_bad(tmp_path, files={"two.png": C1})
    assert (q["reason"], q["field"]) == ("duplicate_image", "image")


@pytest.mark.parametrize(
    "bad_image, bad_anns, captions, field",
    [
        ({"id": 2, "width": 64, "height": 48}, [], None, "images[].id/file_name"),
        ({"file_name": "two.png"}, [], None, "images[].id/file_name"),
        ("not an object", [], None, "images[].id/file_name"),
        (None, [{"bbox": [1, 1, 5, 5], "category_id": 99}], None, "annotations[].category_id"),
        (None, [], [{"image_id": 2, "caption": 5}], "captions"),
        ({"id": 2, "file_name": "two\u0000.png"}, [], None, "file_name"),
    ],
)
def test_coco_record_malformed(tmp_path, bad_image, bad_anns, captions, field):
    q = coco_bad(tmp_path, bad_image=bad_image, bad_anns=bad_anns, captions=captions)
    assert (q["reason"], q["field"]) == ("record_malformed", field)


def test_coco_path_escapes_root(tmp_path):
    write(tmp_path / "secret.png", png(GREEN))
    q = coco_bad(tmp_path, bad_image={"id": 2, "file_name": "../secret.png"})
    assert (q["reason"], q["field"], q["image_path"]) == ("path_escapes_root", "file_name", "../secret.png")


def test_coco_image_too_large(tmp_path):
    q = coco_bad(
        tmp_path,
        files={"two.png": png(GREEN, (64, 49))},
        bad_image={"id": 2, "file_name": "two.png"},
        limits=Limits(max_pixels=64 * 48),
    )
    assert (q["reason"], q["detail"]) == ("image_too_large", "64x49 = 3136 pixels > max_pixels 3072")


def test_a_non_image_detail_names_the_file(tmp_path):
    """PIL names the in-memory buffer ("<_io.BytesIO object at 0x…>"); the detail names the file instead."""
    result, _ = coco(tmp_path, bad_image={"id": 2, "file_name": "notes.jpg"}, files={"notes.jpg": b"shopping list\n"})
    (q,) = result.quarantine.to_pylist()
    assert (q["reason"], q["field"], q["row"], q["image_path"]) == ("image_unreadable", "image", 1, "notes.jpg")
    assert q["detail"] == "notes.jpg: UnidentifiedImageError: cannot identify image file"
    assert "BytesIO" not in q["detail"]


def test_a_pil_detail_without_a_path_names_the_file_and_row(tmp_path):
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"img": pa.array([png(RED), b"GIF89a"], type=pa.binary())}), path)
    result = run(ParquetSource(kind="parquet", name="p", path=path, columns=ParquetColumns(image="img")))
    (q,) = result.quarantine.to_pylist()
    assert (q["reason"], q["row"], q["image_path"]) == ("image_unreadable", 1, None)
    assert q["detail"].startswith(f"{path} row 1: ")
    assert "BytesIO" not in q["detail"]


# --- parquet: u0 (good), <bad>, u2 (good) ------------------------------------

P0, P2 = png(RED), png(BLUE)
P_OBJ = pa.struct([("label", pa.string()), ("bbox", pa.list_(pa.float64()))])
P_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def parquet_bad(tmp_path, image, caption=b"Two.", uid="u1", objects=()):
    root = tmp_path / "root"
    root.mkdir(parents=True)
    table = pa.table(
        {
            "img": pa.array([{"bytes": P0, "path": "p0.png"}, image, {"bytes": P2, "path": None}], type=P_IMAGE),
            "text": pa.array([b"Zero.", caption, "Tw\u00f6.".encode()], type=pa.binary()),
            "uid": ["u0", uid, "u2"],
            "objs": pa.array([[{"label": "dog", "bbox": [10, 5, 30, 20]}], list(objects), []], type=pa.list_(P_OBJ)),
        }
    )
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    src = ParquetSource(
        kind="parquet",
        name="p",
        path=path,
        image_root=root,
        columns=ParquetColumns(image="img", caption="text", id="uid", objects="objs"),
    )
    result = run(src)
    q = only_quarantined(result)
    r0, r2 = result.images.to_pylist()
    assert (r0["image_id"], r2["image_id"]) == (sha32(P0), sha32(P2))
    assert (r0["caption"], r2["caption"]) == ("Zero.", "Tw\u00f6.")  # binary captions decode as UTF-8
    dog = {
        "object_id": "0",
        "label": "dog",
        "bbox_xyxy": [10.0, 5.0, 30.0, 20.0],
        "attributes": [],
        "area": 300.0,
        "area_from": "box",
        "crowd": False,
    }
    assert r0["objects"] == [dog] and r2["objects"] == []
    assert [json.loads(r["metadata"])["row"] for r in (r0, r2)] == [0, 2]
    assert (q["source"], q["row"], q["file"]) == ("p", 1, str(path))
    return q


GOOD_IMAGE = {"bytes": png(GREEN), "path": None}


def test_parquet_duplicate_id(tmp_path):
    q = parquet_bad(tmp_path, GOOD_IMAGE, uid="u0")
    assert (q["reason"], q["field"], q["source_id"]) == ("duplicate_id", "uid", "u0")
    assert json.loads(q["record"]) == {"uid": "u0", "text": repr(b"Two."), "objs": []}  # the record, image left out


def test_parquet_text_undecodable(tmp_path):
    q = parquet_bad(tmp_path, GOOD_IMAGE, caption=b"caf\xe9")
    assert (q["reason"], q["field"], q["detail"]) == ("text_undecodable", "caption", "not UTF-8 at byte 3")


def test_parquet_caption_missing(tmp_path):
    q = parquet_bad(tmp_path, GOOD_IMAGE, caption=None)
    assert (q["reason"], q["field"]) == ("caption_missing", "caption")


@pytest.mark.parametrize(
    "image, reason, field",
    [
        ({"bytes": None, "path": None}, "image_unreadable", "img"),  # the mapped column: nothing in it
        ({"bytes": b"", "path": "missing.png"}, "image_unreadable", "image"),  # empty bytes: the path, not there
        ({"bytes": b"GIF89a", "path": None}, "image_unreadable", "image"),
        ({"bytes": None, "path": "../outside.png"}, "path_escapes_root", "img"),
        ({"bytes": P0, "path": "again.png"}, "duplicate_image", "image"),
    ],
)
def test_parquet_image_problems(tmp_path, image, reason, field):
    write(tmp_path / "outside.png", png(GREEN))
    q = parquet_bad(tmp_path, image)
    assert (q["reason"], q["field"], q["image_path"]) == (reason, field, image["path"])


def test_parquet_bad_box_and_label(tmp_path):
    q = parquet_bad(tmp_path, GOOD_IMAGE, objects=[{"label": "x", "bbox": [1, float("nan"), 5, 5]}])
    assert (q["reason"], q["field"]) == ("box_invalid", "objects[0].bbox")
    q = parquet_bad(tmp_path / "b", GOOD_IMAGE, objects=[{"label": " ", "bbox": [1, 1, 5, 5]}])
    assert (q["reason"], q["field"]) == ("record_malformed", "objects[0].label")


# --- all reasons at once -----------------------------------------------------


def test_every_reason_is_reachable(tmp_path):
    """One DOCCI file and one COCO file full of bad rows: every reason appears, counts add up, rows stay in order."""
    images = tmp_path / "images"
    for name, data in {
        "ok.png": png(RED),
        "ok2.png": png(BLUE),
        "copy.png": png(RED),
        "trunc.png": noisy_png()[:3000],
        "zero.wmf": placeable_wmf(0, 0, 0, 10),
        "big.png": png(GREEN, (80, 60)),
        "odd.png": png(GREEN, (64, 47)),
    }.items():
        write(images / name, data)
    write(tmp_path / "outside.png", png(GREEN))
    lines = [
        json.dumps({"example_id": "a", "image_file": "ok.png", "description": "ok"}).encode(),
        b'{"example_id": "b", "image_file": "ok2.png", "description": "\xff"}',
        json.dumps({"example_id": "c", "image_file": "ok2.png"}).encode(),
        json.dumps({"example_id": "a", "image_file": "ok2.png", "description": "dup id"}).encode(),
        json.dumps({"example_id": "d", "image_file": "copy.png", "description": "dup image"}).encode(),
        json.dumps({"example_id": "e", "image_file": "../outside.png", "description": "escape"}).encode(),
        json.dumps({"example_id": "f", "image_file": "trunc.png", "description": "truncated"}).encode(),
        json.dumps({"example_id": "g", "image_file": "zero.wmf", "description": "zero"}).encode(),
        json.dumps({"example_id": "h", "image_file": "big.png", "description": "too large"}).encode(),
        b"{broken",
        json.dumps({"example_id": "z", "image_file": "ok2.png", "description": "the last good one"}).encode(),
    ]
    (tmp_path / "d.jsonl").write_bytes(b"\n".join(lines))
    docci_src = DocciSource(kind="docci", name="d", descriptions=tmp_path / "d.jsonl", images=images)
    limits = Limits(max_pixels=64 * 48)
    d = run(docci_src, limits)
    assert d.images.column("caption").to_pylist() == ["ok", "the last good one"]
    assert d.quarantine.column("row").to_pylist() == list(range(1, 10))
    assert d.reasons() == {
        "caption_missing": 1,
        "duplicate_id": 1,
        "duplicate_image": 1,
        "image_too_large": 1,
        "image_unreadable": 1,
        "image_zero_size": 1,
        "path_escapes_root": 1,
        "record_malformed": 1,
        "text_undecodable": 1,
    }

    anns = [[10, 5, 20, 15], [float("nan"), 0, 1, 1], [10, 5, -1, 1], [10, 5, 90, 1], [10, 5, 0, 10], [-1, 0, 5, 5]]
    inst = {
        "images": [{"id": i, "file_name": "ok.png"} for i in range(len(anns))]
        + [{"id": 99, "file_name": "odd.png", "width": 64, "height": 48}],
        "annotations": [{"id": i, "image_id": i, "category_id": 1, "bbox": b} for i, b in enumerate(anns)],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (tmp_path / "inst.json").write_text(json.dumps(inst))
    coco_src = CocoSource(kind="coco", name="c", images=images, instances=tmp_path / "inst.json")
    c = run(coco_src, limits)
    # image 0 is kept; image 5's box [-1, 0, 4, 5] is clipped, but its bytes repeat image 0's
    assert c.images.num_rows == 1 and c.images.to_pylist()[0]["objects"][0]["bbox_xyxy"] == [10.0, 5.0, 30.0, 20.0]
    assert c.reasons() == {
        "box_degenerate": 1,
        "box_invalid": 1,
        "box_negative": 1,
        "box_out_of_bounds": 1,
        "duplicate_image": 1,
        "image_size_mismatch": 1,
    }
    assert set(d.reasons()) | set(c.reasons()) == set(QUARANTINE_REASONS)
