"""Seconds per step and per run of a materialized graph, read from a Dagster instance's event log.

    DAGSTER_HOME=/path/to/instance python benchmarks/demo_times.py [--json out.json]
    DAGSTER_HOME=... python benchmarks/demo_times.py --wall 11:26.4 [--warm]   # + make demo's /usr/bin/time -f %E

Rows are steps (assets), columns the runs' partitions ("-" for unpartitioned runs); a step's
time is Dagster's own STEP_SUCCESS duration (in a subprocess, that includes its start-up).
The last rows are each run's wall time (start to end) and the sum over runs.
Then it records the main job's figures in benchmarks/results.json: the checkpoints' training time and the
training data's rows per shard (the latest materializations), and with --wall make demo's own time, cold or --warm.
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
    ap.add_argument("--wall", help="make demo's wall time (/usr/bin/time -f %%E): recorded as the main job's time")
    ap.add_argument("--warm", action="store_true", help="the --wall is a rerun's, all cached (not a cold run's)")
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
    record_results(dg.DagsterInstance.get(), columns, steps, walls, a.wall, a.warm)


def record_results(instance, columns, steps, walls, wall: str | None, warm: bool) -> None:
    """The summary's main-job figures (benchmarks/results.py): with --wall, make demo's time; from the instance's
    latest materializations, the checkpoints' training time and each shard's rows of the training data."""
    from results import record

    def mmss(seconds: float) -> str:
        m, s = divmod(round(seconds), 60)
        return f"{m}:{s:02d}"

    demo = "export LGT_HOME=/tmp/demo-lgt DAGSTER_HOME=/tmp/demo-dagster; rm -rf $LGT_HOME $DAGSTER_HOME; "
    if wall:
        seconds = sum(float(x) * 60**i for i, x in enumerate(reversed(wall.split(":"))))
        runs = []
        for c in columns:  # a run by its partitions, or by its steps when it has none
            name = c if not c.startswith("-") else ", ".join(s for s, by in steps.items() if c in by)
            runs.append(f"{name} {mmss(walls[c])}" if walls[c] == walls[c] else f"{name} (running)")
        notes = f"the runs' wall time {mmss(sum(w for w in walls.values() if w == w))}: " + "; ".join(runs)
        if warm:
            cmd = "/usr/bin/time -f %E make demo  # again, same homes; "
            cmd += "python benchmarks/demo_times.py --warm --wall ELAPSED"
            record("main job", "`make demo` warm rerun, all cached", mmss(seconds), command=cmd, notes=notes)
        else:
            cmd = demo + "/usr/bin/time -f %E make demo; python benchmarks/demo_times.py --wall ELAPSED"
            record("main job", "`make demo`, cold, whole graph", mmss(seconds), command=cmd, notes=notes)
    cmd = demo + "make demo; python benchmarks/demo_times.py"
    trained = {}
    for name in ("sft_checkpoint", "dpo_checkpoint"):
        event = instance.get_latest_materialization_event(dg.AssetKey(name))
        md = event.asset_materialization.metadata if event and event.asset_materialization else {}
        if "steps" in md and "wall_seconds" in md:
            trained[name] = (
                md["steps"].value,
                md["wall_seconds"].value,
                max(steps.get(name, {}).values(), default=0.0),
            )
    if len(trained) == 2:
        (s1, w1, d1), (s2, w2, d2) = trained["sft_checkpoint"], trained["dpo_checkpoint"]
        value = f"{s1} steps in {mmss(w1)} / {s2} steps in {mmss(w2)}"
        notes = f"trainer time (the checkpoints' wall_seconds); the Dagster steps took {mmss(d1)} / {mmss(d2)}"
        record("stage throughput", "SFT / DPO training on CPU, SmolLM2-135M", value, command=cmd, notes=notes)
    rows = {}
    for name in ("simple_cots", "long_cots", "sft_data", "dpo_pairs"):
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(name)), limit=10_000)
        latest: dict[str, int] = {}
        for r in records.records:  # newest first: the first of each partition is its latest
            count = r.asset_materialization.metadata.get("dagster/row_count")
            if r.partition_key and count is not None:
                latest.setdefault(r.partition_key, count.value)
        if latest:
            rows[name] = ", ".join(str(latest[k]) for k in sorted(latest, key=lambda k: (len(k), k)))
    if len(rows) == 4:
        value = "; ".join(f"{name} {counts}" for name, counts in rows.items())
        figure = "rows per shard: simple_cots, long_cots, sft_data, dpo_pairs"
        record("main job", figure, value, command=cmd)


if __name__ == "__main__":
    main()
