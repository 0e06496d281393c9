"""Seconds per step and per run of a materialized graph, read from a Dagster instance's event log.

    DAGSTER_HOME=/path/to/instance python benchmarks/demo_times.py [--json out.json]

Rows are steps (assets), columns the runs' partitions ("-" for unpartitioned runs); a step's
time is Dagster's own STEP_SUCCESS duration (in a subprocess, that includes its start-up).
The last rows are each run's wall time (start to end) and the sum over runs.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict

import dagster as dg
from dagster._core.events import DagsterEventType


def collect(instance: dg.DagsterInstance) -> tuple[list[str], dict[str, dict[str, float]], dict[str, float]]:
    """(columns in run order, step -> column -> seconds, column -> run wall seconds)."""
    records = sorted(instance.get_run_records(), key=lambda r: r.start_time or 0)
    columns: list[str] = []
    steps: dict[str, dict[str, float]] = defaultdict(dict)
    walls: dict[str, float] = {}
    for rec in records:
        run = rec.dagster_run
        tags = run.tags
        col = tags.get("dagster/partition") or (
            f"{tags['dagster/asset_partition_range_start']}…{tags['dagster/asset_partition_range_end']}"
            if "dagster/asset_partition_range_start" in tags
            else "-"
        )
        while col in walls:  # a second run of the same partition (a retry)
            col += "'"
        columns.append(col)
        # a run still in progress (or never started) has no wall time yet: NaN, not a negative number
        walls[col] = rec.end_time - rec.start_time if rec.end_time and rec.start_time else float("nan")
        for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_SUCCESS):
            ev = entry.dagster_event
            steps[ev.step_key][col] = ev.event_specific_data.duration_ms / 1000
    return columns, steps, walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="also write the numbers here")
    a = ap.parse_args()
    columns, steps, walls = collect(dg.DagsterInstance.get())
    print("| step | " + " | ".join(columns) + " | total |")
    print("|---" * (len(columns) + 2) + "|")
    for step, by in steps.items():
        cells = [f"{by[c]:.1f}" if c in by else "" for c in columns]
        print(f"| {step} | " + " | ".join(cells) + f" | {sum(by.values()):.1f} |")
    print(
        "| **run wall time** | "
        + " | ".join(f"{walls[c]:.1f}" for c in columns)
        + f" | {sum(w for w in walls.values() if w == w):.1f} |"
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"columns": columns, "steps": steps, "walls": walls}, f, indent=1)


if __name__ == "__main__":
    main()
