"""The stage registry's building blocks: a `Stage` declaration and the one factory that turns it into an asset.

A `Stage` is one partitioned asset that reads tables, calls a pure `lgt` build function and writes one table.
Assets of another shape (the image loader's two outputs, the model checkpoint, the exports that read every
partition) are `Custom` entries that build their own definition. See docs/architecture.md.
"""

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

import dagster as dg
import pandera.errors
import pyarrow as pa
from dagster_pandera import pandera_schema_to_dagster_type

from lgt.engines import Engine
from lgt.engines.gather import Gather
from lgt.partitions import split_partition_key
from lgt.preview import funnel_line, funnel_markdown
from lgt.prompts import load_prompt
from lgt.recipe import Recipe
from lgt.results import StageResult
from lgt.storage import table_digest
from resources import Engines, engine_metadata
from schemas import Artifact

Metadata = dict[str, Any]

# A model step that fails (a server that went away, a GPU out of memory) is retried within the run, however the run
# was started; the instance's run retries (dagster.yaml) come on top for a run whose worker died.
MODEL_RETRIES = dg.RetryPolicy(max_retries=2, delay=10, backoff=dg.Backoff.EXPONENTIAL)


@dataclass(frozen=True)
class Wiring:
    """What every asset builder gets: the recipe, the partitions, the artifact home and the whole registry."""

    recipe: Recipe
    partitions: dg.PartitionsDefinition
    home: str
    registry: tuple[Any, ...]


@dataclass
class StageRun:
    """One partition of one stage, as its build function sees it."""

    recipe: Recipe
    settings: Any  # the stage's recipe section
    inputs: dict[str, pa.Table]
    source: str  # the partition's source name
    engine_for: Callable[[str], Engine]
    stand_in_keys: list[str]  # the attributes a text stand-in shows of each object


def _always(recipe: Recipe) -> bool:
    return True


def _none(recipe: Recipe, settings: Any) -> list[str]:
    return []


def _nothing(recipe: Recipe) -> list[Any]:
    return []


def stand_in_keys(recipe: Recipe) -> list[str]:
    """The attributes a text stand-in shows of each object (the recipe's stage-1 attributes, in order)."""
    return list(recipe.stages.questions_grounded.attributes)


@dataclass(frozen=True)
class Stage:
    """One declaration per partitioned table asset: everything the factory, the selection and the card need."""

    name: str  # the asset key and the recipe section `stages.<name>`
    group: str  # the Dagster group: the lgt package the logic lives in
    ins: Sequence[str] | Callable[[Recipe], Sequence[str]]
    artifact: Artifact  # the output's Arrow schema and pandera model
    build: Callable[[StageRun], StageResult]
    description: str
    check: str  # what the blocking pandera check asserts, for the UI
    label: str = "by_family"  # the metadata key for `StageResult.by_family`
    roles: Callable[[Recipe, Any], list[str]] = _none  # the recipe model roles it calls
    prompts: Callable[[Recipe, Any], list[str]] = _none  # the prompt files it renders
    metadata: Callable[[StageResult, StageRun], Metadata] | None = None  # previews and extra numbers
    funnel: bool = True  # its yield funnel goes into the dataset card
    enabled: Callable[[Recipe], bool] = _always
    version_extra: Callable[[Recipe], list[Any]] = _nothing  # more inputs to the code version
    settings: Callable[[Recipe], Any] | None = None  # default: recipe.stages.<name>

    def settings_of(self, recipe: Recipe) -> Any:
        return self.settings(recipe) if self.settings else getattr(recipe.stages, self.name)

    def inputs(self, recipe: Recipe) -> list[str]:
        return list(self.ins(recipe) if callable(self.ins) else self.ins)

    def build_asset(self, w: Wiring) -> dg.AssetsDefinition:
        return stage_asset(self, w)


@dataclass(frozen=True)
class Custom:
    """An asset of its own shape; `build` returns its definition."""

    name: str
    build: Callable[[Wiring], dg.AssetsDefinition]
    funnel: bool = False
    enabled: Callable[[Recipe], bool] = _always

    def build_asset(self, w: Wiring) -> dg.AssetsDefinition:
        return self.build(w)


def group_of(module: str) -> str:
    """`lgt_assets.traces` -> `traces`: the UI group is the package name."""
    return module.rpartition(".")[2]


