"""`exports`: every shard's training sets written as HF parquet, TRL and LLaMA-Factory files, with a dataset card.

Unpartitioned: it reads all partitions of its inputs, so `make demo` runs it
after the partitions. The yields in the card are the funnels each upstream
materialization recorded (`funnel_counts`, `rejects_by_reason`), summed over
partitions.
"""

import os
from collections import Counter

import dagster as dg
import pyarrow as pa

from lgt.dataset_card import CardInfo
from lgt.exports import write_exports
from lgt.prompts import load_prompt
from lgt.recipe import Recipe
from lgt_assets.versions import stage_code_version

FUNNEL_ASSETS = ("questions_grounded", "questions_composed", "questions", "simple_cots", "long_cots", "four_phase",
                 "difficulty", "sft_data", "dpo_pairs", "rl_prompts")
TRACE_PROMPTS = ("long_cot.j2", "long_cot_opening.j2", "four_phase.j2", "judge_equivalence.j2")


def _summed_metadata(instance: dg.DagsterInstance, asset: str, partitions: list[str], key: str) -> dict[str, int]:
    total: Counter = Counter()
    for pk in partitions:
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[pk]),
                                                  limit=1).records
        if records and (value := records[0].asset_materialization.metadata.get(key)) is not None:
            pairs = value.value.items() if isinstance(value.value, dict) else value.value  # funnels are [step, count] pairs
            total.update({k: v for k, v in pairs if isinstance(v, int)})
    return dict(total)


def _words(table: pa.Table, column: str, by: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for text, label in zip(table.column(column).to_pylist(), table.column(by).to_pylist()):
        out.setdefault(str(label), []).append(len(text.split()))
    return out


def _prompt_versions(tables: dict[str, pa.Table]) -> dict[str, str]:
    """name -> version of every prompt and template set the rows record ("name@hash" chains joined by ';')."""
    out = {p.removesuffix(".j2"): load_prompt(p).version for p in TRACE_PROMPTS}
    for t in tables.values():
        if "prompt_version" in t.column_names:
            for chain in set(t.column("prompt_version").to_pylist()):
                for v in filter(None, chain.split(";")):
                    out[v.split("@")[0]] = v
    return dict(sorted(out.items()))


def _models(tables: dict[str, pa.Table]) -> dict[str, str]:
    return {name: ", ".join(sorted(set(t.column("model").to_pylist()))) for name, t in tables.items()
            if t.num_rows and "model" in t.column_names}


def build_exports_asset(recipe: Recipe, partitions: dg.PartitionsDefinition, home: str) -> dg.AssetsDefinition:
    stage = recipe.stages.exports
    name = stage.name or recipe.name
    traces = ["simple_cots", "long_cots", "difficulty"] + (["four_phase"] if recipe.stages.four_phase.enabled else [])
    ins = ["sft_data", "dpo_pairs", "rl_prompts", "images", "questions", *traces]

    @dg.asset(
        name="exports",
        group_name="datasets",
        io_manager_key="parquet_io",
        ins={i: dg.AssetIn() for i in ins},  # an unpartitioned asset reads every partition of each input
        description=f"HF parquet (Image feature), TRL and LLaMA-Factory files and a dataset card under "
                    f"$LGT_HOME/exports/{name}; the value is the manifest of files written.",
        code_version=stage_code_version(recipe, stage, [], []),
    )
    def exports(context: dg.AssetExecutionContext, **inputs: pa.Table) -> dg.Output:
        parts = partitions.get_partition_keys()
        card = CardInfo(
            name=name, recipe_name=recipe.name, recipe_hash=recipe.digest(),
            prompt_versions=_prompt_versions(inputs),
            models={f"{role} ({m.backend})": m.model for role, m in recipe.models} | _models({t: inputs[t] for t in traces}),
            funnels={a: _summed_metadata(context.instance, a, parts, "funnel_counts") for a in FUNNEL_ASSETS},
            rejects={a: _summed_metadata(context.instance, a, parts, "rejects_by_reason") for a in FUNNEL_ASSETS},
            cot_lengths={**_words(inputs["simple_cots"], "thought", "category"), **_words(inputs["long_cots"], "thought", "category"),
                         **({"four_phase": [len(t.split()) for t in inputs["four_phase"].column("thought").to_pylist()]}
                            if "four_phase" in inputs else {})},
            pass_rates=inputs["difficulty"].column("pass_rate").to_pylist(),
        )
        out_dir = os.path.join(home, "exports", name)
        manifest = write_exports(out_dir, sft=inputs["sft_data"], dpo=inputs["dpo_pairs"], rl=inputs["rl_prompts"],
                                 images=inputs["images"], name=name, trl_images=stage.trl_images,
                                 stand_in_keys=list(recipe.stages.questions_grounded.attributes) or None, card=card)
        table = pa.Table.from_pylist(manifest)
        with open(os.path.join(out_dir, "README.md")) as f:
            card_md = f.read()
        context.log.info(f"exported {len(manifest)} files to {out_dir}")
        return dg.Output(table, metadata={
            "dagster/row_count": table.num_rows,
            "path": dg.MetadataValue.path(out_dir),
            "files": dg.MetadataValue.md(table.to_pandas().to_markdown(index=False) if table.num_rows else "_none_"),
            "dataset_card": dg.MetadataValue.md(card_md),
        })

    return exports
