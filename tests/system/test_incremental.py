"""Incremental by lineage (issue 14): a prompt edit marks exactly its stage stale and costs only the calls whose
rendered prompt changed; a 1-row change of a parquet source costs about its share of the cold run's calls and
leaves every other image's rows byte-identical. Real SmolLM2 calls through Dagster in process.

Dagster 1.13's stale status does not propagate: an asset is STALE when its own code version changed or a parent's
data version changed since it was built (`CachingStaleStatusResolver._get_stale_causes_materialized`). So a prompt
edit first marks the stage that renders it; its children turn STALE once it is rebuilt with new content (the data
version is a content hash), and theirs after them. An edit inside a Jinja comment is new content too: every row
records the versions (file hashes) of the prompts it was made with.
"""

from __future__ import annotations

import copy
import shutil
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime

from lgt.engines.cache import CallCache
from lgt.ids import in_share
from lgt.images.sources.synthetic import SyntheticScenesSource, read_synthetic
from lgt.images.validate import image_id_of
from lgt.prompts import PROMPTS_DIR
from lgt.recipe import load_recipe
from lgt.traces.long_cots import long_cot_requests
from lgt_assets import build_definitions
from tests.fixtures import with_shares

# the data path: everything the training sets need, and the exports that read every shard
PARTITIONED = (
    "images",
    "images_quarantine",
    "questions_grounded",
    "questions_composed",
    "questions",
    "simple_cots",
    "long_cots",
    "difficulty",
    "sft_data",
    "dpo_pairs",
    "rl_prompts",
)
DATA_PATH = ("base_model", *PARTITIONED, "exports")
# a thinking budget with min_tokens 0 makes every sample exactly two calls: the thought, then the answer after it
BUDGET = "thinking: {max_tokens: 12, answer_max_tokens: 6}"


def models_yaml(checkpoint: Path) -> str:
    return textwrap.dedent(f"""
        base_model: {{checkpoint: {checkpoint}}}
        models:
          vlm: {{backend: transformers, model: base_model}}
          reasoner: {{backend: transformers, model: base_model}}
          verifier: {{backend: transformers, model: base_model, sampling: {{temperature: 0, max_new_tokens: 8}}}}
          small_solver: {{backend: transformers, model: base_model}}
        """)


def materialize(defs: dg.Definitions, instance: dg.DagsterInstance, assets: Iterable[str]) -> dict[str, int]:
    """Materialize `assets` (of the data path) in the runs `make demo` would use; the engine calls per asset.

    A ranged step puts its engine stats (the whole step's) on every partition's materialization, so one per asset
    and run is read.
    """
    wanted = set(assets)
    partitions = defs.resolve_asset_graph().get(dg.AssetKey("images")).partitions_def.get_partition_keys()
    calls: dict[str, int] = {}
    for selection in (["base_model"], [a for a in PARTITIONED if a in wanted], ["exports"]):
        selection = [a for a in selection if a in wanted]
        if not selection:
            continue
        tags = {}
        if selection[0] in PARTITIONED:
            tags = {
                "dagster/asset_partition_range_start": partitions[0],
                "dagster/asset_partition_range_end": partitions[-1],
            }
        result = dg.materialize(
            defs.assets, selection=selection, resources=defs.resources, instance=instance, tags=tags
        )
        assert result.success
        seen: set[str] = set()
        for event in result.get_asset_materialization_events():
            name = event.asset_key.to_user_string()
            if name in seen:
                continue
            seen.add(name)
            md = event.materialization.metadata
            calls[name] = calls.get(name, 0) + sum(
                v.value for k, v in md.items() if k.startswith("llm/") and k.endswith("/calls")
            )
    return calls


def statuses(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict[tuple[str, str | None], StaleStatus]:
    """Every (asset, partition) of the data path and its stale status, as the UI's GraphQL reads it."""
    graph = defs.resolve_asset_graph()
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)
    out = {}
    for name in DATA_PATH:
        pdef = graph.get(dg.AssetKey(name)).partitions_def
        for pk in pdef.get_partition_keys() if pdef else [None]:
            out[(name, pk)] = resolver.get_status(dg.AssetKey(name), pk)
    return out


def stale(status: dict[tuple[str, str | None], StaleStatus]) -> set[str]:
    assert StaleStatus.MISSING not in status.values()
    return {name for (name, _), s in status.items() if s == StaleStatus.STALE}


def code_versions(defs: dg.Definitions) -> dict[str, str | None]:
    graph = defs.resolve_asset_graph()
    return {name: graph.get(dg.AssetKey(name)).code_version for name in DATA_PATH}


def children(defs: dg.Definitions, name: str) -> set[str]:
    graph = defs.resolve_asset_graph()
    return {k.to_user_string() for k in graph.get(dg.AssetKey(name)).child_keys} & set(DATA_PATH)


