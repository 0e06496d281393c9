"""The whole graph through Dagster on one small partition: real SmolLM2 calls, real TRL SFT and DPO, the held-out
synthetic benchmark, the base model and both checkpoints scored through the engine layer, and the report."""

import textwrap
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
from safetensors.torch import load_file

from lgt.evaluation.synthetic import asked
from lgt.recipe import load_recipe
from lgt_assets import build_definitions
from lgt_assets.selection import waves
from tests.fixtures import with_shares

MODELS = ("base_model", "sft_checkpoint", "dpo_checkpoint")


def recipe_file(tmp_path, checkpoint):
    """The recipe, its shares the ones that send 8 of the shard's questions to simple_cots and 2 to difficulty
    (found on the questions the stages' own code builds, no model calls)."""
    p = tmp_path / "r.yaml"
    p.write_text(with_shares(lambda simple, rated: _recipe(checkpoint, simple, rated), 8, 2))
    return p


def _recipe(checkpoint, simple: float, rated: float) -> str:
    budget = "thinking: {max_tokens: 32, answer_max_tokens: 8}"
    return textwrap.dedent(f"""
        name: e2e
        sources: [{{name: s, kind: synthetic_scenes, shards: 1, images_per_shard: 6, objects: [3, 8]}}]
        base_model: {{checkpoint: {checkpoint}}}
        models:
          vlm: {{backend: transformers, model: base_model}}
          reasoner: {{backend: transformers, model: base_model}}
          verifier: {{backend: transformers, model: base_model, sampling: {{temperature: 0, max_new_tokens: 8}}}}
          small_solver: {{backend: transformers, model: base_model}}
        stages:
          questions_grounded: {{llm: {{enabled: false}}}}
          questions_composed: {{rewrite: {{enabled: false}}}}
          simple_cots: {{share: {simple!r}, sampling: {{n: 4, temperature: 0.7, top_p: 0.8, {budget}}}}}
          long_cots: {{share: 0.2, sampling: {{n: 2, temperature: 0.7, top_p: 0.8, {budget}}}}}
          four_phase: {{enabled: false}}
          difficulty: {{share: {rated!r}, blind: false, sampling: {{n: 2, temperature: 0.7, max_new_tokens: 8}}}}
          sft_data: {{fraction: 1.0}}
          rl_prompts: {{rl_holdout: 1}}
          exports: {{trl_images: false}}
          sft_checkpoint: {{learning_rate: 1.0e-4, max_steps: 2, batch_size: 2, gradient_accumulation: 1,
                            max_length: 768}}
          dpo_checkpoint: {{learning_rate: 2.0e-5, max_steps: 1, batch_size: 2, gradient_accumulation: 1,
                            max_length: 768}}
          benchmark_suites:
            suites: [{{name: held, kind: synthetic, like: s, seed: 7, images: 6, max_questions: 12}}]
          benchmark_scores: {{sampling: {{n: 1, temperature: 0.0, {budget}}}}}
        """)


def _meta(result, asset):
    return next(m.metadata for m in result.asset_materializations_for_node(asset))


