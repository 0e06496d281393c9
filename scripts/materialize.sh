#!/usr/bin/env bash
# Materializes the recipe's whole graph with the Dagster CLI, one run per wave (python -m lgt_assets.selection
# waves): the unpartitioned assets that come first, then each partitioned wave over its whole partition range in
# one run (one model load, the partitions' LLM calls batched together, one file per partition), then the assets
# that read every partition. Usage: scripts/materialize.sh <dagster run config json>
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
# `dagster asset materialize` is the command the design names and CI runs; Dagster 1.13 prints a SupersessionWarning
# for it (pointing at `dg launch`) on every wave. It says nothing about this run, so it is silenced here (README).
export PYTHONWARNINGS="${PYTHONWARNINGS:+$PYTHONWARNINGS,}ignore:Function \`asset_materialize_command\` is superseded:FutureWarning"
config="$1"
waves=$($BIN/python -m lgt_assets.selection waves)
n=$(wc -l <<<"$waves")
i=0
while IFS=$'\t' read -r assets range; do
  i=$((i + 1))
  if [ -n "$range" ]; then
    echo "== wave $i/$n: materializing $assets over the partitions $range in one run"
    $BIN/dagster asset materialize -m definitions --select "$assets" --partition-range "$range" --config-json "$config"
  else
    echo "== wave $i/$n: materializing $assets"
    $BIN/dagster asset materialize -m definitions --select "$assets" --config-json "$config"
  fi
done <<<"$waves"
echo "== done: $n waves; artifacts under $LGT_HOME"