# --- a prompt edit ---------------------------------------------------------------------------------------------


SENT, RATED, LONG = 8, 2, 0.5  # questions sent to the simple CoTs and rated of the shard's; share of CoTs expanded


def stage_recipe(tmp_path: Path, checkpoint: Path) -> Path:
    """The recipe, its shares the ones that send exactly SENT questions to simple_cots and RATED to difficulty
    (found on the questions the stages' own code builds, no model calls; the smaller share nests in the larger)."""
    p = tmp_path / "r.yaml"
    p.write_text(with_shares(lambda simple, rated: _stage_recipe(checkpoint, simple, rated), SENT, RATED))
    return p


def _stage_recipe(checkpoint: Path, simple: float, rated: float) -> str:
    return (
        textwrap.dedent("""
        name: incremental
        sources: [{name: s, kind: synthetic_scenes, shards: 1, images_per_shard: 6, objects: [3, 8]}]
        """)
        + models_yaml(checkpoint)
        + textwrap.dedent(f"""
        stages:
          questions_grounded: {{llm: {{enabled: false}}}}
          questions_composed: {{rewrite: {{enabled: false}}}}
          simple_cots: {{share: {simple!r}, sampling: {{n: 1, temperature: 0.7, top_p: 0.8, {BUDGET}}}}}
          long_cots: {{share: {LONG}, sampling: {{n: 1, temperature: 0.7, top_p: 0.8, {BUDGET}}}}}
          four_phase: {{enabled: false}}
          difficulty: {{share: {rated!r}, blind: false, sampling: {{n: 2, temperature: 0.7, max_new_tokens: 8}}}}
          sft_data: {{fraction: 1.0}}
          rl_prompts: {{rl_holdout: 1}}
          exports: {{trl_images: false}}
        """)
    )


def rendered_long_cot_requests(home: Path, recipe, prompts: Path, monkeypatch) -> list[tuple]:
    """long_cots' requests as rendered from the stored shard under the prompts in `prompts`: what the model reads."""
    monkeypatch.setenv("LGT_PROMPTS", str(prompts))
    t = {n: pq.read_table(home / f"storage/{n}/s/0.parquet") for n in ("simple_cots", "questions", "images")}
    _, requests = long_cot_requests(
        t["simple_cots"],
        t["questions"],
        t["images"],
        recipe.stages.long_cots,
        list(recipe.stages.questions_grounded.attributes),
    )
    return [(r.messages[0]["content"], r.prefill, r.sampling.seed) for r in requests]


