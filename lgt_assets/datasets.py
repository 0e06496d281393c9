"""The training sets (logic: lgt/datasets/): SFT, DPO and RL per shard, and the exports that read every shard."""

import os
from collections import Counter
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from lgt.datasets.card import CardInfo
from lgt.datasets.exports import write_exports
from lgt.datasets.training_sets import build_dpo, build_rl, build_sft, check_rl_disjoint, held_out_questions
from lgt.prompts import load_prompt
from lgt.questions.audit import bias_audits
from lgt.results import StageResult
from lgt.traces.four_phase import JUDGE_PROMPT
from lgt.traces.four_phase import PROMPT as FOUR_PHASE_PROMPT
from lgt.traces.long_cots import OPENING
from lgt.traces.long_cots import PROMPT as LONG_PROMPT
from lgt_assets.factory import Custom, Metadata, Stage, StageRun, Wiring, code_version, group_of, stand_in_keys
from resources import concat
from schemas import DPO, FOUR_PHASE, RL, SFT, SPLITS

GROUP = group_of(__name__)
TRACE_PROMPTS = (LONG_PROMPT, OPENING, FOUR_PHASE_PROMPT, JUDGE_PROMPT)


def _by_split(result: StageResult, run: StageRun) -> Metadata:
    split = result.table["split"]
    return {"by_split": dg.MetadataValue.json({s: pc.sum(pc.equal(split, s)).as_py() or 0 for s in SPLITS})}


def _traces(recipe) -> list[str]:
    """The trace tables the training sets and the card read; four-phase traces only when that stage runs."""
    return ["simple_cots", "long_cots", "difficulty"] + (["four_phase"] if recipe.stages.four_phase.enabled else [])


def _sft_inputs(recipe) -> list[str]:
    return ["questions", *_traces(recipe)]


def _held_out(r: StageRun) -> frozenset[str]:
    """The shard's questions RL holds out, drawn from the same ids and settings the rl_prompts asset uses."""
    return held_out_questions(r.inputs["questions"].column("question_id").to_pylist(), r.recipe.stages.rl_prompts)


def _holdout_version(recipe) -> list[object]:
    """SFT and DPO leave out RL's holdout, so changing it makes them stale too."""
    rl = recipe.stages.rl_prompts
    return [rl.rl_holdout, rl.seed]


ENTRIES = (
    Stage(
        "sft_data",
        GROUP,
        ins=_sft_inputs,
        artifact=SFT,
        build=lambda r: build_sft(
            r.inputs["questions"],
            r.inputs["simple_cots"],
            r.inputs["long_cots"],
            r.inputs.get("four_phase", FOUR_PHASE.arrow.empty_table()),
            r.inputs["difficulty"],
            r.settings,
            _held_out(r),
        ),
        description="LPT SFT: fraction (rounded down) of O and O->O, an equal quota per question drawn by length "
        "rank and the remainder filled; X->O matched in count, drawn the same way by added length; plus consistent "
        "four-phase traces. Questions held out for RL are left out. <think> … </think> <answer> … </answer>.",
        check="pandera SftSchema",
        label="by_category",
        metadata=_by_split,
        version_extra=_holdout_version,
    ),
    Stage(
        "dpo_pairs",
        GROUP,
        ins=["questions", "simple_cots", "long_cots"],
        artifact=DPO,
        build=lambda r: build_dpo(
            r.inputs["questions"], r.inputs["simple_cots"], r.inputs["long_cots"], r.settings, _held_out(r)
        ),
        description="LPT preference pairs by rule (X->O > X->X within one simple CoT), deduplicated on chosen, then "
        "on rejected. Questions held out for RL are left out.",
        check="pandera DpoSchema",
        label="by_rule",
        metadata=_by_split,
        version_extra=_holdout_version,
    ),
    Stage(
        "rl_prompts",
        GROUP,
        ins=["questions", "difficulty"],
        artifact=RL,
        build=lambda r: build_rl(r.inputs["questions"], r.inputs["difficulty"], r.settings),
        description="GRPO/RLVR prompts of the questions held out of SFT and DPO (rl_holdout, a uniform sample "
        "per shard): question, gold letter, requested answer format, pass rate.",
        check="pandera RlSchema",
        label="by_stage_and_family",
        metadata=_by_split,
    ),
)


# --- exports: unpartitioned, so it reads every partition of its inputs ---------------------------------------


