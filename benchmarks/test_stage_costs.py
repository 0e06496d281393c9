"""benchmarks/stage_costs.py: the extrapolation and limits on hand-worked numbers, and the reader on a real ranged
run through the CLI (whose events hold one partition's metadata each and the asset's `folder`)."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
import stage_costs as sc  # this folder: pytest puts it on sys.path, as running a script here does
from dagster._core.instance.ref import InstanceRef
from dagster._serdes import serialize_value

ROOT = Path(__file__).resolve().parent.parent


def fresh_env(tmp_path: Path, recipe: str) -> dict[str, str]:
    """A run of `recipe` (YAML text) in its own empty DAGSTER_HOME and LGT_HOME under tmp_path."""
    (tmp_path / "run" / "dagster").mkdir(parents=True)
    path = tmp_path / "run" / "recipe.yaml"
    path.write_text(textwrap.dedent(recipe))
    home = {"LGT_HOME": str(tmp_path / "run" / "lgt"), "DAGSTER_HOME": str(tmp_path / "run" / "dagster")}
    return {**os.environ, "LGT_RECIPE": str(path), **home}


def dagster(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`dagster <args>` from the project root, as a user types it."""
    cli = str(Path(sys.executable).parent / "dagster")
    return subprocess.run([cli, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def cost(asset, **kw):
    base = dict(partitions=4, rows=0, calls=0, cache_hits=0, tokens_in=0, tokens_out=0, seconds=0.0)
    base["seconds_from"] = "step"
    return sc.StageCost(asset=asset, **{**base, **kw})


DEMO = [
    cost("questions", rows=1000, seconds=2.0),
    cost(
        "simple_cots",
        rows=80,
        calls=200,
        tokens_in=100_000,
        tokens_out=4_000,
        seconds=100.0,
        funnel=(("questions", 1000), ("sent", 20), ("samples", 80)),
    ),
    cost("long_cots", rows=40, calls=80, seconds=50.0, funnel=(("simple_cots", 80), ("expanded", 20))),
    cost("exports", partitions=1, rows=19, seconds=1.0, partitioned=False),
    cost("benchmark_scores", partitions=3, rows=300, calls=300, seconds=550.0),
]


def test_linear_extrapolation_with_fixed_and_unpartitioned_assets():
    p = {x.asset: x for x in sc.extrapolate(DEMO, 1000, 1_000_000)}
    # x1000: 80 -> 80,000 rows, 200 -> 200,000 calls, 100,000 -> 1e8 tokens, 100 s -> 100,000 s
    s = p["simple_cots"]
    assert (s.factor, s.rows, s.calls, s.tokens_in, s.tokens_out, s.seconds) == (
        1000,
        80_000,
        200_000,
        100_000_000,
        4_000_000,
        100_000,
    )
    # a manifest's rows are not data: they stay, its time scales; the fixed suite's scores do not move at all
    assert (p["exports"].rows, p["exports"].seconds) == (19, 1000)
    assert (p["benchmark_scores"].factor, p["benchmark_scores"].calls, p["benchmark_scores"].seconds) == (1, 300, 550)
    with pytest.raises(ValueError):
        sc.extrapolate(DEMO, 0, 10)


def test_uncapped_multipliers_follow_the_funnels():
    assert sc.cap_factor([["questions", 1192], ["sent", 24], ["samples", 96]]) == pytest.approx(1192 / 24)
    assert sc.cap_factor([["images", 64], ["llm/images", 4], ["kept", 959]]) == 16
    assert sc.cap_factor([["stage_1", 959], ["kept", 1192]]) == 1.0
    m = sc.uncapped_multipliers({c.asset: c.funnel for c in DEMO if c.funnel})
    # simple_cots sent 20 of 1000 questions: x50; long_cots expanded 20 of 80 simple CoTs (x4) of x50 as many: x200
    assert m == {"simple_cots": 50, "long_cots": 200}
    p = {x.asset: x for x in sc.extrapolate(DEMO, 1000, 1_000_000, m)}
    assert (p["simple_cots"].calls, p["long_cots"].calls, p["long_cots"].seconds) == (
        10_000_000,
        16_000_000,
        10_000_000,
    )
    assert p["questions"].rows == 1_000_000  # no cap, no multiplier


def test_event_log_and_limits_on_hand_worked_numbers():
    costs = [
        cost(
            "images",
            rows=64,
            event_const=1_070,  # now: its own metadata and the `folder`, nothing that grows with the run
            planned_event=500,
            paths_event_const=1_000,  # with `paths`: 10 B a partition of the run on each event
            paths_event_per_partition=10,
            old_event_const=900,
            old_event_per_partition=5_000,
            arrow_bytes=1_000,
            seconds=3.6,
        ),
        cost("questions", rows=1000, event_const=2_000, planned_event=500, arrow_bytes=4_000),
        cost("simple_cots", calls=200),
        cost("exports", partitions=1, event_const=5_000, partitioned=False),
        cost("benchmark_scores", calls=300, event_const=10**6, event_per_partition=10**6, seconds=550.0),  # ignored
    ]
    # one run over 10 partitions: images 10 * (1,070 + 500), questions 10 * (2,000 + 500), exports once
    assert sc.event_log_bytes(costs, 10) == 15_700 + 25_000 + 5_000
    assert sc.event_log_bytes(costs, 20) == 2 * (15_700 + 25_000) + 5_000  # linear in the partitions
    assert sc.largest_event_bytes(costs, 10) == sc.largest_event_bytes(costs, 10_000) == 2_000
    # with `paths`: images 10 * (1,000 + 500 + 10 * 10); questions read no such event and keep the current numbers
    assert sc.event_log_bytes(costs, 10, "paths") == 16_000 + 25_000 + 5_000
    assert sc.largest_event_bytes(costs, 1_000, "paths") == 11_000  # images' 1,000 + 1,000 * 10 > questions' 2,000
    # before the fix: images 10 * (900 + 500 + 10 * 5,000)
    assert sc.event_log_bytes(costs, 10, "old") == 514_000 + 25_000 + 5_000
    assert sc.largest_event_bytes(costs, 10, "old") == 50_900
    with pytest.raises(ValueError):
        sc.event_log_bytes(costs, 10, "new")

    cache = sc.CacheStats(rows=100, bytes=40_000)  # 400 B a row
    found = sc.limits(costs, cache, 1000, 100, 1_000_000, ram_bytes=1e9, disk_bytes=505_000)
    by = {lim.name.split(" ")[0].rstrip(":"): lim for lim in found}
    ev = by["Dagster"]
    # 1M questions at 100 a partition = 10,000 partitions: 10,000 * 1,570 + 10,000 * 2,500 + 5,000
    assert ev.at_target == 40_705_000
    # linear: 4,070 P = 505,000 - 5,000, P = 122.85 partitions of 100 questions
    assert ev.breaks_at_questions == pytest.approx(500_000 / 4_070 * 100)
    big = by["largest"]
    assert big.at_target == 2_000 and big.breaks_at_questions is None  # no event grows with the run
    ex = by["exports"]
    assert ex.at_target == 5_000_000  # (1,000 + 4,000) bytes x 1000
    assert ex.breaks_at_questions == pytest.approx(2e8)  # 1e9 / 5 bytes a question
    ca = by["call"]
    assert ca.at_target == 80_000_000  # 200,000 calls x 400 B
    assert ca.breaks_at_questions == pytest.approx(505_000 / 80)
    assert (by["partitions"].at_target, by["partitions"].breaks_at_questions) == (10_000, 10_000_000)
    assert by["parquet"].at_target == 30_000  # three partitioned assets that scale
    assert by["compute"].at_target == pytest.approx(1.0)  # 3.6 s x 1000 = 1 h; the scores are fixed

    # with `paths`: 10,000 * (1,500 + 100,000) + 10,000 * 2,500 + 5,000; 10 P^2 + 4,000 P = 500,000 at P = 100
    wp = sc.event_limits(costs, 100, 1_000_000, 505_000, layout="paths")
    assert wp[0].at_target == 1_040_005_000 and wp[0].breaks_at_questions == pytest.approx(10_000)
    assert wp[1].at_target == 101_000 and wp[1].breaks_at_questions == pytest.approx((1e9 - 1_000) / 10 * 100)
    # each event stored twice: twice the bytes, and the disk holds half: 10 P^2 + 4,000 P = 460,000 / 2 - 5,000 at
    # P = 50 (25,000 + 200,000 = 225,000)
    two = sc.event_limits(costs, 100, 1_000_000, 460_000, event_copies=2, layout="paths")
    assert two[0].at_target == 2 * 1_040_005_000 and two[0].breaks_at_questions == pytest.approx(5_000)
    # before the fix: 5,000 P^2 + 3,900 P = 500,000 (P = 9.6, by the quadratic formula worked out by hand)
    old = sc.event_limits(costs, 100, 1_000_000, 505_000, layout="old")
    assert old[0].breaks_at_questions == pytest.approx(
        (-3_900 + (3_900**2 + 4 * 5_000 * 500_000) ** 0.5) / 10_000 * 100
    )
    assert old[1].at_target == 900 + 10_000 * 5_000


def test_an_event_split_into_what_grows_with_the_run_and_what_does_not():
    # now: the asset's `folder`, nothing that grows with the run; one partition's run has its `path`
    now = {"range": 80, "folder": 90, "preview": 6_000, "llm/vlm/calls": 50}
    assert sc.split_event(10_000, now, ["preview"], 3) == sc.EventSplit(10_000, 0)
    assert sc.split_event(5_000, {"path": 90, "preview": 4_000}, ["preview"], 1) == sc.EventSplit(5_000, 0)
    # with `paths` (the IO manager's file of every partition of the run): 300 B over 3 partitions; now it would be
    # the event less `paths`, plus a 90-byte `folder`
    entries = {"range": 80, "paths": 300, "preview": 6_000, "llm/vlm/calls": 50}
    assert sc.split_event(10_000, entries, ["preview"], 3, folder_entry=90) == sc.EventSplit(
        9_790, 0, derived=True, paths_const=9_700, paths_per_partition=100
    )
    # before: the list of partitions, each one's funnel and every markdown value (4 previews) were on every event
    old = {
        "partitions": 92,
        "paths": 300,
        "preview": 30_000,
        "funnel": 1_200,
        "funnel_counts_by_partition": 400,
        "funnel_counts": 120,
        "llm/vlm/calls": 50,
    }
    assert sc.is_old_layout(old) and not sc.is_old_layout(entries) and not sc.is_old_layout(now)
    got = sc.split_event(40_000, old, ["preview", "funnel"], 4, range_entry=60, folder_entry=90)
    # grows: 92 + 300 + 31,200 + 400 = 31,992 -> fixed 8,008, 7,998 a partition; with `paths`: 8,008 + 31,200 / 4
    # + 60 = 15,868 and 300 / 4 a partition; now: 15,868 + 90, nothing a partition
    assert got == sc.EventSplit(15_958, 0, 8_008, 7_998, True, 15_868, 75)
    assert sc.sum_funnels([[["a", 10], ["b", 5]], [["a", 4], ["b", 1], ["c", 1]]]) == (("a", 14), ("b", 6), ("c", 1))


RECIPE = """
    name: costs
    sources:
      - {name: s, kind: synthetic_scenes, shards: 2, images_per_shard: 3, width: 128, height: 96, objects: [3, 5]}
    models:
      vlm: {backend: transformers, model: base_model}
      reasoner: {backend: transformers, model: base_model}
      verifier: {backend: transformers, model: base_model}
      small_solver: {backend: transformers, model: base_model}
    """
# the image and question stages: none calls a model with this recipe
SELECT = ["images", "images_quarantine", "questions_grounded", "questions_composed", "questions"]
TIMINGS = {"seconds", "rows_per_second", "questions_per_second"}  # metadata that differs from run to run


def step_seconds(log: str) -> dict[str, float]:
    """Each step's time as the CLI printed it: "Finished execution of step "x" in 927ms" (or 1.16s, 1m1s, 1h1m)."""
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    out = {}
    for step, took in re.findall(r'Finished execution of step "(\w+)" in ([\dhms.]+?)\.?(?:\s|$)', log):
        out[step] = sum(float(n) * unit[u] for n, u in re.findall(r"([\d.]+)(ms|h|m|s)", took))
    return out


def test_a_ranged_run_through_the_cli_puts_one_partitions_metadata_on_each_event(tmp_path, monkeypatch):
    env = fresh_env(tmp_path, RECIPE)
    base = ["asset", "materialize", "-m", "definitions", "--select", ",".join(SELECT)]
    single = dagster(env, *base, "--partition", "s/0", timeout=600)
    assert single.returncode == 0, (single.stdout + single.stderr)[-3000:]
    ranged = dagster(env, *base, "--partition-range", "s/0...s/1", timeout=600)
    assert ranged.returncode == 0, (ranged.stdout + ranged.stderr)[-3000:]
    home = Path(env["LGT_HOME"])
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])  # the run installed the project's dagster.yaml: it reads it
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"]))

    def stored(r):
        return len(serialize_value(r.event_log_entry))

    def entry(md, key):
        return len(serialize_value({key: md[key]}))

    for name in SELECT:
        recs = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(name)), limit=10).records
        one = [r for r in recs if "range" not in r.asset_materialization.metadata]
        two = {r.partition_key: r for r in recs if "range" in r.asset_materialization.metadata}
        assert len(one) == 1 and sorted(two) == ["s/0", "s/1"], name
        md0, md1 = (two[pk].asset_materialization.metadata for pk in ("s/0", "s/1"))
        assert md0["range"].value == "s/0...s/1 (2 partitions in one step)"
        for pk, md in (("s/0", md0), ("s/1", md1)):  # each partition's own count, the rows of its own file
            assert md["dagster/row_count"].value == pq.read_metadata(home / "storage" / name / f"{pk}.parquet").num_rows
        # the ranged run's s/0 event holds the single run's s/0 metadata, key for key but the timings, with `range`
        # and the asset's `folder` in place of its one `path` (not every partition's file: that grew as P^2)
        own = one[0].asset_materialization.metadata
        assert set(md0) - {"range", "folder"} == set(own) - {"path"}, name
        assert {k: v for k, v in md0.items() if k not in TIMINGS | {"range", "folder"}} == {
            k: v for k, v in own.items() if k not in TIMINGS | {"path"}
        }, name
        folder = md0["folder"].value
        assert isinstance(md0["folder"], dg.PathMetadataValue) and md1["folder"] == md0["folder"], name
        assert folder == str(home / "storage" / name) and Path(folder + "/s/0.parquet").is_file(), name
        # so it is the single run's event in size, but for `path` out and `range`, `folder` in (tags differ: a
        # range's data version is a full sha256; the timings' digits), not that and the other partition's preview
        expected = stored(one[0]) - entry(own, "path") + entry(md0, "range") + entry(md0, "folder")
        assert abs(stored(two["s/0"]) - expected) <= 200, (name, stored(two["s/0"]), expected)
        if name in ("images", "questions_grounded", "questions"):  # composed's preview is empty with 3 images
            other = md1["preview"].value
            assert len(other) > 10_000 and other != md0["preview"].value, name  # 50 x the slack above
            assert other not in serialize_value(two["s/0"].event_log_entry)

    # the reader, on the ranged run alone (--latest): both partitions' rows, its step's time once, the event split
    printed = step_seconds(ranged.stdout + ranged.stderr)
    costs = {c.asset: c for c in sc.collect(instance, str(home), latest=True)}
    assert set(costs) == set(SELECT)
    for name in SELECT:
        c = costs[name]
        rows = sum(pq.read_metadata(home / "storage" / name / "s" / f"{i}.parquet").num_rows for i in (0, 1))
        assert (c.partitions, c.rows, c.calls, c.cache_hits) == (2, rows, 0, 0), name
        assert c.event_from == "measured (ranged run)" and (c.old_event_const, c.old_event_per_partition) == (0, 0)
        recs = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(name)), limit=10).records
        ranged_recs = [r for r in recs if "range" in r.asset_materialization.metadata]
        # nothing on an event grows with the run: the event is its whole stored size, the mean of the two
        assert c.event_per_partition == 0 and (c.paths_event_const, c.paths_event_per_partition) == (0, 0), name
        assert c.event_const == round(sum(stored(r) for r in ranged_recs) / 2), name
        assert 500 < c.planned_event < 2_000
        step = "images_assets" if name in ("images", "images_quarantine") else name
        if name != "images_quarantine":
            assert (c.seconds_from, c.seconds) == ("step", pytest.approx(printed[step], abs=0.011)), name
    assert costs["images_quarantine"].seconds_from == "shared step" and costs["images_quarantine"].seconds == 0
    assert costs["questions"].storage_bytes > 0 and costs["questions"].arrow_bytes > 0

    # the cold pick (no calls here: the earliest of each partition) counts both runs' steps, each once
    both = {c.asset: c for c in sc.collect(instance, str(home))}
    assert both["questions"].rows == costs["questions"].rows
    first = step_seconds(single.stdout + single.stderr)
    assert both["questions"].seconds == pytest.approx(first["questions"] + printed["questions"], abs=0.02)

    # so one run's event log is linear in its partitions: P x (the events' and planned events' sizes)
    per = sum(c.event_const + c.planned_event for c in costs.values())
    assert sc.event_log_bytes(list(costs.values()), 1000) == 1000 * per
    assert sc.event_log_bytes(list(costs.values()), 2000) == 2000 * per

    out = sc.report(list(costs.values()), sc.CacheStats(0, 0), 1000, ram=1e9, disk=1e9)
    assert out["demo_questions"] == costs["questions"].rows
    assert {p["asset"]: p["rows"] for p in out["projection"]}["questions"] == pytest.approx(1000)
    assert out["limits_with_paths"] == out["limits_before_the_fix"] == []  # no earlier layout in this instance
