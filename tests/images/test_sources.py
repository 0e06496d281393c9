"""Source loaders on real files: COCO, DOCCI and parquet read into exact canonical rows, sharded without loss.

Every fixture is written into tmp_path (PIL images, JSON, JSON lines, parquet); expected values are worked out
by hand in the tests, never by calling the code under test.
"""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lgt.images.sources import CocoSource, DocciSource, ParquetColumns, ParquetSource, read_shard, shard_range
from lgt.images.validate import build_shard
from schemas.images import ImagesQuarantineSchema, ImagesSchema
from tests.fixtures import BLUE, GREEN, RED, jpeg, jsonl, png, sha32, write


@pytest.fixture(autouse=True)
def _lgt_home(tmp_path, monkeypatch):
    """COCO reads write their index under $LGT_HOME/cache: keep it in the test's own folder."""
    monkeypatch.setenv("LGT_HOME", str(tmp_path / "lgt-home"))


def build(src, shard=0):
    result = build_shard(read_shard(src, shard))
    assert result.input_rows == result.images.num_rows + result.quarantine.num_rows
    ImagesSchema.validate(result.images.to_pandas())
    ImagesQuarantineSchema.validate(result.quarantine.to_pandas())
    return result


def attrs(**kv) -> list[dict]:
    return [{"key": k, "value": v} for k, v in sorted(kv.items())]


# --- COCO --------------------------------------------------------------------


def coco_fixture(tmp_path, captions=True):
    img_dir = tmp_path / "coco" / "images"
    a = write(img_dir / "a.png", png(RED))
    b = write(img_dir / "sub" / "b.jpg", jpeg(GREEN))
    inst = {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 64, "height": 48},
            {"id": 2, "file_name": "sub/b.jpg", "width": 64, "height": 48},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 5, 20, 15], "area": 250.5, "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 2, "bbox": [0, 0, 64, 48], "iscrowd": 1},
            {"id": 12, "image_id": 2, "category_id": 3, "bbox": [1.5, 2.5, 10, 4]},
        ],
        "categories": [
            {"id": 1, "name": "dog", "supercategory": "animal"},
            {"id": 2, "name": "crowd of people", "supercategory": "person"},
            {"id": 3, "name": "thing"},
        ],
    }
    (tmp_path / "coco" / "instances.json").write_text(json.dumps(inst))
    caps = {
        "annotations": [
            {"id": 100, "image_id": 1, "caption": "A dog runs."},
            {"id": 101, "image_id": 2, "caption": "A green field."},
            {"id": 102, "image_id": 1, "caption": "  People watch it.  "},
        ]
    }
    (tmp_path / "coco" / "captions.json").write_text(json.dumps(caps))
    src = CocoSource(
        kind="coco",
        name="c",
        shards=1,
        images=img_dir,
        instances=tmp_path / "coco" / "instances.json",
        captions=(tmp_path / "coco" / "captions.json") if captions else None,
    )
    return src, a, b


