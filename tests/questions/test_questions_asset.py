"""The three question assets in Dagster with real SmolLM2 calls (LLM-written MCQs, rewrites, the verifier)."""

import textwrap

import dagster as dg
import pyarrow.parquet as pq

from lgt.ids import in_share
from lgt.recipe import load_recipe
from lgt_assets import build_definitions
from schemas import QUESTION_ITEMS_ARROW, QUESTIONS_ARROW


def recipe_file(tmp_path, checkpoint):
    demo = load_recipe().stages.questions_grounded.attributes
    attrs = "\n".join(f"          {k}: {{noun: {a.noun}, values: [{', '.join(a.values)}]}}" for k, a in demo.items())
    p = tmp_path / "r.yaml"
    p.write_text(
        textwrap.dedent("""
        name: q
        sources: [{name: s, kind: synthetic_scenes, shards: 1, images_per_shard: 3, objects: [5, 9]}]
        base_model: {checkpoint: %s}
        models:
          vlm: {backend: transformers, model: base_model}
          reasoner: {backend: transformers, model: base_model, batch_size: 8}
          verifier: {backend: transformers, model: base_model, sampling: {temperature: 0, max_new_tokens: 12}}
          small_solver: {backend: transformers, model: base_model}
        stages:
          questions_grounded:
            attributes:
        %s
            llm: {enabled: true, share: 0.48, questions_per_image: 2, sampling: {max_new_tokens: 48}}
          questions_composed:
            compositions: {chain: {max_per_image: 1}, combine: {max_per_image: 1}}
            rewrite: {enabled: true, sampling: {temperature: 0, max_new_tokens: 32}}
          questions: {preview_questions: 3}
        """)
        % (checkpoint, attrs.strip() and textwrap.indent(attrs, "  "))
    )
    return p


def materialize(defs, instance):
    graph = defs.resolve_asset_graph()  # the images group and the questions group, as the registry declares them
    selection = [k for k in graph.get_all_asset_keys() if graph.get(k).group_name in ("images", "questions")]
    return dg.materialize(
        defs.assets, selection=selection, partition_key="s/0", resources=defs.resources, instance=instance
    )


def test_question_assets_with_real_llm_calls_then_a_rerun_from_the_cache(smollm2, tmp_path):
    path = recipe_file(tmp_path, smollm2)
    home = tmp_path / "home"
    defs = build_definitions(load_recipe(path), base_path=str(home))
    instance = dg.DagsterInstance.ephemeral()
    assert dg.materialize(defs.assets, selection=["base_model"], resources=defs.resources, instance=instance).success
    first = materialize(defs, instance)
    assert first.success
    checks = {c.check_name: c.passed for c in first.get_asset_check_evaluations()}
    assert checks["questions_grounded_schema"] and checks["questions_composed_schema"] and checks["questions_schema"]
    meta = {m.asset_key.path[-1]: m.materialization.metadata for m in first.get_asset_materialization_events()}

    g = pq.read_table(home / "storage/questions_grounded/s/0.parquet")
    c = pq.read_table(home / "storage/questions_composed/s/0.parquet")
    q = pq.read_table(home / "storage/questions/s/0.parquet")
    assert g.schema.equals(QUESTION_ITEMS_ARROW) and q.schema.equals(QUESTIONS_ARROW)
    assert g.num_rows > 0 and c.num_rows > 0
    assert q.num_rows == g.num_rows + c.num_rows - meta["questions"]["rejects_by_reason"].value.get("duplicate", 0)

    mg = meta["questions_grounded"]
    image_ids = pq.read_table(home / "storage/images/s/0.parquet").column("image_id").to_pylist()
    sent = sum(in_share(0.48, i) for i in image_ids)  # the images in the writer's share: 2 of 3
    assert 1 <= sent < len(image_ids)
    assert mg["llm/reasoner/calls"].value == sent  # one writer call per image sent
    funnel = mg["funnel"].value
    assert f"| llm/outputs | {sent} |" in funnel
    rejects = mg["rejects_by_reason"].value
    parse_rejects = sum(
        rejects.get(k, 0)
        for k in (
            "no_items",
            "malformed",
            "options_not_distinct",
            "answer_not_an_option",
            "answer_matches_several_options",
            "question_contains_answer",
        )
    )
    parsed = int(funnel.split("| llm/parsed | ")[1].split(" |")[0])
    assert parse_rejects + parsed >= 2  # every output is accounted for: parsed items or a counted reject
    assert mg["preview"].value.count("data:image/png;base64,") >= 1

    statuses = c.column("rewrite").to_pylist()
    assert set(statuses) <= {
        "kept",
        "rewrite_unparseable",
        "rewrite_unchanged",
        "rewrite_leaks_answer",
        "verifier_disagrees",
        "verifier_failed",
        "rewrite_failed",
    }
    mc = meta["questions_composed"]
    assert mc["llm/reasoner/calls"].value == c.num_rows  # one rewrite per composed question
    for row in c.to_pylist():  # a dropped rewrite keeps the templated form
        assert row["question"] == row["templated_question"] or row["rewrite"] == "kept"
        assert len(row["parents"]) == row["hops"] and set(row["parents"]) <= set(g.column("question_id").to_pylist())

    again = materialize(defs, instance)  # the call cache makes the rerun free
    meta2 = {m.asset_key.path[-1]: m.materialization.metadata for m in again.get_asset_materialization_events()}
    assert meta2["questions_grounded"]["llm/reasoner/calls"].value == 0
    assert meta2["questions_grounded"]["llm/reasoner/cache_hits"].value == 2
    assert meta2["questions_composed"]["llm/reasoner/calls"].value == 0
    assert pq.read_table(home / "storage/questions/s/0.parquet").equals(q)
