"""`python -m lgt_assets.selection unpartitioned|partitioned|aggregate`: asset keys for `dagster asset materialize`.

A run takes either one partition of the partitioned assets or unpartitioned ones, so `make demo` materializes
the unpartitioned assets that come first (base_model), then each partition, then the unpartitioned assets that
read every partition (exports). The phases come from the resolved asset graph, so a new registry entry lands
in the right one by itself.
"""

from __future__ import annotations

import sys

import dagster as dg

PHASES = ("unpartitioned", "partitioned", "aggregate")


def keys(phase: str, defs: dg.Definitions | None = None) -> list[str]:
    if defs is None:
        from lgt.recipe import load_recipe
        from lgt_assets import build_definitions

        defs = build_definitions(load_recipe())
    graph = defs.resolve_asset_graph()

    def partitioned(k) -> bool:
        return graph.get(k).partitions_def is not None

    def phase_of(k) -> str:
        if partitioned(k):
            return "partitioned"
        return "aggregate" if any(partitioned(p) for p in graph.get(k).parent_keys) else "unpartitioned"

    return sorted(
        k.to_user_string()
        for k in graph.get_all_asset_keys()
        if graph.get(k).is_materializable and phase_of(k) == phase
    )


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "partitioned"
    if which not in PHASES:
        sys.exit(f"usage: python -m lgt_assets.selection {'|'.join(PHASES)}")
    print(",".join(keys(which)))