def _summed_metadata(instance: dg.DagsterInstance, asset: str, partitions: list[str], key: str) -> dict[str, int]:
    """A metadata dict (or [name, count] pairs) of the latest materialization of each partition, summed.

    Each partition's event holds its own counts (lgt_assets.factory.partition_output); events written before that
    by a ranged run hold the range's sum, with each partition's own under `<key>_by_partition`.
    """
    total: Counter = Counter()
    for pk in partitions:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[pk]), limit=1
        ).records
        if not records:
            continue
        metadata = records[0].asset_materialization.metadata
        if (by_partition := metadata.get(f"{key}_by_partition")) is not None:
            value = by_partition.value.get(pk)
        else:
            value = metadata[key].value if key in metadata else None
        if value is not None:
            pairs = value.items() if isinstance(value, dict) else value
            total.update({k: v for k, v in pairs if isinstance(v, int)})
    return dict(total)


def _thoughts(inputs: dict[str, pa.Table]) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Per CoT category (four-phase traces as one): thought lengths in words, and thoughts the budget closed."""
    lengths: dict[str, list[int]] = {}
    forced: dict[str, int] = {}
    for name in ("simple_cots", "long_cots", "four_phase"):
        if name not in inputs:
            continue
        t = inputs[name]
        labels = t.column("category").to_pylist() if name != "four_phase" else [name] * t.num_rows
        if name == "four_phase":
            lengths[name], forced[name] = [], 0  # a row in the card even when no trace survived
        for text, closed, label in zip(t.column("thought").to_pylist(), t.column("forced_close").to_pylist(), labels):
            lengths.setdefault(str(label), []).append(len(text.split()))
            forced[str(label)] = forced.get(str(label), 0) + int(closed)
    return lengths, forced


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
    return {
        name: ", ".join(sorted(set(t.column("model").to_pylist())))
        for name, t in tables.items()
        if t.num_rows and "model" in t.column_names
    }


def funnel_assets(w: Wiring) -> list[str]:
    """The assets whose yield funnels the dataset card sums: every registry entry that says so."""
    return [e.name for e in w.registry if e.funnel]


def build_exports_asset(w: Wiring) -> dg.AssetsDefinition:
    recipe, partitions, home = w.recipe, w.partitions, w.home
    settings = recipe.stages.exports
    name = settings.name or recipe.name
    traces = _traces(recipe)
    ins = ["sft_data", "dpo_pairs", "rl_prompts", "images", "questions", *traces]
    funnels = funnel_assets(w)

    @dg.asset(
        name="exports",
        group_name=GROUP,
        io_manager_key="parquet_io",
        ins={i: dg.AssetIn() for i in ins},  # an unpartitioned asset reads every partition of each input
        description=f"HF parquet (Image feature), TRL and LLaMA-Factory files and a dataset card under "
        f"$LGT_HOME/exports/{name}; the value is the manifest of files written.",
        code_version=code_version(recipe, settings, [], []),
    )
    def exports(context: dg.AssetExecutionContext, **read: Any) -> dg.Output:
        inputs = {name: concat(value) for name, value in read.items()}
        check_rl_disjoint(inputs["rl_prompts"], sft_data=inputs["sft_data"], dpo_pairs=inputs["dpo_pairs"])
        parts = partitions.get_partition_keys(dynamic_partitions_store=context.instance)
        lengths, forced = _thoughts(inputs)
        card = CardInfo(
            name=name,
            recipe_name=recipe.name,
            recipe_hash=recipe.digest(),
            prompt_versions=_prompt_versions(inputs),
            models={f"{role} ({m.backend})": m.model for role, m in recipe.models}
            | _models({t: inputs[t] for t in traces}),
            funnels={a: _summed_metadata(context.instance, a, parts, "funnel_counts") for a in funnels},
            rejects={a: _summed_metadata(context.instance, a, parts, "rejects_by_reason") for a in funnels},
            cot_lengths=lengths,
            cot_forced=forced,
            pass_rates=inputs["difficulty"].column("pass_rate").to_pylist(),
            bias_audit=bias_audits(inputs["questions"], inputs["difficulty"]),
        )
        out_dir = os.path.join(home, "exports", name)
        manifest = write_exports(
            out_dir,
            sft=inputs["sft_data"],
            dpo=inputs["dpo_pairs"],
            rl=inputs["rl_prompts"],
            images=inputs["images"],
            name=name,
            trl_images=settings.trl_images,
            stand_in_keys=stand_in_keys(recipe) or None,
            card=card,
            max_pixels=recipe.models.vlm.max_pixels,  # the student trains on what the teacher saw
        )
        table = pa.Table.from_pylist(manifest)
        with open(os.path.join(out_dir, "README.md")) as f:
            card_md = f.read()
        context.log.info(f"exported {len(manifest)} files to {out_dir}")
        return dg.Output(
            table,
            metadata={
                "dagster/row_count": table.num_rows,
                "path": dg.MetadataValue.path(out_dir),
                "files": dg.MetadataValue.md(
                    table.to_pandas().to_markdown(index=False) if table.num_rows else "_none_"
                ),
                "dataset_card": dg.MetadataValue.md(card_md),
            },
        )

    return exports


ENTRIES += (Custom("exports", build_exports_asset),)