def test_a_prompt_edit_marks_its_stage_stale_and_calls_only_for_changed_prompts(tmp_path, smollm2, monkeypatch):
    monkeypatch.delenv("LGT_PROMPTS", raising=False)
    recipe = load_recipe(stage_recipe(tmp_path, smollm2))
    home = tmp_path / "home"
    cache = CallCache(home / "cache" / "calls.sqlite")
    with dg.instance_for_test() as instance:
        defs = build_definitions(recipe, base_path=str(home))
        cold = materialize(defs, instance, DATA_PATH)
        # the questions the asset sent are those the recipe's shares name
        stages = recipe.stages
        ids = pq.read_table(home / "storage/questions/s/0.parquet").column("question_id").to_pylist()
        sent = {q for q in ids if in_share(stages.simple_cots.share, q)}
        rated = {q for q in ids if in_share(stages.difficulty.share, q)}
        assert (len(sent), len(rated)) == (SENT, RATED) and rated <= sent
        assert set(pq.read_table(home / "storage/difficulty/s/0.parquet")["question_id"].to_pylist()) == rated
        assert cold["simple_cots"] == 2 * SENT and cold["long_cots"] > 0 and cold["difficulty"] == 2 * RATED
        assert sum(cold.values()) == cache.count()  # every call made is one cache row
        assert stale(statuses(defs, instance)) == set()
        versions = code_versions(defs)

        # an unedited copy of the prompts: same content, same versions, nothing stale
        copies = {}
        for name in ("copy", "comment", "wording"):
            copies[name] = tmp_path / f"prompts-{name}"
            shutil.copytree(PROMPTS_DIR, copies[name])
        monkeypatch.setenv("LGT_PROMPTS", str(copies["copy"]))
        assert stale(statuses(build_definitions(recipe, base_path=str(home)), instance)) == set()

        # (a) inside a Jinja comment: long_cot.j2 is rendered only by long_cots (prompts/README.md)
        f = copies["comment"] / "long_cot.j2"
        f.write_text(f.read_text().replace("{# LPT stage C:", "{# Edited by a test. LPT stage C:"))
        before = rendered_long_cot_requests(home, recipe, PROMPTS_DIR, monkeypatch)
        assert rendered_long_cot_requests(home, recipe, copies["comment"], monkeypatch) == before
        defs = build_definitions(recipe, base_path=str(home))
        # the assets whose code version hashes the prompt, read from the graph: long_cots alone
        assert {n for n, v in code_versions(defs).items() if v != versions[n]} == {"long_cots"}
        assert stale(statuses(defs, instance)) == {"long_cots"}
        old = pq.read_table(home / "storage/long_cots/s/0.parquet")
        assert materialize(defs, instance, ["long_cots"]) == {"long_cots": 0}
        new = pq.read_table(home / "storage/long_cots/s/0.parquet")
        # the same rows but for the lineage column: each row records its prompts' versions, hashes of the files
        assert new.drop_columns(["prompt_version"]) == old.drop_columns(["prompt_version"])
        assert new["prompt_version"] != old["prompt_version"]
        # so long_cots has a new data version, and its children are stale; rebuilding them calls nothing
        assert children(defs, "long_cots") == {"sft_data", "dpo_pairs", "exports"}
        assert stale(statuses(defs, instance)) == {"sft_data", "dpo_pairs", "exports"}
        assert sum(materialize(defs, instance, ["sft_data", "dpo_pairs", "exports"]).values()) == 0
        assert stale(statuses(defs, instance)) == set()

        # (b) a wording edit in the branch for the "text" answer format: only those questions' prompts change
        f = copies["wording"] / "long_cot.j2"
        edited = f.read_text().replace(
            "In the answer, write only the text of your chosen option, exactly as it is given.",
            "In the answer, copy the text of your chosen option word for word.",
        )
        assert edited != f.read_text()
        f.write_text(edited)
        after = rendered_long_cot_requests(home, recipe, copies["wording"], monkeypatch)
        changed = sum(a != b for a, b in zip(before, after))
        assert len(before) == len(after) and 0 < changed < len(before)
        questions = pq.read_table(home / "storage/questions/s/0.parquet").to_pylist()
        text_format = {q["question_id"] for q in questions if q["answer_format"] == "text"}
        cots = pq.read_table(home / "storage/simple_cots/s/0.parquet")
        # long_cots expands the simple CoTs in its share, one request each (n = 1)
        picked = [c for c in cots.to_pylist() if in_share(LONG, c["cot_id"])]
        assert changed == sum(c["question_id"] in text_format for c in picked)

        defs = build_definitions(recipe, base_path=str(home))
        assert {n for n, v in code_versions(defs).items() if v != versions[n]} == {"long_cots"}
        assert stale(statuses(defs, instance)) == {"long_cots"}
        rows = cache.count()
        calls = materialize(defs, instance, ["long_cots"])
        assert calls == {"long_cots": 2 * changed}  # two calls per budgeted sample, only where the prompt changed
        assert cache.count() - rows == 2 * changed
        assert stale(statuses(defs, instance)) == {"sft_data", "dpo_pairs", "exports"}

        # the whole data path again: nothing left to call, everything fresh
        calls = materialize(defs, instance, DATA_PATH)
        assert sum(calls.values()) == 0 and set(calls) == set(DATA_PATH)
        assert stale(statuses(defs, instance)) == set()


# --- 1 row of a parquet source ---------------------------------------------------------------------------------

ROWS, SHARDS, CHANGED = 12, 2, 9  # row 9: in shard 1 (rows 6-11), not its first
COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "gray", "black", "white", "cyan"]


def scene_rows(n: int) -> list[dict[str, Any]]:
    """n synthetic scenes as parquet rows: the image struct, caption, id and objects with attribute pairs."""
    src = SyntheticScenesSource(
        kind="synthetic_scenes", name="gen", images_per_shard=n, width=256, height=256, objects=(3, 6)
    )
    return [
        {
            "id": r.source_id,
            "image": {"bytes": r.image_bytes, "path": r.image_path},
            "caption": r.caption,
            "objects": [
                {
                    "label": o.label,
                    "bbox": [float(v) for v in o.bbox],
                    "object_id": o.object_id,
                    "attributes": [{"key": k, "value": v} for k, v in o.attributes.items()],
                }
                for o in r.objects
            ],
        }
        for r in read_synthetic(src, 0)
    ]


