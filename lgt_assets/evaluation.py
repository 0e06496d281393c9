"""`benchmark_suites`, `benchmark_scores` and `report` (logic: lgt/evaluation/).

Scores are partitioned `<model>/<suite>`, so a new checkpoint is scored without scoring the other models again
(and an unchanged model's replies come from the call cache). Every model is served through the engine layer with
the `benchmark_scores.role`'s backend, so a vLLM or SGLang server does the work on a GPU.
"""

import os
from collections import Counter
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from lgt.evaluation.prompts import prompts_version
from lgt.evaluation.report import accuracy_chart_png, render_report
from lgt.evaluation.scoring import eval_request, score_rows, summarize
from lgt.evaluation.suites import load_suite
from lgt.evaluation.synthetic import asked, synthetic_suite, training_asked
from lgt.plots import png_markdown
from lgt.preview import traces_markdown
from lgt_assets.factory import (
    MODEL_RETRIES,
    Custom,
    Metadata,
    Wiring,
    code_version,
    column_schema,
    group_of,
    partition_output,
    schema_check,
    stand_in_keys,
)
from resources import Engines, concat, engine_metadata
from schemas import BENCHMARK, SCORES

GROUP = group_of(__name__)


def _has_suites(recipe) -> bool:
    return bool(recipe.stages.benchmark_suites.suites)


def _synthetic(recipe) -> bool:
    return any(s.kind == "synthetic" for s in recipe.stages.benchmark_suites.suites)


def _checkpoints(recipe) -> list[str]:
    """The trained models the scores read (base_model is not an input: its folder comes from the recipe)."""
    return [m for m in recipe.stages.benchmark_scores.models if m != "base_model"]


def build_suites_asset(w: Wiring) -> dg.AssetsDefinition:
    recipe, settings = w.recipe, w.recipe.stages.benchmark_suites
    ins = {"images": dg.AssetIn(), "questions": dg.AssetIn()} if _synthetic(recipe) else {}
    synthetic_settings = [
        recipe.stages.questions_grounded.model_dump(mode="json", exclude={"llm", "rewrite"}),
        recipe.stages.questions_composed.model_dump(mode="json", exclude={"rewrite"}),
        recipe.stages.questions.model_dump(mode="json"),
        [s.model_dump(mode="json") for s in recipe.sources],
    ]

    @dg.asset(
        name="benchmark_suites",
        group_name=GROUP,
        io_manager_key="parquet_io",
        ins=ins,
        description="Every benchmark the recipe names, one MCQ per row in one prompt style: published layouts "
        "(CV-Bench, V* Bench, MMVP, MMStar, MME-RealWorld, MMLU-Pro) and MCQ files read from local files, and the "
        "held-out synthetic suite (scenes from a seed no source uses; no question asked in training).",
        metadata={"dagster/column_schema": column_schema(BENCHMARK.model)},
        code_version=code_version(recipe, settings, [], [], prompts_version(), synthetic_settings),
        check_specs=[
            dg.AssetCheckSpec("benchmark_schema", asset="benchmark_suites", blocking=True, description="pandera"),
            dg.AssetCheckSpec(
                "held_out_from_training",
                asset="benchmark_suites",
                blocking=True,
                description="no synthetic benchmark image is a training image and no question is asked in training",
            ),
        ],
    )
    def benchmark_suites(context: dg.AssetExecutionContext, **read: Any):
        training = {k: concat(v) for k, v in read.items()}
        train_ids = set(training["images"].column("image_id").to_pylist()) if training else set()
        train_asked = training_asked(training["questions"]) if training else set()
        tables, skipped, dropped = [], [], Counter()
        for suite in settings.suites:
            if suite.kind == "synthetic":
                table, drop = synthetic_suite(suite, recipe, train_ids, train_asked, stand_in_keys(recipe))
                dropped.update({f"{suite.name}/{k}": v for k, v in drop.items()})
            else:
                loaded = load_suite(suite)
                table = loaded.table
                skipped += loaded.skipped
            context.log.info(f"{suite.name}: {table.num_rows} questions")
            tables.append(table.cast(BENCHMARK.arrow))
        table = pa.concat_tables(tables)
        by_task = Counter(f"{b}/{t}" for b, t in zip(table.column("benchmark").to_pylist(), table["task"].to_pylist()))
        preview = table.slice(0, 4).select(["question_id", "task", "user_prompt", "gold_letter"]).to_pylist()
        yield dg.Output(
            table,
            metadata={
                "dagster/row_count": table.num_rows,
                "by_suite": dg.MetadataValue.json(dict(Counter(table.column("benchmark").to_pylist()))),
                "by_task": dg.MetadataValue.json(dict(sorted(by_task.items()))),
                "skipped_rows": len(skipped),
                "skipped": dg.MetadataValue.json(skipped[:50]),
                "dropped_seen_in_training": dg.MetadataValue.json(dict(dropped)),
                "preview": dg.MetadataValue.md(traces_markdown(preview, "user_prompt", "gold_letter")),
            },
        )
        yield schema_check("benchmark_schema", "benchmark_suites", BENCHMARK.model, table)
        ids = set(pc.drop_null(table.column("image_id")).to_pylist())
        cols = table.select(["question", "options"]).to_pydict()
        seen_questions = sum(asked(q, o) in train_asked for q, o in zip(cols["question"], cols["options"]))
        seen_images = len(ids & train_ids)
        yield dg.AssetCheckResult(
            check_name="held_out_from_training",
            asset_key="benchmark_suites",
            passed=seen_images == 0 and seen_questions == 0,
            metadata={"training_images": seen_images, "questions_asked_in_training": seen_questions},
        )

    return benchmark_suites