def test_base_and_trained_models_scored_on_the_held_out_benchmark_end_to_end(tmp_path, smollm2):
    recipe = load_recipe(recipe_file(tmp_path, smollm2))
    home = tmp_path / "home"
    defs = build_definitions(recipe, base_path=str(home))
    plan = waves(defs)
    assert [w.assets for w in plan][2:] == [
        ["benchmark_suites", "dpo_checkpoint", "exports", "sft_checkpoint"],
        ["benchmark_scores"],
        ["report"],
    ]
    with dg.instance_for_test() as instance:
        results = {}
        for w in plan:  # as `make demo` runs them: one run per wave, a partitioned wave over its whole range
            tags = {}
            if w.partitions:
                tags = {
                    "dagster/asset_partition_range_start": w.partitions[0],
                    "dagster/asset_partition_range_end": w.partitions[-1],
                }
            result = dg.materialize(
                defs.assets, selection=w.assets, resources=defs.resources, instance=instance, tags=tags
            )
            assert result.success
            assert all(c.passed for c in result.get_asset_check_evaluations())
            results.update({a: result for a in w.assets})

        # the held-out suite: no training image, no question asked in training
        bench = pq.read_table(home / "storage/benchmark_suites.parquet")
        images = pq.read_table(home / "storage/images/s/0.parquet")
        questions = pq.read_table(home / "storage/questions/s/0.parquet")
        assert bench.num_rows == 12 and set(bench["benchmark"].to_pylist()) == {"held"}
        assert not set(bench["image_id"].to_pylist()) & set(images["image_id"].to_pylist())
        trained = {asked(q, o) for q, o in zip(questions["question"].to_pylist(), questions["options"].to_pylist())}
        assert not any(
            asked(q, o) in trained for q, o in zip(bench["question"].to_pylist(), bench["options"].to_pylist())
        )
        assert all(s for s in bench["stand_in"].to_pylist())  # what the text-only model reads for the image

        # the checkpoints: trained from the exports, weights changed, the DPO one from the SFT one
        base = load_file(str(next(smollm2.glob("*.safetensors"))))
        folders = {}
        for name in ("sft_checkpoint", "dpo_checkpoint"):
            row = pq.read_table(home / f"storage/{name}.parquet").to_pylist()[0]
            folders[name] = row["path"]
            assert row["path"].startswith(str(home / "checkpoints" / name))
            weights = load_file(str(next(Path(row["path"]).glob("*.safetensors"))))
            assert any(not weights[k].equal(base[k]) for k in base if k in weights), name
            m = _meta(results[name], name)
            assert m["steps"].value == (2 if name == "sft_checkpoint" else 1) and m["tokens_seen"].value > 0
            assert "data:image/png;base64," in m["loss_curve"].value and m["checkpoint"].value == row["path"]
        # scores: one partition per model, every question answered and read (or counted as unreadable)
        for model in MODELS:
            scores = pq.read_table(home / f"storage/benchmark_scores/{model}/held.parquet")
            assert scores.num_rows == 12 and set(scores["model"].to_pylist()) == {model}
            assert set(scores["question_id"].to_pylist()) == set(bench["question_id"].to_pylist())
            assert all(o for o in scores["output"].to_pylist()) and not any(scores["error"].to_pylist())
            for r in scores.to_pylist():
                assert r["correct"] == (r["choice"] == r["gold_letter"])
        trained_revisions = {
            pq.read_table(home / f"storage/benchmark_scores/{m}/held.parquet")["model_revision"][0].as_py()
            for m in MODELS
        }
        assert len(trained_revisions) == 3  # three models, three call-cache keys
        report = (home / "reports/e2e/report.md").read_text()
        for needle in (*MODELS, "held", "Average", "accuracy.png"):
            assert needle in report
        assert (home / "reports/e2e/accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        summary = pq.read_table(home / "storage/report.parquet").to_pylist()
        overall = {r["model"]: r for r in summary if r["task"] == "overall"}
        for model in MODELS:
            scores = pq.read_table(home / f"storage/benchmark_scores/{model}/held.parquet")
            assert overall[model]["correct"] == sum(scores["correct"].to_pylist()) and overall[model]["n"] == 12
            assert overall[model]["lo"] <= overall[model]["accuracy"] <= overall[model]["hi"]
        report_meta = _meta(results["report"], "report")
        assert "data:image/png;base64," in report_meta["report"].value
        assert report_meta["report_dir"].value == str(home / "reports/e2e")

        # a new materialization with nothing changed trains nothing and calls no model
        again = dg.materialize(
            defs.assets, selection=["sft_checkpoint", "dpo_checkpoint"], resources=defs.resources, instance=instance
        )
        assert all(_meta(again, n)["trained_now"].value is False for n in ("sft_checkpoint", "dpo_checkpoint"))
