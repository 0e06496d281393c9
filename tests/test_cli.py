"""The real Dagster CLI over a recipe with two sources, one of them with a corrupt image."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DAGSTER = str(Path(sys.executable).parent / "dagster")


def setup(tmp_path) -> dict:
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    Image.new("RGB", (40, 30), (200, 10, 10)).save(data / "img" / "good.png")
    (data / "img" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)  # header, then garbage
    (data / "d.jsonl").write_text(
        json.dumps({"example_id": "g", "image_file": "good.png", "description": "A red rectangle."})
        + "\n"
        + json.dumps({"example_id": "b", "image_file": "bad.png", "description": "Broken."})
        + "\n"
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        textwrap.dedent(
            """
            name: cli
            sources:
              - {name: synth, kind: synthetic_scenes, shards: 2, images_per_shard: 2, width: 128, height: 128,
                 objects: [3, 4]}
              - {name: docs, kind: docci, descriptions: data/d.jsonl, images: data/img}
            models:
              vlm: {backend: transformers, model: base_model}
              reasoner: {backend: transformers, model: base_model}
              verifier: {backend: transformers, model: base_model}
              small_solver: {backend: transformers, model: base_model}
            """
        )
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, "LGT_RECIPE": str(recipe), "LGT_HOME": str(tmp_path / "lgt"), "DAGSTER_HOME": str(home)}


# the image and question assets: the trace stages would call a model with the published settings
SELECT = "images,images_quarantine,questions_grounded,questions_composed,questions"


def dagster(env, *args):
    return subprocess.run([DAGSTER, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_validate_and_materialize_through_the_cli(tmp_path):
    env = setup(tmp_path)
    out = dagster(env, "definitions", "validate", "-m", "definitions")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "All code locations passed validation" in out.stderr + out.stdout

    out = dagster(env, "asset", "materialize", "-m", "definitions", "--select", SELECT, "--partition", "docs/0")
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "Asset check 'images_schema' on 'images' passed" in log
    assert "Asset check 'quarantine_schema' on 'images_quarantine' passed" in log

    storage = tmp_path / "lgt" / "storage"
    images = pq.read_table(storage / "images" / "docs" / "0.parquet").to_pylist()
    quarantine = pq.read_table(storage / "images_quarantine" / "docs" / "0.parquet").to_pylist()
    assert [(r["caption"], r["width"], r["height"]) for r in images] == [("A red rectangle.", 40, 30)]
    assert [(q["source_id"], q["reason"], q["field"], q["row"]) for q in quarantine] == [
        ("b", "image_unreadable", "image", 1)
    ]
    assert quarantine[0]["file"].endswith("d.jsonl:2")

    out = dagster(env, "asset", "materialize", "-m", "definitions", "--select", SELECT, "--partition", "synth/1")
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert pq.read_table(storage / "images" / "synth" / "1.parquet").num_rows == 2

    # a partition range in one run (a single-run backfill): one file per partition, the tables a run per
    # partition writes, and each partition's funnel kept apart in the one materialization
    single = pq.read_table(storage / "questions" / "synth" / "1.parquet")
    out = dagster(
        env, "asset", "materialize", "-m", "definitions", "--select", SELECT, "--partition-range", "synth/0...synth/1"
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert pq.read_table(storage / "questions" / "synth" / "1.parquet").equals(single)
    assert pq.read_table(storage / "images" / "synth" / "0.parquet").num_rows == 2

    # the run history lives in the SQLite instance under DAGSTER_HOME; the ranged run put each partition's own
    # row count and funnel on that partition's materialization
    code = (
        "import dagster as dg, json; i = dg.DagsterInstance.get(); "
        "print(sorted(i.get_materialized_partitions(dg.AssetKey('images')))); "
        "f = lambda pk: i.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey('questions_grounded'), "
        "asset_partitions=[pk]), limit=1).records[0].asset_materialization.metadata; "
        "print(json.dumps({pk: [f(pk)['range'].value, f(pk)['dagster/row_count'].value, f(pk)['funnel_counts'].value] "
        "for pk in ('synth/0', 'synth/1')}))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "['docs/0', 'synth/0', 'synth/1']", out.stderr[-2000:]
    got = json.loads(lines[1])
    for pk, (span, rows, funnel) in got.items():
        table = pq.read_table(storage / "questions_grounded" / f"{pk}.parquet")
        assert span == "synth/0...synth/1 (2 partitions in one step)"
        assert rows == table.num_rows and funnel[0] == ["images", 2] and funnel[-1][1] == table.num_rows
    assert (Path(env["DAGSTER_HOME"]) / "history" / "runs.db").exists()


def test_bad_recipe_fails_loading_with_the_key_path(tmp_path):
    env = setup(tmp_path)
    recipe = Path(env["LGT_RECIPE"])
    recipe.write_text(recipe.read_text().replace("shards: 2", "shards: 0"))
    out = dagster(env, "definitions", "validate", "-m", "definitions")
    assert out.returncode != 0
    assert "sources[0].shards: got 0; expected: Input should be greater than or equal to 1" in out.stdout + out.stderr
