"""What refreshes by itself once the Dagster daemon runs (`make ui`): conditions, a schedule, watched folders.

- The cheap CPU assets are `eager`: a missing partition, or an upstream one updated, is materialized at once
  (Dagster's own `eager` leaves what is missing when the sensor first runs; ours builds it, once: a failed run is
  not retried by the sensor until something upstream changes).
- The model-calling and training assets (pools `llm` and `gpu`) wait for the recipe's `models_cron` tick, then run
  when nothing upstream is missing or running: an upstream edit alone never starts a model; a click always can.
- `sources` (a schedule) reads every shard again at `sources_cron`.
- `shard_files` (a sensor) keeps the dynamic `shards` partitions in step with the recipe's watched folders; the new
  partitions are then missing, so the eager assets build them, and only them, downstream.
The recipe's `automation.enabled: false` defines all of it stopped.
"""

from collections.abc import Sequence

import dagster as dg

from lgt.recipe import Recipe

SHARDS = "shards"  # the dynamic partitions' name, when a recipe watches a folder
MODEL_POOLS = ("llm", "gpu")
IMAGES = ("images", "images_quarantine")


def shard_partitions(recipe: Recipe) -> dg.PartitionsDefinition:
    """`<source>/<shard>`: static when every shard is declared; dynamic (`shards`) when a folder is watched."""
    return (
        dg.DynamicPartitionsDefinition(name=SHARDS)
        if recipe.watches()
        else dg.StaticPartitionsDefinition(recipe.partition_keys())
    )


def unregistered(instance: dg.DagsterInstance, recipe: Recipe) -> list[str]:
    """The recipe's shards (declared, and files now in its watched folders) not yet in the dynamic partitions."""
    known = set(instance.get_dynamic_partitions(SHARDS))
    return [k for k in recipe.partition_keys() if k not in known]


def register_shards(instance: dg.DagsterInstance, recipe: Recipe) -> list[str]:
    """Adds the recipe's unregistered shards to the dynamic partitions; returns the new keys."""
    new = unregistered(instance, recipe) if recipe.watches() else []
    if new:
        instance.add_dynamic_partitions(SHARDS, new)
    return new


def model_condition(cron: str) -> dg.AutomationCondition:
    """After each cron tick, once nothing upstream is missing or running (Dagster's `on_cron` would also wait for
    every parent to update after the tick, which a parent refreshed only by hand, the base model, never does)."""
    A = dg.AutomationCondition
    return (
        A.in_latest_time_window()
        & A.cron_tick_passed(cron).since_last_handled()
        & ~A.any_deps_missing()
        & ~A.any_deps_in_progress()
        & ~A.in_progress()
    ).with_label(f"models_cron({cron})")


def cpu_condition() -> dg.AutomationCondition:
    """Dagster's `eager`, or missing with every parent there: a fresh `make ui` builds the cheap assets by itself."""
    A = dg.AutomationCondition
    build_missing = (
        A.missing() & ~A.execution_failed() & ~A.any_deps_missing() & ~A.any_deps_in_progress() & ~A.in_progress()
    )
    return (A.eager() | build_missing).with_label("eager")


def with_conditions(assets: Sequence[dg.AssetsDefinition], recipe: Recipe) -> list[dg.AssetsDefinition]:
    """Each asset's condition by its pool: model-calling and training assets on the cron, the rest eager."""
    cron = model_condition(recipe.automation.models_cron)
    eager = cpu_condition()

    def condition(a: dg.AssetsDefinition) -> dg.AutomationCondition:
        return cron if a.op.pool in MODEL_POOLS else eager

    return [
        a.map_asset_specs(lambda spec, a=a: spec.replace_attributes(automation_condition=condition(a))) for a in assets
    ]


def status(recipe: Recipe) -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if recipe.automation.enabled else dg.DefaultSensorStatus.STOPPED


def automation_sensor(recipe: Recipe) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "automation",
        target=dg.AssetSelection.all(),
        default_status=status(recipe),
        description="Evaluates every asset's automation condition (eager, or the models' cron) every 30 s.",
    )


def sources_schedule(recipe: Recipe) -> dg.ScheduleDefinition:
    """Every shard read again at `sources_cron`, in one run over the whole range (one step reads them all)."""

    @dg.schedule(
        name="sources",
        cron_schedule=recipe.automation.sources_cron,
        target=dg.AssetSelection.assets(*IMAGES),
        default_status=dg.DefaultScheduleStatus(status(recipe).value),
        description="Reads every shard of every source again; unchanged shards keep their data version.",
    )
    def sources(context: dg.ScheduleEvaluationContext):
        keys = list(context.instance.get_dynamic_partitions(SHARDS)) if recipe.watches() else recipe.partition_keys()
        if not keys:
            return dg.SkipReason("no shard yet")
        return dg.RunRequest(
            tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        )

    return sources


def shard_files_sensor(recipe: Recipe) -> dg.SensorDefinition:
    """Adds a `shards` partition for each new shard file in a watched folder (and each declared shard)."""

    @dg.sensor(
        name="shard_files",
        minimum_interval_seconds=recipe.automation.watch_interval_s,
        default_status=status(recipe),
        description="Lists the recipe's watched folders; each new shard file becomes a partition, which the eager "
        "assets then build.",
    )
    def shard_files(context: dg.SensorEvaluationContext):
        new = unregistered(context.instance, recipe)
        if not new:
            return dg.SkipReason("no new shard file")
        context.log.info(f"new partitions: {', '.join(new)}")
        return dg.SensorResult(
            dynamic_partitions_requests=[dg.DynamicPartitionsDefinition(name=SHARDS).build_add_request(new)]
        )

    return shard_files


def automation_definitions(recipe: Recipe) -> dict[str, list]:
    """The sensors and schedules of a recipe, for `dg.Definitions(**...)`."""
    sensors: list[dg.SensorDefinition] = [automation_sensor(recipe)]
    if recipe.watches():
        sensors.append(shard_files_sensor(recipe))
    return {"sensors": sensors, "schedules": [sources_schedule(recipe)]}