# --- what every stage shares ---------------------------------------------------------------------------------


def code_version(recipe: Recipe, settings: Any, roles: list[str], prompts: list[str], *extra: Any) -> str:
    """A stage is stale in the UI when its settings, its roles' models or its prompts change."""
    parts = [
        settings.model_dump(mode="json"),
        [getattr(recipe.models, r).model_dump(mode="json") for r in roles],
        [load_prompt(p).version for p in prompts],
        list(extra),
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


@cache
def column_schema(model: type) -> dg.TableSchemaMetadataValue:
    """The pandera model's columns for the UI (built once per model: it is slow)."""
    return pandera_schema_to_dagster_type(model).metadata["schema"]


def schema_check(check_name: str, asset: str, model: type, table: pa.Table) -> dg.AssetCheckResult:
    """Run a pandera model over a table; failures become check metadata, not exceptions."""
    try:
        model.validate(table.to_pandas(), lazy=True)
    except pandera.errors.SchemaErrors as e:
        cases = e.failure_cases.head(20)
        return dg.AssetCheckResult(
            check_name=check_name,
            asset_key=asset,
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "failures": len(e.failure_cases),
                "first failures": dg.MetadataValue.md(cases.to_markdown(index=False)),
            },
        )
    return dg.AssetCheckResult(check_name=check_name, asset_key=asset, passed=True, metadata={"rows": table.num_rows})


def stage_metadata(result: StageResult, label: str) -> Metadata:
    """What every stage shows: the funnel (markdown, and as numbers for the dataset card) and counts by label."""
    return {
        "dagster/row_count": result.table.num_rows,
        "funnel": dg.MetadataValue.md(funnel_markdown(result.funnel, dict(result.rejects))),
        "funnel_counts": dg.MetadataValue.json([[k, v] for k, v in result.funnel.items()]),  # pairs: JSON sorts keys
        "rejects_by_reason": dg.MetadataValue.json(dict(sorted((+result.rejects).items()))),  # zero counts dropped
        label: dg.MetadataValue.json(dict(sorted(result.by_family.items()))),
        "seconds": round(result.seconds, 2),
    }


class UndeclaredRole(RuntimeError):
    """A build function called a model role its registry entry does not declare."""


class RoleEngines:
    """`engine_for(role)` for build functions; remembers which roles a step used, for its metadata.

    Only the roles the entry declares may be called: the code version hashes those roles' settings, so a call to
    another role would leave the asset fresh in the UI when that role's model changes.
    Thread-safe: in a ranged run every partition's build runs in its own thread and they share one engine per role.
    """

    def __init__(self, engines: Engines, context: dg.AssetExecutionContext, stage: str, declared: Sequence[str]):
        self.engines, self.context, self.used = engines, context, {}
        self.stage, self.declared = stage, tuple(declared)
        self._lock = threading.Lock()

    def __call__(self, role: str) -> Engine:
        if role not in self.declared:
            raise UndeclaredRole(
                f"{self.stage} called the model role {role!r}, which its registry entry does not declare "
                f"(roles: {list(self.declared)}); add it to the entry's `roles`, so the code version follows its model"
            )
        with self._lock:
            if role not in self.used:
                self.used[role] = self.engines.engine(role, log=self.context.log.info)
            return self.used[role]

    def metadata(self) -> Metadata:
        out: Metadata = {}
        for role, engine in self.used.items():
            out.update(engine_metadata(engine, role))
        return out


def for_partition(value: Any, partition: str) -> Any:
    """An input as one partition sees it: a ranged step's inputs arrive as {partition: table}."""
    return value[partition] if isinstance(value, dict) else value


def build_partitions(
    partitions: Sequence[str], build: Callable[[str, Callable[[str], Engine]], Any], engine_for: RoleEngines
) -> dict[str, Any]:
    """`build(partition, engine_for)` for every partition of the step; in a ranged run all at once, one thread each,
    with their LLM calls gathered into shared batches (`lgt.engines.gather`)."""
    if len(partitions) == 1:
        return {partitions[0]: build(partitions[0], engine_for)}
    gather = Gather(len(partitions))

    def work(pk: str) -> Any:
        try:
            return build(pk, lambda role: gather.engine(engine_for(role)))
        finally:
            gather.finished()

    with ThreadPoolExecutor(max_workers=len(partitions), thread_name_prefix="partition") as pool:
        futures = {pk: pool.submit(work, pk) for pk in partitions}
        return {pk: f.result() for pk, f in futures.items()}