def test_coco_rows_exact(tmp_path):
    src, a, b = coco_fixture(tmp_path)
    result = build(src)
    assert result.quarantine.num_rows == 0 and result.input_rows == 2
    r0, r1 = result.images.to_pylist()

    assert r0["image_id"] == sha32(a) and r1["image_id"] == sha32(b)
    assert r0["image"] == {"bytes": a, "path": "a.png"}
    assert r1["image"] == {"bytes": b, "path": "sub/b.jpg"}
    assert (r0["source"], r0["split"], r0["width"], r0["height"]) == ("c", "train", 64, 48)
    assert (r1["width"], r1["height"]) == (64, 48)
    # captions of one image, in file order, stripped and joined with a space
    assert r0["caption"] == "A dog runs. People watch it."
    assert r1["caption"] == "A green field."
    assert r0["objects"] == [
        {
            "object_id": "10",
            "label": "dog",
            "bbox_xyxy": [10.0, 5.0, 30.0, 20.0],  # xywh [10, 5, 20, 15]
            "attributes": attrs(supercategory="animal"),
            "area": 250.5,  # COCO's segmentation area, not the box's (20 x 15 = 300)
            "area_from": "segmentation",
            "crowd": False,
        },
        {
            "object_id": "11",
            "label": "crowd of people",
            "bbox_xyxy": [0.0, 0.0, 64.0, 48.0],
            "attributes": attrs(supercategory="person"),
            "area": 3072.0,  # no segmentation area: the box's
            "area_from": "box",
            "crowd": True,
        },
    ]
    assert r1["objects"] == [
        {
            "object_id": "12",
            "label": "thing",
            "bbox_xyxy": [1.5, 2.5, 11.5, 6.5],
            "attributes": [],  # no supercategory
            "area": 40.0,
            "area_from": "box",
            "crowd": False,
        }
    ]
    assert json.loads(r0["metadata"]) == {
        "coco_image_id": 1,
        "file_name": "a.png",
        "format": "PNG",
        "row": 0,
        "shard": 0,
        "source_id": "1",
    }
    assert json.loads(r1["metadata"])["format"] == "JPEG"


def test_coco_without_captions_needs_none(tmp_path):
    src, a, _ = coco_fixture(tmp_path, captions=False)
    result = build(src)
    assert result.quarantine.num_rows == 0
    assert result.images.column("caption").to_pylist() == ["", ""]


# --- DOCCI -------------------------------------------------------------------


def docci_fixture(tmp_path):
    img_dir = tmp_path / "docci" / "images"
    d0 = write(img_dir / "d0.png", png(RED))
    d1 = write(img_dir / "nested" / "d1.jpg", jpeg(BLUE))
    desc = tmp_path / "docci" / "descriptions.jsonl"
    jsonl(
        desc,
        [
            {
                "example_id": "qual_0",
                "image_file": "d0.png",
                "description": "A red square fills the frame.",
                "split": "qual_dev",
            },
            {"example_id": "train_1", "image_file": "nested/d1.jpg", "description": "Blue, all over."},
        ],
    )
    boxes = tmp_path / "docci" / "boxes.jsonl"
    jsonl(
        boxes,
        [
            {
                "example_id": "qual_0",
                "objects": [
                    {
                        "label": " square ",
                        "bbox_xyxy": [4, 4, 20, 20],
                        "attributes": {"color": "red", "n": 1},
                        "object_id": "sq",
                    },
                    {"label": "corner", "bbox_xyxy": [60.5, 40, 64, 48]},
                ],
            },
            {"example_id": "not_in_descriptions", "objects": [{"label": "x", "bbox_xyxy": [0, 0, 1, 1]}]},
        ],
    )
    src = DocciSource(kind="docci", name="d", descriptions=desc, images=img_dir, boxes=boxes)
    return src, d0, d1


def test_docci_rows_exact(tmp_path):
    src, d0, d1 = docci_fixture(tmp_path)
    result = build(src)
    assert result.quarantine.num_rows == 0
    r0, r1 = result.images.to_pylist()
    assert r0["image_id"] == sha32(d0) and r0["image"] == {"bytes": d0, "path": "d0.png"}
    assert r1["image_id"] == sha32(d1) and r1["image"] == {"bytes": d1, "path": "nested/d1.jpg"}
    assert r0["caption"] == "A red square fills the frame." and r1["caption"] == "Blue, all over."
    assert r0["split"] == "qual_dev"  # the line's split wins
    assert r1["split"] == "train"  # else the recipe's
    assert (r0["width"], r0["height"], r1["width"], r1["height"]) == (64, 48, 64, 48)
    assert r0["objects"] == [
        {
            "object_id": "sq",
            "label": "square",
            "bbox_xyxy": [4.0, 4.0, 20.0, 20.0],
            "attributes": attrs(color="red", n="1"),
            "area": 256.0,
            "area_from": "box",
            "crowd": False,
        },
        {
            "object_id": "1",
            "label": "corner",
            "bbox_xyxy": [60.5, 40.0, 64.0, 48.0],
            "attributes": [],
            "area": 28.0,
            "area_from": "box",
            "crowd": False,
        },
    ]
    assert r1["objects"] == []
    assert json.loads(r0["metadata"]) == {
        "example_id": "qual_0",
        "image_file": "d0.png",
        "split": "qual_dev",
        "source_id": "qual_0",
        "shard": 0,
        "row": 0,
        "format": "PNG",
    }


