"""The stage registry: one entry is enough to add an asset to the definitions, the selection and the card funnel."""

import textwrap

import dagster as dg
import numpy as np
import pandera.pandas as pa_pd
import pyarrow as pa
import pyarrow.parquet as pq
from pandera.typing import Series

from lgt.recipe import load_recipe
from lgt.results import StageResult
from lgt_assets import build_definitions
from lgt_assets.datasets import funnel_assets
from lgt_assets.factory import Stage, Wiring
from lgt_assets.registry import REGISTRY
from lgt_assets.selection import Wave, waves
from schemas import Artifact


def recipe(tmp_path, suites=False):
    p = tmp_path / "r.yaml"
    held = "stages: {benchmark_suites: {suites: [{name: held, kind: synthetic, like: s, seed: 9}]}}" if suites else ""
    p.write_text(
        textwrap.dedent("""
        name: reg
        sources: [{name: s, kind: synthetic_scenes, shards: 2, images_per_shard: 3, objects: [2, 5]}]
        models:
          vlm: {backend: transformers, model: base_model}
          reasoner: {backend: transformers, model: base_model}
          verifier: {backend: transformers, model: base_model}
          small_solver: {backend: transformers, model: base_model}
        """)
        + held
    )
    return load_recipe(p)


class ToySchema(pa_pd.DataFrameModel):
    image_id: Series[str]
    objects: Series[np.int64] = pa_pd.Field(ge=1)

    class Config:
        strict = True


TOY = Artifact("toy", pa.schema([("image_id", pa.string()), ("objects", pa.int64())]), ToySchema)


def count_objects(run) -> StageResult:
    """Objects per image: a stage small enough to check by hand."""
    images = run.inputs["images"].to_pylist()
    rows = [{"image_id": r["image_id"], "objects": len(r["objects"])} for r in images]
    table = pa.Table.from_pylist(rows, schema=TOY.arrow)
    return StageResult(table, funnel={"images": len(images), "kept": len(rows)}, by_family={"all": len(rows)})


TOY_STAGE = Stage(
    "toy_counts",
    "toys",
    ins=["images"],
    artifact=TOY,
    build=count_objects,
    description="objects per image",
    check="pandera ToySchema",
    settings=lambda r: r.stages.images,
)


def test_the_product_registry_phases_and_funnel(tmp_path):
    r = recipe(tmp_path)
    defs = build_definitions(r, base_path=str(tmp_path / "home"))
    shards = sorted(
        [
            "images",
            "images_quarantine",
            "questions_grounded",
            "questions_composed",
            "questions",
            "simple_cots",
            "long_cots",
            "four_phase",
            "difficulty",
            "sft_data",
            "dpo_pairs",
            "rl_prompts",
        ]
    )
    # one run per partitioning, in dependency order (no benchmark suites: no scores, no report)
    assert waves(defs) == [
        Wave(["base_model"], None),
        Wave(shards, ["s/0", "s/1"]),
        Wave(["dpo_checkpoint", "exports", "sft_checkpoint"], None),
    ]
    assert waves(defs)[1].line() == ",".join(shards) + "\ts/0...s/1"
    with_suites = recipe(tmp_path, suites=True)
    assert [(w.assets, w.partitions) for w in waves(build_definitions(with_suites, base_path=str(tmp_path)))] == [
        (["base_model"], None),
        (shards, ["s/0", "s/1"]),
        (["benchmark_suites", "dpo_checkpoint", "exports", "sft_checkpoint"], None),
        (["benchmark_scores"], ["base_model/held", "sft_checkpoint/held", "dpo_checkpoint/held"]),
        (["report"], None),
    ]
    wiring = Wiring(r, dg.StaticPartitionsDefinition(r.partition_keys()), str(tmp_path), REGISTRY)
    assert funnel_assets(wiring) == [
        "questions_grounded",
        "questions_composed",
        "questions",
        "simple_cots",
        "long_cots",
        "four_phase",
        "difficulty",
        "sft_data",
        "dpo_pairs",
        "rl_prompts",
    ]
    graph = defs.resolve_asset_graph()
    by_group = {k.to_user_string(): graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert by_group["questions"] == "questions" and by_group["long_cots"] == "traces"
    assert by_group["sft_data"] == "datasets" and by_group["images"] == "images" and by_group["base_model"] == "models"


def test_a_toy_stage_through_the_registry_alone(tmp_path):
    r = recipe(tmp_path)
    home = tmp_path / "home"
    registry = (*REGISTRY, TOY_STAGE)
    defs = build_definitions(r, base_path=str(home), registry=registry)
    graph = defs.resolve_asset_graph()
    toy = graph.get(dg.AssetKey("toy_counts"))
    assert toy.group_name == "toys" and toy.parent_keys == {dg.AssetKey("images")}
    assert "toy_counts" in waves(defs)[1].assets
    assert "toy_counts" in funnel_assets(Wiring(r, toy.partitions_def, str(home), registry))
    assert "toy_counts" not in waves(build_definitions(r, base_path=str(home)))[1].assets

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            defs.assets,
            selection=["images", "images_quarantine", "toy_counts"],
            partition_key="s/1",
            resources=defs.resources,
            instance=instance,
        )
        assert result.success
        written = pq.read_table(home / "storage/toy_counts/s/1.parquet")
        images = pq.read_table(home / "storage/images/s/1.parquet")
        assert written.column("objects").to_pylist() == [len(o) for o in images.column("objects").to_pylist()]
        assert all(2 <= n <= 5 for n in written.column("objects").to_pylist()) and written.num_rows == 3
        meta = next(m.metadata for m in result.asset_materializations_for_node("toy_counts"))
        assert dict(meta["funnel_counts"].value) == {"images": 3, "kept": 3} and meta["by_family"].value == {"all": 3}
        checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
        assert checks["toy_counts_schema"] is True


def test_a_stage_that_calls_a_role_it_does_not_declare_fails_loudly(tmp_path):
    """Its code version hashes only the declared roles' settings: an undeclared call would go stale unnoticed."""

    def asks_the_verifier(run) -> StageResult:
        run.engine_for("verifier")
        raise AssertionError("engine_for should have refused the undeclared role")

    sneaky = Stage(
        "toy_sneaky",
        "toys",
        ins=["images"],
        artifact=TOY,
        build=asks_the_verifier,
        description="calls a role it does not declare",
        check="pandera ToySchema",
        settings=lambda r: r.stages.images,
    )
    r = recipe(tmp_path)
    defs = build_definitions(r, base_path=str(tmp_path / "home"), registry=(*REGISTRY, sneaky))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            defs.assets,
            selection=["images", "images_quarantine", "toy_sneaky"],
            partition_key="s/0",
            resources=defs.resources,
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.cause.message if failure.step_failure_data.error.cause else ""
    message += failure.step_failure_data.error.message
    assert "toy_sneaky called the model role 'verifier', which its registry entry does not declare" in message
