"""`python -m lgt_assets.selection waves`: the runs that materialize the whole graph, in order, for the CLI.

A run takes assets of one partitioning only: unpartitioned ones, or one range of one partitions definition. So
`make demo` materializes the graph in waves: each wave is the largest set of assets that share a partitioning and
whose parents are done or in the wave; unpartitioned assets go first when several are ready. For the demo:
base_model; every `<source>/<shard>` asset over the shard range; the exports, checkpoints and benchmark suites;
the `<model>/<suite>` scores over their range; the report. The waves come from the resolved asset graph, so a
new registry entry lands in the right one by itself.

Each line printed is `<comma-separated asset keys>` then, for a partitioned wave, a tab and `<first>...<last>`.
When the recipe watches a folder, its shard files now there are first added to the instance's dynamic partitions.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import dagster as dg


@dataclass(frozen=True)
class Wave:
    assets: list[str]
    partitions: list[str] | None  # the partition keys of the wave's partitions definition; None: unpartitioned

    def line(self) -> str:
        keys = ",".join(self.assets)
        return keys if self.partitions is None else f"{keys}\t{self.partitions[0]}...{self.partitions[-1]}"


def waves(defs: dg.Definitions | None = None, instance: dg.DagsterInstance | None = None) -> list[Wave]:
    """The runs in order; `instance` holds the dynamic partitions of a recipe that watches a folder."""
    if defs is None:
        from lgt.recipe import load_recipe
        from lgt_assets import build_definitions

        defs = build_definitions(load_recipe())
    graph = defs.resolve_asset_graph()
    todo = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    parents = {k: {p for p in graph.get(k).parent_keys if p in todo} for k in todo}
    pdef = {k: graph.get(k).partitions_def for k in todo}
    done: set[dg.AssetKey] = set()
    out: list[Wave] = []
    while todo:
        ready = [k for k in todo if parents[k] <= done]
        if not ready:
            raise RuntimeError(f"the asset graph has a cycle among {sorted(k.to_user_string() for k in todo)}")
        first = next((k for k in ready if pdef[k] is None), ready[0])
        wave = {k for k in ready if pdef[k] == pdef[first]}
        grew = True
        while grew:  # add assets of the same partitioning whose parents are done or in the wave
            grew = False
            for k in todo - wave:
                if pdef[k] == pdef[first] and parents[k] <= done | wave:
                    wave.add(k)
                    grew = True
        part = pdef[first]
        out.append(
            Wave(
                sorted(k.to_user_string() for k in wave),
                part.get_partition_keys(dynamic_partitions_store=instance) if part else None,
            )
        )
        done |= wave
        todo -= wave
    return out


if __name__ == "__main__":
    if sys.argv[1:] != ["waves"]:
        sys.exit("usage: python -m lgt_assets.selection waves")
    from lgt.recipe import load_recipe
    from lgt_assets import build_definitions
    from lgt_assets.automation import register_shards

    recipe = load_recipe()
    if recipe.watches():
        with dg.DagsterInstance.get() as instance:
            register_shards(instance, recipe)
            plan = waves(build_definitions(recipe), instance)
    else:
        plan = waves(build_definitions(recipe))
    for w in plan:
        if w.partitions == []:
            sys.exit(f"{', '.join(w.assets)}: no partitions yet (the recipe's watched folders hold no shard file)")
        print(w.line())
