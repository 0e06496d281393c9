"""`python -m lgt_assets.selection partitioned|unpartitioned`: asset keys for `dagster asset materialize --select`.

A run takes either one partition of the partitioned assets or the unpartitioned ones, so `make demo`
materializes the unpartitioned assets once and then each partition.
"""

import sys

from lgt.recipe import load_recipe
from lgt_assets import build_definitions


def keys(partitioned: bool) -> list[str]:
    graph = build_definitions(load_recipe()).resolve_asset_graph()
    return sorted(
        k.to_user_string() for k in graph.get_all_asset_keys()
        if graph.get(k).is_materializable and (graph.get(k).partitions_def is not None) == partitioned
    )


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "partitioned"
    if which not in ("partitioned", "unpartitioned"):
        sys.exit("usage: python -m lgt_assets.selection partitioned|unpartitioned")
    print(",".join(keys(which == "partitioned")))
