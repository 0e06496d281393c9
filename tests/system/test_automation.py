"""Declarative automation on a real instance: eager CPU assets, model assets on the cron, a watched folder whose new
shard file becomes a partition built alone, and the instance settings a bare CLI run installs."""

import io
import socket
import subprocess
import textwrap
import time
from datetime import UTC, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from PIL import Image

from lgt.recipe import load_recipe
from lgt_assets import build_definitions
from lgt_assets.automation import SHARDS, register_shards
from lgt_assets.registry import REGISTRY
from tests.system.cli import ROOT, dagster, fresh_env, start, stop

# the CPU chain, one aggregate that reads every partition (benchmark_suites) and one model stage (simple_cots)
ENTRIES = ("base_model", "images", "questions_grounded", "questions_composed", "questions", "benchmark_suites")
CPU = {"images", "images_quarantine", "questions_grounded", "questions_composed", "questions"}
MATERIALIZE = ("asset", "materialize", "-m", "definitions", "--select", "images,images_quarantine", "--partition")
OBJECT = pa.struct([("label", pa.string()), ("bbox", pa.list_(pa.float64()))])


# two small shards, no model anywhere before simple_cots
CPU_RECIPE = """
name: cpu
sources: [{name: synth, kind: synthetic_scenes, shards: 2, images_per_shard: 2, width: 96, height: 96, objects: [3, 4]}]
models:
  vlm: {backend: transformers, model: base_model}
  reasoner: {backend: transformers, model: base_model}
  verifier: {backend: transformers, model: base_model}
  small_solver: {backend: transformers, model: base_model}
stages:
  questions_grounded: {llm: {enabled: false}}
  questions_composed: {rewrite: {enabled: false}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shard_file(path, shard: int, rows: int = 2) -> None:
    """A shard file of `rows` distinct pictures, each with two boxed squares."""
    images, objects = [], []
    for i in range(rows):
        im = Image.new("RGB", (96, 64), (40 * shard + 10 * i, 90, 200))
        buf = io.BytesIO()
        im.save(buf, "PNG")
        images.append(buf.getvalue())
        objects.append(
            [{"label": "square", "bbox": [4.0, 4.0, 20.0, 20.0]}, {"label": "disc", "bbox": [50, 30, 70, 50]}]
        )
    table = pa.table(
        {
            "id": [f"s{shard}-{i}" for i in range(rows)],
            "image": pa.array(images, pa.binary()),
            "caption": [f"A square and a disc, picture {i} of shard {shard}." for i in range(rows)],
            "objects": pa.array(objects, pa.list_(OBJECT)),
        }
    )
    pq.write_table(table, path)


def recipe(tmp_path, checkpoint, enabled=True):
    (tmp_path / "inbox").mkdir(exist_ok=True)
    p = tmp_path / "r.yaml"
    p.write_text(
        textwrap.dedent(f"""
        name: auto
        sources:
          - {{name: synth, kind: synthetic_scenes, shards: 1, images_per_shard: 3, width: 128, height: 128,
             objects: [3, 5]}}
          - {{name: inbox, kind: parquet, path: inbox, watch: true,
             columns: {{image: image, caption: caption, id: id, objects: objects}}}}
        base_model: {{checkpoint: {checkpoint}}}
        models:
          vlm: {{backend: transformers, model: base_model}}
          reasoner: {{backend: transformers, model: base_model}}
          verifier: {{backend: transformers, model: base_model}}
          small_solver: {{backend: transformers, model: base_model}}
        stages:
          questions_grounded: {{llm: {{enabled: false}}}}
          questions_composed: {{rewrite: {{enabled: false}}}}
          benchmark_suites: {{suites: [{{name: held, kind: synthetic, like: synth, seed: 9, images: 3}}]}}
        automation: {{enabled: {str(enabled).lower()}, models_cron: "0 3 * * *"}}
        """)
    )
    return load_recipe(p)


def definitions(r, home, names=ENTRIES + ("simple_cots",)):
    return build_definitions(r, base_path=str(home), registry=[e for e in REGISTRY if e.name in names])


def requested(result) -> set[tuple[str, str | None]]:
    """(asset, partition) pairs a tick asks for."""
    return {
        (r.key.to_user_string(), p)
        for r in result.results
        if isinstance(r.key, dg.AssetKey)
        for p in result.get_requested_partitions(r.key)
    }


def materialize(defs, instance, names, partition=None):
    result = dg.materialize(
        defs.assets, selection=list(names), resources=defs.resources, instance=instance, partition_key=partition
    )
    assert result.success


def test_conditions_follow_the_pools(tmp_path, smollm2):
    graph = build_definitions(recipe(tmp_path, smollm2), base_path=str(tmp_path / "h")).resolve_asset_graph()
    labels = {k.to_user_string(): graph.get(k).automation_condition.get_label() for k in graph.get_all_asset_keys()}
    models = {"simple_cots", "long_cots", "four_phase", "difficulty", "benchmark_scores"}
    assert {k for k, v in labels.items() if v == "models_cron(0 3 * * *)"} == models | {
        "sft_checkpoint",
        "dpo_checkpoint",
    }
    assert {k for k, v in labels.items() if v == "eager"} == set(labels) - models - {"sft_checkpoint", "dpo_checkpoint"}


def test_a_new_shard_file_becomes_a_partition_built_alone_and_models_wait_for_the_cron(tmp_path, smollm2):
    r = recipe(tmp_path, smollm2)
    shard_file(tmp_path / "inbox" / "part-0.parquet", 0)
    defs = definitions(r, tmp_path / "home")
    with dg.instance_for_test() as instance:
        assert register_shards(instance, r) == ["synth/0", "inbox/0"]
        now, seconds = datetime.now(UTC), iter(range(0, 3600, 30))
        cursor = None

        def tick() -> set[tuple[str, str | None]]:
            nonlocal cursor
            when = now + timedelta(seconds=next(seconds))
            result = dg.evaluate_automation_conditions(
                defs=defs, instance=instance, evaluation_time=when, cursor=cursor
            )
            cursor = result.cursor
            return requested(result)

        # first tick: every missing CPU asset, every partition; never the model stage; the aggregate, whose parents
        # run in other runs (another partitioning), follows on the next tick
        assert tick() == {(a, p) for a in CPU for p in ("synth/0", "inbox/0")} | {("base_model", None)}
        materialize(defs, instance, ["base_model"])
        for p in ("synth/0", "inbox/0"):
            materialize(defs, instance, sorted(CPU), p)
        assert tick() == {("benchmark_suites", None)}
        materialize(defs, instance, ["benchmark_suites"])
        assert tick() == set()  # all built: nothing to do

        # a new file: the sensor adds exactly its partition; the next tick builds only it, then the aggregate
        shard_file(tmp_path / "inbox" / "part-1.parquet", 1)
        sensor = defs.get_sensor_def("shard_files")
        result = sensor(dg.build_sensor_context(instance=instance))
        (add,) = result.dynamic_partitions_requests
        assert (add.partitions_def_name, list(add.partition_keys)) == (SHARDS, ["inbox/1"])
        instance.add_dynamic_partitions(SHARDS, list(add.partition_keys))
        assert tick() == {(a, "inbox/1") for a in CPU}
        materialize(defs, instance, sorted(CPU), "inbox/1")
        assert tick() == {("benchmark_suites", None)}
        materialize(defs, instance, ["benchmark_suites"])
        stored = sorted(p.name for p in (tmp_path / "home" / "storage" / "questions" / "inbox").iterdir())
        assert stored == ["0.parquet", "1.parquet"]

        # an upstream edit: the CPU assets below it follow, the model stage does not
        materialize(defs, instance, ["images", "images_quarantine"], "synth/0")
        assert tick() == {(a, "synth/0") for a in ("questions_grounded", "questions_composed", "questions")}
        for a in ("questions_grounded", "questions_composed", "questions"):
            materialize(defs, instance, [a], "synth/0")
        assert tick() == {("benchmark_suites", None)}
        materialize(defs, instance, ["benchmark_suites"])
        assert tick() == set()

        # past the next 03:00 tick: the model stage, every partition at once
        cron = now.replace(hour=3, minute=1, second=0, microsecond=0)
        cron += timedelta(days=1) if cron <= now + timedelta(hours=1) else timedelta()
        result = dg.evaluate_automation_conditions(defs=defs, instance=instance, evaluation_time=cron, cursor=cursor)
        assert requested(result) == {("simple_cots", p) for p in ("synth/0", "inbox/0", "inbox/1")}


def test_schedule_and_sensors_start_as_the_recipe_says(tmp_path, smollm2):
    for enabled, status in ((True, dg.DefaultSensorStatus.RUNNING), (False, dg.DefaultSensorStatus.STOPPED)):
        defs = build_definitions(recipe(tmp_path, smollm2, enabled), base_path=str(tmp_path / "h"))
        repo = defs.get_repository_def()
        assert {s.name: s.default_status for s in repo.sensor_defs} == {"automation": status, "shard_files": status}
        (schedule,) = repo.schedule_defs
        assert (schedule.name, schedule.cron_schedule, schedule.default_status.value) == (
            "sources",
            "0 2 * * *",
            status.value,
        )
    with dg.instance_for_test() as instance:
        shard_file(tmp_path / "inbox" / "part-4.parquet", 4)
        r = recipe(tmp_path, smollm2)
        register_shards(instance, r)
        run = build_definitions(r, base_path=str(tmp_path / "h")).get_schedule_def("sources")(
            dg.build_schedule_context(instance=instance)
        )
        # one run reads every shard: the range runs from the first partition to the last
        assert run.tags["dagster/asset_partition_range_start"] == "synth/0"
        assert run.tags["dagster/asset_partition_range_end"] == "inbox/4"


def test_a_bare_cli_run_installs_the_instance_settings(tmp_path):
    env = fresh_env(tmp_path, CPU_RECIPE)
    home = tmp_path / "run" / "dagster"
    assert list(home.iterdir()) == []
    out = dagster(env, *MATERIALIZE, "synth/1")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (home / "dagster.yaml").read_bytes() == (ROOT / "dagster.yaml").read_bytes()
    # a new process on that home (the daemon, the UI, the next run) reads the project's settings
    code = (
        "import dagster as dg; i = dg.DagsterInstance.get(); "
        "print(i.run_retries_enabled, i.run_retries_max_retries, i.run_monitoring_enabled, "
        "i.get_concurrency_config().pool_config.default_pool_limit)"
    )
    got = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", code], env=env, capture_output=True, text=True)
    assert got.stdout.split() == ["True", "2", "True", "1"], got.stderr[-2000:]
    settings = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    assert settings["run_retries"]["max_retries"] == 2
    # the user's own file is never replaced
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    out = dagster(env, *MATERIALIZE, "synth/0")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"


def test_dagster_dev_builds_the_cpu_assets_without_a_click(tmp_path, monkeypatch):
    """`make ui`'s `dagster dev` on a fresh home: the daemon's automation sensor builds every missing CPU asset of
    every partition by itself (one ranged run), and no model stage."""
    env = fresh_env(tmp_path, CPU_RECIPE)
    storage = tmp_path / "run" / "lgt" / "storage"
    want = {f"{a}/synth/{s}.parquet" for a in CPU for s in (0, 1)}
    proc = start(env, "dev", "-m", "definitions", "-h", "127.0.0.1", "-p", str(free_port()), log=tmp_path / "dev.log")
    try:
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            got = {str(p.relative_to(storage)) for p in storage.rglob("*.parquet")} if storage.exists() else set()
            if want <= got:
                break
            assert proc.poll() is None, (tmp_path / "dev.log").read_text()[-3000:]
            time.sleep(5)
        else:
            raise AssertionError(f"only {sorted(got)} after 7 minutes\n" + (tmp_path / "dev.log").read_text()[-3000:])
        time.sleep(5)  # let the run record its success
    finally:
        stop(proc)
    assert not (storage / "simple_cots").exists()  # the model stage waits for the cron
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])  # its dagster.yaml names the folder through the variable
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert runs and all(r.tags.get("dagster/from_automation_condition") == "true" for r in runs)
        ranged = [r for r in runs if "images" in {k.to_user_string() for k in r.asset_selection or ()}]
        assert [
            (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"]) for r in ranged
        ] == [("synth/0", "synth/1")]
