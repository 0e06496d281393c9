"""The trace, dataset and export assets in Dagster, end to end with real SmolLM2 calls on one small partition."""

import json
import textwrap

import dagster as dg
import datasets
import pyarrow.parquet as pq

from lgt.ids import in_share
from lgt.recipe import load_recipe
from lgt.storage import table_digest
from lgt_assets import build_definitions
from lgt_assets.selection import waves

LLM_STAGES = ("simple_cots", "long_cots", "four_phase", "difficulty")


def recipe_file(tmp_path, checkpoint):
    p = tmp_path / "r.yaml"
    p.write_text(
        textwrap.dedent(f"""
        name: t
        sources: [{{name: s, kind: synthetic_scenes, shards: 1, images_per_shard: 2, objects: [4, 7]}}]
        base_model: {{checkpoint: {checkpoint}}}
        models:
          vlm: {{backend: transformers, model: base_model}}
          reasoner: {{backend: transformers, model: base_model}}
          verifier: {{backend: transformers, model: base_model, sampling: {{temperature: 0, max_new_tokens: 8}}}}
          small_solver: {{backend: transformers, model: base_model}}
        stages:
          questions_grounded:
            attributes: {{color: {{noun: colour, values: [red, green, blue, yellow, purple, orange]}}}}
          simple_cots: {{share: 0.15, sampling: {{n: 3, temperature: 0.7, top_p: 0.8, max_new_tokens: 40}}}}
          long_cots: {{share: 0.5, sampling: {{n: 2, temperature: 0.7, top_p: 0.8, top_k: 50, max_new_tokens: 24}}}}
          four_phase:
            share: 0.1
            min_words: 5
            sampling: {{n: 1, temperature: 1.0, top_p: 0.95, max_new_tokens: 40}}
          difficulty: {{share: 0.15, sampling: {{n: 2, temperature: 0.7, top_p: 0.8, max_new_tokens: 16}}}}
          sft_data: {{fraction: 1.0}}
          rl_prompts: {{rl_holdout: 2}}
          exports: {{trl_images: true}}
        """)
    )
    return p


def _run(defs, instance, selection, partition=None):
    return dg.materialize(
        defs.assets,
        selection=selection,
        partition_key=partition,
        resources=defs.resources,
        instance=instance,
        raise_on_error=True,
    )


def _meta(result, asset):
    return next(m.metadata for m in result.asset_materializations_for_node(asset))


def test_traces_datasets_and_exports_materialize_account_for_every_sample_and_rerun_from_cache(tmp_path, smollm2):
    recipe = load_recipe(recipe_file(tmp_path, smollm2))
    home = tmp_path / "home"
    defs = build_definitions(recipe, base_path=str(home))
    sharded = waves(defs)[1].assets  # every <source>/<shard> asset the registry declares
    with dg.instance_for_test() as instance:
        assert _run(defs, instance, ["base_model"]).success
        first = _run(defs, instance, sharded, "s/0")
        assert first.success
        checks = [c for c in first.get_asset_check_evaluations()]
        assert len(sharded) == 12 and len(checks) == len(sharded) and all(c.passed for c in checks)  # one check each

        questions = pq.read_table(home / "storage/questions/s/0.parquet")
        simple = pq.read_table(home / "storage/simple_cots/s/0.parquet")
        # every sample is kept or counted by reason
        # each stage sends the questions in its share; the four-phase share nests inside the others
        ids = questions.column("question_id").to_pylist()
        sent = [q for q in ids if in_share(0.15, q)]
        assert 2 <= len(sent) < len(ids) and {q for q in ids if in_share(0.1, q)} <= set(sent)
        m = _meta(first, "simple_cots")
        funnel, rejects = dict(m["funnel_counts"].value), m["rejects_by_reason"].value
        assert funnel["sent"] == len(sent) and funnel["samples"] == 3 * len(sent)
        assert funnel["kept"] + sum(rejects.values()) == 3 * len(sent) and funnel["kept"] == simple.num_rows
        assert set(simple.column("question_id").to_pylist()) <= set(sent)
        assert m["llm/vlm/calls"].value == 3 * len(sent)
        long_m = _meta(first, "long_cots")
        expanded = sum(in_share(0.5, c) for c in simple.column("cot_id").to_pylist())
        assert dict(long_m["funnel_counts"].value)["samples"] == 2 * expanded
        assert (
            dict(long_m["funnel_counts"].value)["kept"] + sum(long_m["rejects_by_reason"].value.values())
            == 2 * expanded
        )
        fp = dict(_meta(first, "four_phase")["funnel_counts"].value)
        assert fp["sent"] == fp["samples"] == sum(in_share(0.1, q) for q in ids)
        diff = pq.read_table(home / "storage/difficulty/s/0.parquet").to_pylist()
        # k attempts, and the blind one from the text alone (its letter, or "" when none could be read)
        assert sorted(d["question_id"] for d in diff) == sorted(sent)
        assert all(d["k"] == 2 and len(d["call_keys"]) == 3 for d in diff)
        assert all(d["blind_choice"] in ("", "A", "B", "C", "D") for d in diff)
        assert dict(_meta(first, "difficulty")["funnel_counts"].value)["blind_attempts"] == len(sent)
        rl = pq.read_table(home / "storage/rl_prompts/s/0.parquet")
        # two questions held out for RL, kept out of SFT and DPO; pass rates where rated
        assert rl.num_rows == min(2, questions.num_rows)
        trained = set()
        for a in ("sft_data", "dpo_pairs"):
            trained.update(pq.read_table(home / f"storage/{a}/s/0.parquet")["question_id"].to_pylist())
        assert not trained & set(rl["question_id"].to_pylist())
        rated = {d["question_id"]: d["pass_rate"] for d in diff}
        for r in rl.to_pylist():
            assert (
                (r["pass_rate"] == rated[r["question_id"]])
                if r["question_id"] in rated
                else r["pass_rate"] != r["pass_rate"]
            )

        # the export reads every partition and writes loadable files and a card with the funnel
        exported = _run(defs, instance, ["exports"])
        card = (home / "exports/t/README.md").read_text()
        assert "simple_cots" in card and "recipe" in card.lower() and recipe.digest() in card
        assert str(funnel["samples"]) in card
        rl_splits = {f"rl_stage{s}" for s in rl["stage"].to_pylist()}  # an empty split's file does not load
        rl_files = [str(p) for split in rl_splits for p in (home / "exports/t/hf").glob(f"{split}/*.parquet")]
        ds = datasets.load_dataset("parquet", data_files=rl_files, split="train")
        assert len(ds) == rl.num_rows
        assert ds[0]["image"].size[0] > 0
        manifest = _meta(exported, "exports")
        assert manifest["dagster/row_count"].value > 0

        # a rerun is served by the call cache and writes the same tables
        before = {a: pq.read_table(home / f"storage/{a}/s/0.parquet") for a in sharded if a[:6] != "images"}
        again = _run(defs, instance, sharded, "s/0")
        for stage in LLM_STAGES:
            meta = _meta(again, stage)
            calls = {k: v.value for k, v in meta.items() if k.startswith("llm/") and k.endswith("/calls")}
            assert calls and all(v == 0 for v in calls.values()), (stage, calls)
        for a, t in before.items():  # digests: NaN pass rates compare unequal in Table.equals
            assert table_digest(pq.read_table(home / f"storage/{a}/s/0.parquet")) == table_digest(t), a
        assert json.loads(json.dumps(funnel)) == dict(_meta(again, "simple_cots")["funnel_counts"].value)