def partition_output(
    context: dg.AssetExecutionContext,
    tables: dict[str, pa.Table],
    metadata: dict[str, Metadata],
    output_name: str = "result",
    extra: Metadata | None = None,
) -> dg.Output:
    """A step's output over its partitions: one partition writes its table with its own content hash and metadata;
    a range writes {partition: table}, each partition's metadata on that partition's own materialization (so an
    event holds one partition's previews and counts, not the whole range's: events stay the same size however
    many partitions a run covers), and one hash of all its tables (Dagster takes one data version per output).
    `extra` (the step's engine stats) goes on every partition's event."""
    extra = extra or {}
    if len(tables) == 1:
        ((pk, table),) = tables.items()
        version = dg.DataVersion(table_digest(table))
        return dg.Output(table, output_name=output_name, data_version=version, metadata={**metadata[pk], **extra})
    asset_key = context.asset_key_for_output(output_name)
    for pk, md in metadata.items():
        context.add_asset_metadata(md, asset_key=asset_key, partition_key=pk)
    version = hashlib.sha256("".join(table_digest(t) for t in tables.values()).encode()).hexdigest()
    first, last = next(iter(tables)), next(reversed(tables))
    step = {"range": f"{first}...{last} ({len(tables)} partitions in one step)"}
    return dg.Output(tables, output_name=output_name, data_version=dg.DataVersion(version), metadata={**step, **extra})


def stage_asset(stage: Stage, w: Wiring) -> dg.AssetsDefinition:
    """The one factory: a partitioned asset that builds one table per `<source>/<shard>` and checks it.

    A run over a partition range (a single-run backfill, `--partition-range`) builds every partition of the range in
    one step, one model load, with the partitions' LLM calls batched together, and stores one file per partition.
    """
    recipe = w.recipe
    settings = stage.settings_of(recipe)
    roles, prompts = stage.roles(recipe, settings), stage.prompts(recipe, settings)
    keys = stand_in_keys(recipe)
    model = stage.artifact.model
    check_name = f"{stage.name}_schema"

    @dg.asset(
        name=stage.name,
        partitions_def=w.partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=stage.group,
        io_manager_key="parquet_io",
        ins={i: dg.AssetIn() for i in stage.inputs(recipe)},
        deps=["base_model"] if roles else [],
        # one model-calling step at a time: parallel steps would fight over the cores (or the GPU)
        pool="llm" if roles else None,
        retry_policy=MODEL_RETRIES if roles else None,
        description=stage.description,
        metadata={"dagster/column_schema": column_schema(model)},
        code_version=code_version(recipe, settings, roles, prompts, *stage.version_extra(recipe)),
        check_specs=[dg.AssetCheckSpec(check_name, asset=stage.name, blocking=True, description=stage.check)],
    )
    def _asset(context: dg.AssetExecutionContext, engines: dg.ResourceParam[Engines], **inputs: Any):
        engine_for = RoleEngines(engines, context, stage.name, roles)

        def build(pk: str, engine_for: Callable[[str], Engine]) -> tuple[pa.Table, Metadata]:
            run = StageRun(
                recipe,
                settings,
                {name: for_partition(v, pk) for name, v in inputs.items()},
                split_partition_key(pk)[0],
                engine_for,
                keys,
            )
            result = stage.build(run)
            table = result.table.cast(stage.artifact.arrow)
            context.log.info(f"{pk}: {funnel_line(result.funnel, result.rejects)} in {result.seconds:.1f}s")
            extra = stage.metadata(result, run) if stage.metadata else {}
            return table, {**stage_metadata(result, stage.label), **extra}

        built = build_partitions(context.partition_keys, build, engine_for)
        tables = {pk: table for pk, (table, _) in built.items()}
        metadata = {pk: m for pk, (_, m) in built.items()}
        yield partition_output(context, tables, metadata, extra=engine_for.metadata())
        yield schema_check(check_name, stage.name, model, pa.concat_tables(tables.values()))

    return _asset
