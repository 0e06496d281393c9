"""The images assets in process: storage layout, metadata, data versions, blocking checks."""

import json
import textwrap

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import lgt_assets.images as images_module
from lgt.images.validate import ShardResult
from lgt.recipe import load_recipe
from lgt.storage import read_table
from lgt_assets import build_definitions
from lgt_assets.factory import schema_check
from schemas import IMAGES_ARROW, QUARANTINE_ARROW, ImagesSchema


def recipe_file(tmp_path, seed=0, shards=2, n=3):
    p = tmp_path / "r.yaml"
    p.write_text(
        textwrap.dedent(
            f"""
            name: t
            sources:
              - {{name: s, kind: synthetic_scenes, shards: {shards}, images_per_shard: {n}, seed: {seed},
                 width: 128, height: 96, objects: [3, 5]}}
            models:
              vlm: {{backend: transformers, model: base_model}}
              reasoner: {{backend: transformers, model: base_model}}
              verifier: {{backend: transformers, model: base_model}}
              small_solver: {{backend: transformers, model: base_model}}
            stages:
              images: {{preview_images: 2}}
            """
        )
    )
    return p


def run(tmp_path, base, partition="s/1", seed=0, instance=None):
    defs = build_definitions(load_recipe(recipe_file(tmp_path, seed)), base_path=base)
    return dg.materialize(  # only the images pair: the later stages would call a model
        defs.assets,
        selection=["images", "images_quarantine"],
        partition_key=partition,
        resources=defs.resources,
        instance=instance,
        raise_on_error=False,
    )


def materialization(result, key):
    return next(m for m in result.asset_materializations_for_node("images_assets") if m.asset_key == dg.AssetKey(key))


def test_writes_one_parquet_per_partition_with_metadata(tmp_path):
    base = str(tmp_path / "home")
    result = run(tmp_path, base)
    assert result.success
    path = tmp_path / "home" / "storage" / "images" / "s" / "1.parquet"
    table = pq.read_table(path)
    assert table.num_rows == 3 and table.schema.equals(IMAGES_ARROW, check_metadata=False)
    assert pq.read_table(tmp_path / "home/storage/images_quarantine/s/1.parquet").num_rows == 0
    assert not list((tmp_path / "home").rglob("*.tmp"))  # atomic writes leave no temp files
    meta = materialization(result, "images").metadata
    assert meta["dagster/row_count"].value == 3
    assert meta["input_rows"].value == 3 and meta["quarantined"].value == 0
    assert meta["preview"].value.count("data:image/png;base64,") == 2
    assert json.loads(table.column("metadata")[0].as_py())["shard"] == 1
    checks = {
        c.check_name: c.passed
        for c in result.get_asset_check_evaluations()
        if c.asset_key.path[-1] in ("images", "images_quarantine")
    }
    assert checks == {"images_schema": True, "quarantine_schema": True}


def test_asset_definitions_carry_column_schemas_and_blocking_checks(tmp_path):
    defs = build_definitions(load_recipe(recipe_file(tmp_path)), base_path=str(tmp_path))
    assets = defs.resolve_assets_def("images")
    columns = assets.specs_by_key[dg.AssetKey("images")].metadata["dagster/column_schema"].schema.columns
    assert [c.name for c in columns] == IMAGES_ARROW.names
    assert {c.name: c.blocking for c in assets.check_specs} == {"images_schema": True, "quarantine_schema": True}


def test_fsspec_base_url(tmp_path):
    result = run(tmp_path, "memory://lgt-test-home", partition="s/0")
    assert result.success
    t = read_table("memory://lgt-test-home/storage/images/s/0.parquet")
    assert t.num_rows == 3 and t.column("source").to_pylist() == ["s"] * 3


def test_data_version_is_a_content_hash(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    v1 = materialization(run(tmp_path, str(tmp_path / "a"), instance=instance), "images").tags["dagster/data_version"]
    v2 = materialization(run(tmp_path, str(tmp_path / "b"), instance=instance), "images").tags["dagster/data_version"]
    v3 = materialization(run(tmp_path, str(tmp_path / "c"), seed=1, instance=instance), "images").tags[
        "dagster/data_version"
    ]
    assert v1 == v2 != v3


def test_schema_check_reports_failures_as_metadata():
    good = pa.Table.from_pylist([], schema=IMAGES_ARROW)
    assert schema_check("images_schema", "images", ImagesSchema, good).passed
    bad = pa.Table.from_pylist(
        [
            {
                "image_id": "0" * 32,
                "source": "s",
                "split": "train",
                "image": {"bytes": b"x", "path": None},
                "width": 10,
                "height": 10,
                "caption": "",
                "metadata": "{}",
                "objects": [
                    {
                        "object_id": "0",
                        "label": "a",
                        "bbox_xyxy": [0, 0, 20, 5],
                        "attributes": [],
                        "area": 100.0,
                        "area_from": "box",
                        "crowd": False,
                    }
                ],
            }
        ],
        schema=IMAGES_ARROW,
    )
    res = schema_check("images_schema", "images", ImagesSchema, bad)
    assert not res.passed and res.metadata["failures"].value >= 1
    assert "boxes_inside_image" in res.metadata["first failures"].value


def test_a_failing_check_blocks_the_step(tmp_path, monkeypatch):
    """Inject a box outside the image after validation: the blocking check fails the run."""
    real = images_module.build_shard

    def corrupting(*a, **k):
        r = real(*a, **k)
        rows = r.images.to_pylist()
        rows[0]["objects"][0]["bbox_xyxy"] = [0.0, 0.0, 9999.0, 5.0]
        return ShardResult(pa.Table.from_pylist(rows, schema=IMAGES_ARROW), r.quarantine, r.input_rows, r.seconds)

    monkeypatch.setattr(images_module, "build_shard", corrupting)
    result = run(tmp_path, str(tmp_path / "home"))
    assert not result.success
    evals = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert evals["images_schema"] is False and evals["quarantine_schema"] is True
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "DagsterAssetCheckFailedError" in failure.cls_name


def test_quarantine_table_schema_round_trips(tmp_path):
    t = pa.Table.from_pylist([], schema=QUARANTINE_ARROW)
    assert t.schema.field("reason").type == pa.string()
    with pytest.raises(FileNotFoundError, match="materialize the upstream asset first"):
        read_table(str(tmp_path / "missing.parquet"))


def test_parquet_loads_with_hf_datasets_and_images_decode(tmp_path):
    import datasets

    assert run(tmp_path, str(tmp_path / "home")).success
    path = tmp_path / "home/storage/images/s/1.parquet"
    ds = datasets.load_dataset("parquet", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))
    assert isinstance(ds.features["image"], datasets.Image)
    row, raw = ds[0], pq.read_table(path).to_pylist()[0]
    assert row["image"].size == (128, 96) and row["image_id"] == raw["image_id"]
    assert row["objects"][0]["bbox_xyxy"] == raw["objects"][0]["bbox_xyxy"]
