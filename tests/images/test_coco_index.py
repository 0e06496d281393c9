"""The COCO index: the instances file is parsed once per source (not once per shard), kept on disk keyed by the
files' contents, and shards read from it the very records a parse gives."""

import json
import os

import pytest

from lgt.images.sources import CocoSource
from lgt.images.sources import coco as coco_module
from lgt.images.sources.coco import PARSES, read_coco
from tests.fixtures import BLUE, GREEN, RED, png, write


def fixture(tmp_path, label="dog"):
    """Six images with the awkward cases a parse must carry through: a duplicate id, an entry that is not an object,
    an unknown category, a caption that is not text, a NaN box, a float id equal to an int, non-ASCII text."""
    img = tmp_path / "img"
    for i, color in enumerate((RED, GREEN, BLUE, (9, 9, 9), (200, 100, 0))):
        write(img / f"{i}.png", png(color))
    inst = {
        "images": [
            {"id": 1, "file_name": "0.png", "width": 64, "height": 48},
            {"id": 2, "file_name": "1.png"},
            {"id": 1, "file_name": "2.png"},  # duplicate id
            "not an object",
            {"id": 5, "file_name": "3.png"},
            {"id": 6.0, "file_name": "4.png"},  # annotations say image_id 6
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 5], "area": 40.5, "iscrowd": 0},
            {"id": 11, "image_id": 2, "category_id": 2, "bbox": [0, 0, 3, 3], "segmentation": [[0, 0, 3, 0, 3, 3]]},
            {"id": 12, "image_id": 5, "category_id": 99, "bbox": [0, 0, 3, 3]},  # unknown category
            {"id": 13, "image_id": 6, "category_id": 1, "bbox": [float("nan"), 0, 3, 3]},
            {"id": 14, "image_id": 6, "category_id": 2, "bbox": [2, 2, 4, 4], "iscrowd": 1},
        ],
        "categories": [{"id": 1, "name": label, "supercategory": "animal"}, {"id": 2, "name": "caf\u00e9 \u00fcber"}],
    }
    caps = {"annotations": [{"image_id": 1, "caption": " A dog. "}, {"image_id": 2, "caption": 7}]}
    (tmp_path / "instances.json").write_text(json.dumps(inst))
    (tmp_path / "captions.json").write_text(json.dumps(caps))
    return CocoSource(
        kind="coco",
        name="c",
        shards=3,
        images=img,
        instances=tmp_path / "instances.json",
        captions=tmp_path / "captions.json",
        require_caption=False,
    )


def records(src, shard, **kw):
    """Every field of every record, errors as (reason, field, detail), as JSON text (NaN compares equal there)."""
    out = []
    for r in read_coco(src, shard, **kw):
        d = dict(vars(r))
        d["error"] = None if r.error is None else [r.error.reason, r.error.field, r.error.detail]
        d["objects"] = [vars(o) for o in r.objects]
        d["image_bytes"] = None if r.image_bytes is None else r.image_bytes.hex()
        out.append(json.dumps(d, sort_keys=True))
    return out


def index_dirs(root):
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def test_the_index_is_built_once_and_read_by_every_shard(tmp_path):
    src, root = fixture(tmp_path), tmp_path / "index"
    key = str(src.instances)
    before = PARSES[key]
    first = records(src, 0, index_root=root)
    assert PARSES[key] == before + 1
    (d,) = index_dirs(root)
    meta_mtime = (d / "meta.json").stat().st_mtime_ns
    rows_mtime = (d / "rows.jsonl").stat().st_mtime_ns
    later = [records(src, s, index_root=root) for s in (1, 2, 0)]
    assert PARSES[key] == before + 1  # no shard parsed the file again
    assert ((d / "meta.json").stat().st_mtime_ns, (d / "rows.jsonl").stat().st_mtime_ns) == (meta_mtime, rows_mtime)
    assert later[2] == first  # shard 0 from disk is what shard 0 was when it built the index
    assert [len(r) for r in (first, *later[:2])] == [2, 2, 2]
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]  # nothing half-written left behind


def test_records_are_the_same_with_and_without_the_index(tmp_path):
    src, root = fixture(tmp_path), tmp_path / "index"
    for shards in (1, 2, 3, 4):
        s = src.model_copy(update={"shards": shards})
        for shard in range(shards):
            parsed = records(s, shard, indexed=False)
            records(s, shard, index_root=root)  # builds the index on the first call
            assert records(s, shard, index_root=root) == parsed, (shards, shard)
    whole = [json.loads(r) for r in records(src.model_copy(update={"shards": 1}), 0, index_root=root)]
    # by hand: the duplicate, the non-object, the unknown category and the float id's NaN box come through as-is
    assert [r["error"] and r["error"][0] for r in whole] == [
        None,
        "record_malformed",  # id 2: its caption is not text
        "duplicate_id",
        "record_malformed",
        "record_malformed",  # unknown category 99
        None,
    ]
    assert whole[2]["error"][2] == "image id 1 first seen at row 0"
    assert whole[4]["error"][2] == "unknown category 99"
    assert whole[0]["caption"] == "A dog."
    assert whole[0]["raw"] == {"image": {"id": 1, "file_name": "0.png", "width": 64, "height": 48}, "annotations": 1}
    assert whole[3]["raw"] == {"image": "not an object", "annotations": 0}
    six = whole[5]["objects"]
    assert [(o["label"], o["object_id"], o["crowd"]) for o in six] == [
        ("dog", "13", False),
        ("caf\u00e9 \u00fcber", "14", True),
    ]
    assert six[0]["bbox"][0] != six[0]["bbox"][0]  # NaN survives the index (JSON NaN), for validation to reject
    assert (whole[0]["objects"][0]["area"], whole[0]["objects"][0]["attributes"]) == (40.5, {"supercategory": "animal"})