def build_scores_asset(w: Wiring) -> dg.AssetsDefinition:
    recipe, settings = w.recipe, w.recipe.stages.benchmark_scores
    partitions = dg.StaticPartitionsDefinition(recipe.score_partition_keys())
    role = getattr(recipe.models, settings.role)
    ins = {"benchmark_suites": dg.AssetIn(), **{m: dg.AssetIn() for m in _checkpoints(recipe)}}

    @dg.asset(
        name="benchmark_scores",
        group_name=GROUP,
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="parquet_io",
        ins=ins,
        deps=["base_model"],
        pool="llm",
        retry_policy=MODEL_RETRIES,
        description="Each model's greedy answer to every question of a suite, read by the one answer reader "
        "(lgt/answers.py) and scored; partitioned <model>/<suite>; every output kept for inspection.",
        metadata={"dagster/column_schema": column_schema(SCORES.model)},
        code_version=code_version(recipe, settings, [settings.role], []),
        check_specs=[
            dg.AssetCheckSpec("scores_schema", asset="benchmark_scores", blocking=True, description="pandera")
        ],
    )
    def benchmark_scores(context: dg.AssetExecutionContext, engines: dg.ResourceParam[Engines], **read: Any):
        suites = read.pop("benchmark_suites")
        sampling = settings.sampling
        tables: dict[str, pa.Table] = {}
        metadata: dict[str, Metadata] = {}
        engine_md: Metadata = {}
        for pk in context.partition_keys:
            model, suite = pk.split("/", 1)
            path = engines.model_path("base_model") if model == "base_model" else read[model].column("path")[0].as_py()
            engine = engines.engine(settings.role, log=context.log.info, model=path)
            rows = suites.filter(pc.equal(suites.column("benchmark"), suite)).to_pylist()
            context.log.info(f"{pk}: {len(rows)} questions to {path} ({role.backend})")
            results = engine.generate([eval_request(r, sampling, settings.prefill) for r in rows])
            table = score_rows(rows, results, model, engine.backend.revision or path, settings.prefill)
            tables[pk] = table.cast(SCORES.arrow)
            summary = summarize(table)
            overall = next(s for s in summary if s["task"] == "overall")
            context.log.info(
                f"{pk}: accuracy {overall['accuracy']:.1%} [{overall['lo']:.1%}, {overall['hi']:.1%}] of "
                f"{overall['n']}; unreadable {overall['unreadable']}, errors {overall['errors']}"
            )
            preview = [
                {**r, "answer": r["choice"], "label": f"{r['task']}: gold {r['gold_letter']}"}
                for r in table.slice(0, settings.preview).to_pylist()
            ]
            metadata[pk] = {
                "dagster/row_count": table.num_rows,
                "accuracy": round(overall["accuracy"], 4),
                "ci_low": round(overall["lo"], 4),
                "ci_high": round(overall["hi"], 4),
                "unreadable": overall["unreadable"],
                "errors": overall["errors"],
                "by_task": dg.MetadataValue.json(
                    {s["task"]: [s["correct"], s["n"]] for s in summary if s["task"] != "overall"}
                ),
                "outputs": dg.MetadataValue.md(traces_markdown(preview, "output", "label")),
            }
            engine_md.update(engine_metadata(engine, model))
        yield partition_output(context, tables, metadata, extra=engine_md)
        yield schema_check("scores_schema", "benchmark_scores", SCORES.model, pa.concat_tables(tables.values()))

    return benchmark_scores


def build_report_asset(w: Wiring) -> dg.AssetsDefinition:
    recipe, home, settings = w.recipe, w.home, w.recipe.stages.report
    checkpoints = _checkpoints(recipe)

    @dg.asset(
        name="report",
        group_name=GROUP,
        io_manager_key="parquet_io",
        ins={"benchmark_scores": dg.AssetIn(), **{m: dg.AssetIn() for m in checkpoints}},
        description="Models as rows, benchmarks as columns and their average, with 95 % intervals, deltas against "
        "the baseline, per-task tables and the training cost; markdown and a bar chart in $LGT_HOME/reports/.",
        code_version=code_version(recipe, settings, [], []),
    )
    def report(context: dg.AssetExecutionContext, benchmark_scores: Any, **read: pa.Table) -> dg.Output:
        scores = concat(benchmark_scores)
        summary = summarize(scores, settings.confidence)
        costs = {m: read[m].to_pylist()[0] for m in checkpoints}
        title = f"{recipe.name}: benchmark scores"
        chart = accuracy_chart_png(summary, settings.confidence)
        markdown = render_report(summary, costs, settings.baseline, settings.confidence, title)
        out = os.path.join(home.removeprefix("file://"), "reports", recipe.name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "accuracy.png"), "wb") as f:
            f.write(chart)
        with open(os.path.join(out, "report.md"), "w", encoding="utf-8") as f:
            f.write(markdown + "\n\n![accuracy](accuracy.png)\n")
        context.log.info(f"report written to {out}")
        return dg.Output(
            pa.Table.from_pylist(summary),
            metadata={
                "report_dir": dg.MetadataValue.path(out),
                "report": dg.MetadataValue.md(markdown + "\n\n" + png_markdown(chart, "accuracy with 95 % intervals")),
            },
        )

    return report


ENTRIES = (
    Custom("benchmark_suites", build_suites_asset, enabled=_has_suites),
    Custom("benchmark_scores", build_scores_asset, enabled=_has_suites),
    Custom("report", build_report_asset, enabled=_has_suites),
)