def test_docci_without_boxes_file(tmp_path):
    src, _, _ = docci_fixture(tmp_path)
    src = src.model_copy(update={"boxes": None})
    result = build(src)
    assert [r["objects"] for r in result.images.to_pylist()] == [[], []]


# --- parquet -----------------------------------------------------------------

OBJ = pa.struct(
    [
        ("label", pa.string()),
        ("bbox", pa.list_(pa.float64())),
        ("attributes", pa.map_(pa.string(), pa.string())),
        ("object_id", pa.string()),
    ]
)
HF_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def test_parquet_hf_image_struct_mapping_and_xywh(tmp_path):
    root = tmp_path / "root"
    p0, p1, p2 = png(RED), jpeg(GREEN), write(root / "imgs" / "c.png", png(BLUE))
    table = pa.table(
        {
            "picture": pa.array(
                [{"bytes": p0, "path": "a.png"}, {"bytes": p1, "path": None}, {"bytes": None, "path": "imgs/c.png"}],
                type=HF_IMAGE,
            ),
            "alt_text": ["red", "green", "blue"],
            "uid": ["u0", "u1", "u2"],
            "subset": ["val", None, "test"],
            "anns": pa.array(
                [
                    [{"label": "dog", "bbox": [10, 5, 20, 15], "attributes": [("color", "brown")], "object_id": "o1"}],
                    [{"label": "cat", "bbox": [0, 0, 64, 48], "attributes": None, "object_id": None}],
                    [],
                ],
                type=pa.list_(OBJ),
            ),
            "unused": [1, 2, 3],
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    src = ParquetSource(
        kind="parquet",
        name="p",
        path=tmp_path / "d.parquet",
        image_root=root,
        bbox_format="xywh",
        columns=ParquetColumns(image="picture", caption="alt_text", id="uid", objects="anns", split="subset"),
    )
    result = build(src)
    assert result.quarantine.num_rows == 0
    r0, r1, r2 = result.images.to_pylist()
    assert [r["image_id"] for r in (r0, r1, r2)] == [sha32(p0), sha32(p1), sha32(p2)]
    assert r0["image"] == {"bytes": p0, "path": "a.png"}
    assert r1["image"] == {"bytes": p1, "path": None}
    assert r2["image"] == {"bytes": p2, "path": "imgs/c.png"}  # no bytes: read from image_root
    assert [r["caption"] for r in (r0, r1, r2)] == ["red", "green", "blue"]
    assert [r["split"] for r in (r0, r1, r2)] == ["val", "train", "test"]
    assert r0["objects"] == [
        {
            "object_id": "o1",
            "label": "dog",
            "bbox_xyxy": [10.0, 5.0, 30.0, 20.0],  # xywh [10, 5, 20, 15]
            "attributes": attrs(color="brown"),
            "area": 300.0,
            "area_from": "box",
            "crowd": False,
        }
    ]
    assert r1["objects"] == [
        {
            "object_id": "0",
            "label": "cat",
            "bbox_xyxy": [0.0, 0.0, 64.0, 48.0],
            "attributes": [],
            "area": 3072.0,
            "area_from": "box",
            "crowd": False,
        }
    ]
    assert r2["objects"] == []
    meta = json.loads(r0["metadata"])
    assert (meta["source_id"], meta["row"], meta["file"], meta["format"]) == ("u0", 0, "d.parquet", "PNG")


def test_parquet_raw_bytes_and_xyxy(tmp_path):
    p0, p1 = png(RED), png(BLUE, size=(32, 24))
    table = pa.table(
        {
            "img": pa.array([p0, p1], type=pa.binary()),
            "text": ["a", "b"],
            "objects": pa.array(
                [[{"label": "box", "bbox": [10, 5, 30, 20], "attributes": None, "object_id": None}], []],
                type=pa.list_(OBJ),
            ),
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    src = ParquetSource(
        kind="parquet",
        name="p",
        path=tmp_path / "d.parquet",
        columns=ParquetColumns(image="img", caption="text", objects="objects"),
    )
    r0, r1 = build(src).images.to_pylist()
    assert r0["image"] == {"bytes": p0, "path": None} and r1["image"] == {"bytes": p1, "path": None}
    assert (r1["width"], r1["height"]) == (32, 24)
    assert r0["objects"][0]["bbox_xyxy"] == [10.0, 5.0, 30.0, 20.0] and r0["objects"][0]["area"] == 300.0
    assert json.loads(r1["metadata"])["source_id"] == "1"  # no id column: the row number


def test_parquet_relative_paths_with_image_root(tmp_path):
    root = tmp_path / "root"
    a = write(root / "a.png", png(RED))
    b = write(root / "deep" / "b.jpg", jpeg(GREEN))
    pq.write_table(pa.table({"file": ["a.png", "deep/b.jpg"], "id": [7, 8]}), tmp_path / "d.parquet")
    src = ParquetSource(
        kind="parquet",
        name="p",
        path=tmp_path / "d.parquet",
        image_root=root,
        columns=ParquetColumns(image="file", id="id"),
    )
    result = build(src)
    # no caption column: require_caption (default true) has nothing to require
    assert result.quarantine.num_rows == 0
    r0, r1 = result.images.to_pylist()
    assert r0["image"] == {"bytes": a, "path": "a.png"} and r1["image"] == {"bytes": b, "path": "deep/b.jpg"}
    assert (r0["caption"], r1["caption"]) == ("", "")
    assert json.loads(r1["metadata"])["source_id"] == "8"


def test_parquet_attributes_in_every_arrow_layout(tmp_path):
    """A map column, this project's own list of {key, value} structs, and a plain struct all read the same."""
    kv = pa.list_(pa.struct([("key", pa.string()), ("value", pa.string())]))
    layouts = {
        "map": (pa.map_(pa.string(), pa.string()), [("color", "red"), ("size", "big")]),
        "kv_structs": (kv, [{"key": "color", "value": "red"}, {"key": "size", "value": "big"}]),
        "struct": (
            pa.struct([("color", pa.string()), ("size", pa.string()), ("shape", pa.string())]),
            {"color": "red", "size": "big", "shape": None},
        ),  # a null field is an absent attribute
    }
    for name, (typ, value) in layouts.items():
        obj = pa.struct([("label", pa.string()), ("bbox_xyxy", pa.list_(pa.float64())), ("attributes", typ)])
        table = pa.table(
            {
                "image": pa.array([png(RED)], type=pa.binary()),
                "objects": pa.array(
                    [[{"label": "ball", "bbox_xyxy": [1, 2, 3, 4], "attributes": value}]], type=pa.list_(obj)
                ),
            }
        )
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path)
        cols = ParquetColumns(image="image", objects="objects")
        src = ParquetSource(kind="parquet", name="p", path=path, columns=cols)
        (row,) = build(src).images.to_pylist()
        assert row["objects"] == [
            {
                "object_id": "0",
                "label": "ball",
                "bbox_xyxy": [1.0, 2.0, 3.0, 4.0],
                "attributes": attrs(color="red", size="big"),
                "area": 4.0,
                "area_from": "box",
                "crowd": False,
            }
        ], name


# --- sharding ----------------------------------------------------------------

N = 7
# 7 rows: shards=2 -> [0, 3), [3, 7); shards=3 -> [0, 2), [2, 4), [4, 7)  (n*k//shards, worked out by hand)
EXPECTED_RANGES = {1: [[0, 1, 2, 3, 4, 5, 6]], 2: [[0, 1, 2], [3, 4, 5, 6]], 3: [[0, 1], [2, 3], [4, 5, 6]]}


def distinct_pngs(n):
    return [png((40 * i, 255 - 30 * i, 7 * i)) for i in range(n)]


def shard_rows(src_for, shards):
    """(source_ids, image_ids) per shard, checking each shard's rows are the expected contiguous range."""
    out = []
    for shard in range(shards):
        result = build(src_for(shards), shard)
        assert result.quarantine.num_rows == 0
        rows = result.images.to_pylist()
        meta = [json.loads(r["metadata"]) for r in rows]
        assert [m["row"] for m in meta] == EXPECTED_RANGES[shards][shard]
        assert all(m["shard"] == shard for m in meta)
        out.append(([m["source_id"] for m in meta], [r["image_id"] for r in rows]))
    return out


def check_partition(per_shard, ids, blobs):
    seen = [sid for sids, _ in per_shard for sid in sids]
    assert seen == ids  # each row exactly once, in source order: the union is the input
    assert [i for _, iids in per_shard for i in iids] == [sha32(b) for b in blobs]


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_coco_sharding(tmp_path, shards):
    blobs = distinct_pngs(N)
    for i, b in enumerate(blobs):
        write(tmp_path / "img" / f"{i}.png", b)
    inst = {
        "images": [{"id": 100 + i, "file_name": f"{i}.png"} for i in range(N)],
        "annotations": [{"id": i, "image_id": 100 + i, "category_id": 1, "bbox": [1, 1, 5, 5]} for i in range(N)],
        "categories": [{"id": 1, "name": "x"}],
    }
    (tmp_path / "inst.json").write_text(json.dumps(inst))

    def src(k):
        return CocoSource(kind="coco", name="c", shards=k, images=tmp_path / "img", instances=tmp_path / "inst.json")

    check_partition(shard_rows(src, shards), [str(100 + i) for i in range(N)], blobs)


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_docci_sharding(tmp_path, shards):
    blobs = distinct_pngs(N)
    for i, b in enumerate(blobs):
        write(tmp_path / "img" / f"{i}.png", b)
    lines = [{"example_id": f"e{i}", "image_file": f"{i}.png", "description": f"image {i}"} for i in range(N)]
    jsonl(tmp_path / "d.jsonl", lines)

    def src(k):
        return DocciSource(kind="docci", name="d", shards=k, descriptions=tmp_path / "d.jsonl", images=tmp_path / "img")

    check_partition(shard_rows(src, shards), [f"e{i}" for i in range(N)], blobs)


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_parquet_sharding_across_files(tmp_path, shards):
    """A folder of two files (3 + 4 rows): shard ranges cross the file boundary."""
    blobs = distinct_pngs(N)
    (tmp_path / "data").mkdir()
    for name, rows in (("part-0.parquet", range(0, 3)), ("part-1.parquet", range(3, N))):
        pq.write_table(
            pa.table({"image": pa.array([blobs[i] for i in rows], type=pa.binary()), "id": [f"p{i}" for i in rows]}),
            tmp_path / "data" / name,
        )

    def src(k):
        cols = ParquetColumns(image="image", id="id")
        return ParquetSource(kind="parquet", name="p", shards=k, path=tmp_path / "data", columns=cols)

    per_shard = shard_rows(src, shards)
    check_partition(per_shard, [f"p{i}" for i in range(N)], blobs)


def test_watched_folder_one_shard_per_file_numbered_by_name(tmp_path):
    """Each file of a watched folder is one whole shard, numbered by the last number in its name; files still being
    written (`.`/`_` names) are not shards; a file without a number, or two naming one shard, is an error."""
    from lgt.images.sources.parquet import watched_shards

    blobs = distinct_pngs(5)
    inbox = tmp_path / "inbox"
    assert watched_shards(inbox) == {}  # not there yet: no shard, no error
    inbox.mkdir()

    def put(name, rows):
        table = pa.table({"image": pa.array([blobs[i] for i in rows], pa.binary()), "id": [f"p{i}" for i in rows]})
        pq.write_table(table, inbox / name)

    put("day2-part-00010.parquet", [3, 4])
    put("day1-part-00002.parquet", [0, 1, 2])
    put("_tmp-part-00011.parquet", [0])
    assert watched_shards(inbox) == {2: inbox / "day1-part-00002.parquet", 10: inbox / "day2-part-00010.parquet"}
    src = ParquetSource(
        kind="parquet", name="w", path=inbox, watch=True, columns=ParquetColumns(image="image", id="id")
    )
    for shard, rows in ((2, [0, 1, 2]), (10, [3, 4])):
        result = build(src, shard)
        meta = [json.loads(r["metadata"]) for r in result.images.to_pylist()]
        assert [(m["source_id"], m["row"], m["shard"]) for m in meta] == [
            (f"p{i}", j, shard) for j, i in enumerate(rows)
        ]
    with pytest.raises(FileNotFoundError, match="no shard file numbered 3"):
        build(src, 3)
    with pytest.raises(ValueError, match="remove `shards`"):
        ParquetSource(kind="parquet", name="w", path=inbox, watch=True, shards=2, columns=ParquetColumns(image="image"))
    put("extra-10.parquet", [0])
    with pytest.raises(ValueError, match="both name shard 10"):
        watched_shards(inbox)
    (inbox / "extra-10.parquet").rename(inbox / "notes.parquet")
    with pytest.raises(ValueError, match="notes.parquet: a shard file in a watched folder needs a number"):
        watched_shards(inbox)


def test_shard_range_by_hand():
    assert [list(shard_range(7, 3, k)) for k in range(3)] == EXPECTED_RANGES[3]
    assert [list(shard_range(2, 3, k)) for k in range(3)] == [[], [0], [1]]  # more shards than rows: some empty
    with pytest.raises(ValueError, match="shard 3 is not in 0..2"):
        shard_range(7, 3, 3)


def test_empty_shard_gives_empty_valid_tables(tmp_path):
    write(tmp_path / "img" / "a.png", png())
    jsonl(tmp_path / "d.jsonl", [{"example_id": "e", "image_file": "a.png", "description": "x"}])
    src = DocciSource(kind="docci", name="d", shards=2, descriptions=tmp_path / "d.jsonl", images=tmp_path / "img")
    empty = build(src, 0)  # 1 row, 2 shards: shard 0 is [0, 0)
    assert (empty.input_rows, empty.images.num_rows, empty.quarantine.num_rows) == (0, 0, 0)
    assert build(src, 1).images.num_rows == 1


# --- file-level errors -------------------------------------------------------


def test_coco_file_errors_name_the_file(tmp_path):
    write(tmp_path / "img" / "a.png", png())
    missing = CocoSource(kind="coco", name="c", images=tmp_path / "img", instances=tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError, match=r"nope\.json: cannot read the COCO instances file"):
        list(read_shard(missing, 0))

    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: the COCO instances file is not valid JSON"):
        list(read_shard(missing.model_copy(update={"instances": tmp_path / "bad.json"}), 0))

    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError, match=r"list\.json: COCO instances file is not a JSON object"):
        list(read_shard(missing.model_copy(update={"instances": tmp_path / "list.json"}), 0))

    (tmp_path / "nocats.json").write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(ValueError, match=r"nocats\.json: COCO instances file has no list 'categories'"):
        list(read_shard(missing.model_copy(update={"instances": tmp_path / "nocats.json"}), 0))

    (tmp_path / "ok.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    with pytest.raises(FileNotFoundError, match=r"caps\.json: cannot read the COCO captions file"):
        no_caps = missing.model_copy(update={"instances": tmp_path / "ok.json", "captions": tmp_path / "caps.json"})
        list(read_shard(no_caps, 0))


def test_docci_file_errors_name_the_file(tmp_path):
    src = DocciSource(kind="docci", name="d", descriptions=tmp_path / "none.jsonl", images=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"none\.jsonl: cannot read"):
        list(read_shard(src, 0))
    jsonl(tmp_path / "d.jsonl", [])
    (tmp_path / "boxes.jsonl").write_text('{"example_id": "a", "objects": []}\n{"example_id": "b"}\n')
    src = src.model_copy(update={"descriptions": tmp_path / "d.jsonl", "boxes": tmp_path / "boxes.jsonl"})
    with pytest.raises(ValueError, match=r"boxes\.jsonl: line 2: needs example_id and a list 'objects'"):
        list(read_shard(src, 0))


def test_parquet_file_errors_name_the_file_and_column(tmp_path):
    pq.write_table(pa.table({"image": pa.array([png()], type=pa.binary()), "text": ["x"]}), tmp_path / "d.parquet")
    src = ParquetSource(
        kind="parquet", name="p", path=tmp_path / "d.parquet", columns=ParquetColumns(image="image", caption="caption")
    )
    with pytest.raises(ValueError, match=r"d\.parquet: column\(s\) \['caption'\] named in the recipe are not in"):
        list(read_shard(src, 0))
    with pytest.raises(FileNotFoundError, match=r"missing\.parquet: no parquet file there"):
        list(read_shard(src.model_copy(update={"path": tmp_path / "missing.parquet"}), 0))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty: no parquet file there"):
        list(read_shard(src.model_copy(update={"path": tmp_path / "empty"}), 0))


def test_a_missing_image_folder_is_one_error_naming_it(tmp_path):
    jsonl(tmp_path / "d.jsonl", [{"example_id": "a", "image_file": "a.png", "description": "x"}])
    src = DocciSource(kind="docci", name="d", descriptions=tmp_path / "d.jsonl", images=tmp_path / "no_images")
    with pytest.raises(FileNotFoundError, match=r"no_images: the DOCCI image folder does not exist"):
        list(read_shard(src, 0))
    (tmp_path / "ok.json").write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
    coco = CocoSource(kind="coco", name="c", images=tmp_path / "no_coco", instances=tmp_path / "ok.json")
    with pytest.raises(FileNotFoundError, match=r"no_coco: the COCO image folder does not exist"):
        list(read_shard(coco, 0))


def test_source_fields_cannot_overwrite_the_engine_metadata(tmp_path):
    d0 = write(tmp_path / "img" / "a.png", png())
    jsonl(tmp_path / "d.jsonl", [{"example_id": "e", "image_file": "a.png", "description": "x", "row": 99, "shard": 7}])
    src = DocciSource(kind="docci", name="d", descriptions=tmp_path / "d.jsonl", images=tmp_path / "img")
    meta = json.loads(build(src).images.column("metadata")[0].as_py())
    assert (meta["row"], meta["shard"], meta["source_id"]) == (0, 0, "e")
    assert sha32(d0) == build(src).images.column("image_id")[0].as_py()


def test_parquet_null_id_is_malformed(tmp_path):
    pq.write_table(
        pa.table({"img": pa.array([png(RED), png(GREEN)], type=pa.binary()), "uid": ["a", None]}),
        tmp_path / "n.parquet",
    )
    src = ParquetSource(
        kind="parquet", name="p", path=tmp_path / "n.parquet", columns=ParquetColumns(image="img", id="uid")
    )
    r = build(src)
    assert r.images.column("image_id").to_pylist() == [sha32(png(RED))]
    assert [(q["reason"], q["field"], q["row"]) for q in r.quarantine.to_pylist()] == [("record_malformed", "uid", 1)]