def write_source(rows: list[dict[str, Any]], folder: Path) -> None:
    """Two files, so a shard boundary falls inside one of them (6 rows per shard, 8 rows in the first file)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate((rows[:8], rows[8:])):
        pq.write_table(pa.Table.from_pylist(part), folder / f"part-{i}.parquet")


def source_recipe(tmp_path: Path, source: Path, checkpoint: Path) -> Path:
    p = tmp_path / "rows.yaml"
    p.write_text(
        textwrap.dedent(f"""
        name: incremental-rows
        sources:
          - name: p
            kind: parquet
            path: {source}
            shards: {SHARDS}
            exhaustive: true
            columns: {{image: image, caption: caption, id: id, objects: objects}}
        """)
        + models_yaml(checkpoint)
        + textwrap.dedent(f"""
        stages:
          questions_grounded:
            attributes: {{color: {{noun: colour, values: [{", ".join(COLORS)}]}}}}
            families: {{attribute: {{max_per_image: 1}}}}
            compose_support: false
          questions_composed: {{compositions: {{}}}}
          simple_cots: {{sampling: {{n: 1, temperature: 0.7, top_p: 0.8, {BUDGET}}}}}
          long_cots: {{sampling: {{n: 1, temperature: 0.7, top_p: 0.8, {BUDGET}}}}}
          four_phase: {{enabled: false}}
          difficulty: {{blind: false, sampling: {{n: 1, temperature: 0.7, max_new_tokens: 6}}}}
          sft_data: {{fraction: 1.0}}
          exports: {{trl_images: false}}
        """)
    )
    return p


def rows_of_other_images(home: Path, image_id: str) -> dict[str, list[str]]:
    """Every partitioned table's rows of the images other than `image_id`, each as canonical text, sorted."""
    out = {}
    for name in PARTITIONED:
        rows = []
        for shard in range(SHARDS):
            for r in pq.read_table(home / f"storage/{name}/p/{shard}.parquet").to_pylist():
                if r.get("image_id") != image_id:
                    rows.append(repr(sorted(r.items())))
        out[name] = sorted(rows)
    return out


def test_one_changed_row_costs_its_share_of_calls_and_leaves_other_rows_identical(tmp_path, smollm2, monkeypatch):
    """1 row of 12 is 8.3 %: the issue's bound, 1.5 x the changed share (1.5 % for 1 %), is 12.5 % here.

    12 rows keep the test near two minutes on two cores; benchmarks/incremental.py measures 1 % of 200 rows under
    the demo's shares.
    """
    monkeypatch.delenv("LGT_PROMPTS", raising=False)
    rows = scene_rows(ROWS)
    source = tmp_path / "source"
    write_source(rows, source)
    recipe = load_recipe(source_recipe(tmp_path, source, smollm2))
    home = tmp_path / "home"
    cache = CallCache(home / "cache" / "calls.sqlite")
    changed_id = image_id_of(rows[CHANGED]["image"]["bytes"])  # the id hashes the image: a caption or box edit keeps it
    with dg.instance_for_test() as instance:
        cold = materialize(build_definitions(recipe, base_path=str(home)), instance, DATA_PATH)
        assert sum(cold.values()) == cache.count()
        # at most one attribute question per image, each sent once: two calls per simple and long CoT, one attempt
        asked = sum(pq.read_metadata(home / f"storage/questions/p/{s}.parquet").num_rows for s in range(SHARDS))
        assert ROWS // 2 < asked <= ROWS
        assert cold["simple_cots"] == 2 * asked and cold["difficulty"] == asked and cold["long_cots"] > 0
        before = rows_of_other_images(home, changed_id)
        shard_0 = {n: (home / f"storage/{n}/p/0.parquet").read_bytes() for n in PARTITIONED}

        # one object of one row changes colour; the file is rewritten in place, the recipe is the same
        edited = copy.deepcopy(rows)
        attrs = edited[CHANGED]["objects"][0]["attributes"]
        color = next(a for a in attrs if a["key"] == "color")
        color["value"] = next(c for c in COLORS if c != color["value"])
        write_source(edited, source)
        incremental = materialize(build_definitions(recipe, base_path=str(home)), instance, DATA_PATH)

    ratio = sum(incremental.values()) / sum(cold.values())
    assert 0 < ratio <= 1.5 / ROWS, (incremental, cold)
    # exactly the changed image's calls, whose stand-in lists the new colour: per question its simple CoT (two
    # calls) and its attempt (one), per kept simple CoT its expansion (two)
    mine = {
        n: sum(r["image_id"] == changed_id for r in pq.read_table(home / f"storage/{n}/p/1.parquet").to_pylist())
        for n in ("questions", "simple_cots")
    }
    assert mine["questions"] >= 1
    assert incremental["simple_cots"] == 2 * mine["questions"] and incremental["difficulty"] == mine["questions"]
    assert incremental["long_cots"] == 2 * mine["simple_cots"]
    assert sum(incremental.values()) == 3 * mine["questions"] + 2 * mine["simple_cots"]
    assert rows_of_other_images(home, changed_id) == before
    # the shard without the changed row was rebuilt too (one ranged run), into the same bytes
    assert {n: (home / f"storage/{n}/p/0.parquet").read_bytes() for n in PARTITIONED} == shard_0