def test_an_edited_instances_file_builds_a_new_index(tmp_path):
    src, root = fixture(tmp_path), tmp_path / "index"
    key = str(src.instances)
    before = PARSES[key]
    assert json.loads(records(src, 0, index_root=root)[0])["objects"][0]["label"] == "dog"
    fixture(tmp_path, label="wolf")  # the same path, new contents
    assert json.loads(records(src, 0, index_root=root)[0])["objects"][0]["label"] == "wolf"
    assert PARSES[key] == before + 2 and len(index_dirs(root)) == 2
    records(src, 1, index_root=root)
    assert PARSES[key] == before + 2


def test_an_edited_captions_file_builds_a_new_index(tmp_path):
    src, root = fixture(tmp_path), tmp_path / "index"
    records(src, 0, index_root=root)
    (tmp_path / "captions.json").write_text(json.dumps({"annotations": [{"image_id": 1, "caption": "New."}]}))
    assert json.loads(records(src, 0, index_root=root)[0])["caption"] == "New."
    assert len(index_dirs(root)) == 2


@pytest.mark.parametrize("damage", ["no_meta", "truncated_rows", "other_version"])
def test_a_damaged_index_is_rebuilt(tmp_path, damage):
    """A crash between the two files, a cut rows file or an index of another layout is never read."""
    src, root = fixture(tmp_path), tmp_path / "index"
    good = records(src, 1, index_root=root)
    (d,) = index_dirs(root)
    if damage == "no_meta":
        (d / "meta.json").unlink()
    elif damage == "truncated_rows":
        data = (d / "rows.jsonl").read_bytes()
        (d / "rows.jsonl").write_bytes(data[: len(data) // 2])
    else:
        meta = json.loads((d / "meta.json").read_text())
        (d / "meta.json").write_text(json.dumps({**meta, "version": meta["version"] + 1}))
    before = PARSES[str(src.instances)]
    assert records(src, 1, index_root=root) == good
    assert PARSES[str(src.instances)] == before + 1
    assert records(src, 2, index_root=root) == records(src, 2, indexed=False)


def test_the_index_lives_under_lgt_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LGT_HOME", str(tmp_path / "home"))
    src = fixture(tmp_path)
    records(src, 0)
    (d,) = index_dirs(tmp_path / "home" / "cache" / "coco-index")
    assert {p.name for p in d.iterdir()} == {"meta.json", "rows.jsonl"}
    monkeypatch.setenv("LGT_HOME", "s3://bucket/prefix")  # a remote home: the index stays on local disk
    assert coco_module.index_root() == coco_module.Path.home() / ".cache" / "lgt" / "coco-index"


def test_a_shard_reads_only_its_own_lines(tmp_path):
    """Shard 1 of 3 reads rows 2 and 3: rewriting every other line's bytes in place (same length) leaves it alone."""
    src, root = fixture(tmp_path), tmp_path / "index"
    want = records(src, 1, index_root=root)
    (d,) = index_dirs(root)
    offsets = json.loads((d / "meta.json").read_text())["offsets"]
    data = bytearray((d / "rows.jsonl").read_bytes())
    for row in (0, 1, 4, 5):
        a, b = offsets[row], offsets[row + 1]
        data[a : b - 1] = b"x" * (b - 1 - a)  # not JSON any more
    (d / "rows.jsonl").write_bytes(bytes(data))
    assert records(src, 1, index_root=root) == want
    with pytest.raises(ValueError):
        records(src, 0, index_root=root)


def test_file_errors_name_the_file_with_the_index(tmp_path):
    write(tmp_path / "img" / "a.png", png())
    src = CocoSource(kind="coco", name="c", images=tmp_path / "img", instances=tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError, match=r"nope\.json: cannot read the COCO instances file"):
        records(src, 0, index_root=tmp_path / "index")
    (tmp_path / "bad.json").write_text("{not json")
    bad = src.model_copy(update={"instances": tmp_path / "bad.json", "captions": tmp_path / "caps.json"})
    # both files are wrong: the instances file's error comes first, as without an index
    with pytest.raises(ValueError, match=r"bad\.json: the COCO instances file is not valid JSON"):
        records(bad, 0, index_root=tmp_path / "index")
    assert not index_dirs(tmp_path / "index")
    os.remove(tmp_path / "bad.json")
