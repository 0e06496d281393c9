"""Incremental by lineage at demo scale: change 1 % of a parquet source's rows, rematerialize the data path, and
count the engine calls against the cold run's.

A parquet source of `--rows` synthetic scenes (the demo source's generator: seed 0, 512x512, 3-12 objects) in
`--shards` shards runs the data path (base_model; images ... sft_data, dpo_pairs, rl_prompts; exports) through
Dagster in process, with the call cache in a fresh home. Then `--draws` times, `--fraction` of the rows, drawn at
random (seeded by the draw), change (`--change`: one object's colour, or the caption) and the whole data path is
materialized again. Printed per draw: its calls and their share of the cold calls, the changed images' share of
the questions the cold run sent, and how many rows of the other images differ (a row is compared whole, by
value); then per asset the cold and each draw's calls, and the mean and worst share over the draws.

`--settings demo` keeps the demo recipe's models and stages (its shares of questions sent, the stage-1 LLM writer,
the rewrites, four-phase traces) and swaps its source for the parquet one; `small` is the system test's recipe
(one attribute question per image, every question sent). With a `--home` kept from an earlier run the cold pass
finds its calls in the cache (calls + cache hits are what it needs).

    python benchmarks/incremental.py [--rows 400] [--shards 4] [--settings demo|small] [--change attribute|caption]
                                     [--fraction 0.01] [--draws 5] [--home DIR] [--checkpoint DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from lgt.base_model import smollm2_gguf, unpack_gguf
from lgt.engines.cache import CallCache
from lgt.images.sources.synthetic import SyntheticScenesSource, read_synthetic
from lgt.images.validate import image_id_of
from lgt.paths import DEFAULT_RECIPE
from lgt.recipe import load_recipe
from lgt_assets import build_definitions

PARTITIONED = (
    "images",
    "images_quarantine",
    "questions_grounded",
    "questions_composed",
    "questions",
    "simple_cots",
    "long_cots",
    "four_phase",
    "difficulty",
    "sft_data",
    "dpo_pairs",
    "rl_prompts",
)
COLORS = ["red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "gray", "black", "white", "cyan"]
BUDGET = {"max_tokens": 12, "answer_max_tokens": 6}
SMALL_STAGES: dict[str, Any] = {  # tests/system/test_incremental.py's recipe: nothing capped
    "questions_grounded": {
        "attributes": {"color": {"noun": "colour", "values": COLORS}},
        "families": {"attribute": {"max_per_image": 1}},
        "compose_support": False,
    },
    "questions_composed": {"compositions": {}},
    "simple_cots": {"sampling": {"n": 1, "temperature": 0.7, "top_p": 0.8, "thinking": BUDGET}},
    "long_cots": {"sampling": {"n": 1, "temperature": 0.7, "top_p": 0.8, "thinking": BUDGET}},
    "four_phase": {"enabled": False},
    "difficulty": {"blind": False, "sampling": {"n": 1, "temperature": 0.7, "max_new_tokens": 6}},
    "sft_data": {"fraction": 1.0},
    "exports": {"trl_images": False},
}


def scene_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """n scenes of the demo source's generator as parquet rows: image struct, caption, id, objects."""
    src = SyntheticScenesSource(kind="synthetic_scenes", name="gen", images_per_shard=n, seed=seed)
    return [
        {
            "id": r.source_id,
            "image": {"bytes": r.image_bytes, "path": r.image_path},
            "caption": r.caption,
            "objects": [
                {
                    "label": o.label,
                    "bbox": [float(v) for v in o.bbox],
                    "object_id": o.object_id,
                    "attributes": [{"key": k, "value": v} for k, v in o.attributes.items()],
                }
                for o in r.objects
            ],
        }
        for r in read_synthetic(src, 0)
    ]


def write_source(rows: list[dict[str, Any]], folder: Path, per_file: int = 32) -> None:
    """Files of `per_file` rows, rewritten in place (the recipe, and so every code version, stays the same)."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in folder.glob("*.parquet"):
        f.unlink()
    for i in range(0, len(rows), per_file):
        pq.write_table(pa.Table.from_pylist(rows[i : i + per_file]), folder / f"part-{i // per_file:04d}.parquet")


def edit_rows(rows: list[dict[str, Any]], indices: list[int], change: str) -> list[dict[str, Any]]:
    """A copy of the rows with each of `indices` changed: its first object's colour, or one more caption sentence."""
    out = copy.deepcopy(rows)
    for index in indices:
        if change == "caption":
            out[index]["caption"] += " The light is soft."
        else:
            color = next(a for a in out[index]["objects"][0]["attributes"] if a["key"] == "color")
            color["value"] = next(c for c in COLORS if c != color["value"])
    return out


def edited_rows(n_rows: int, count: int, draw: int) -> list[int]:
    """The rows draw number `draw` changes: `count` of them, a uniform sample seeded by the draw."""
    return sorted(random.Random(f"incremental:{draw}").sample(range(n_rows), count))


def sent_share(home: Path, shards: int, image_ids: set[str]) -> float:
    """The changed images' share of the questions the last run rated (`difficulty`: one row per question sent to
    the solver, the same share as the simple CoTs): what an edit of them should cost, as a share of the calls."""
    rated = [
        i
        for shard in range(shards)
        for i in pq.read_table(home / f"storage/difficulty/p/{shard}.parquet", columns=["image_id"])[
            "image_id"
        ].to_pylist()
    ]
    return sum(i in image_ids for i in rated) / len(rated) if rated else 0.0


def recipe_file(home: Path, source: Path, shards: int, settings: str, checkpoint: Path) -> Path:
    """The demo recipe (or the small one) with the parquet source; no benchmark suites (they copy a synthetic one)."""
    data = yaml.safe_load(DEFAULT_RECIPE.read_text())
    data["name"] = f"incremental-{settings}"
    data["sources"] = [
        {
            "name": "p",
            "kind": "parquet",
            "path": str(source),
            "shards": shards,
            "exhaustive": True,  # the generator boxes every object
            "columns": {"image": "image", "caption": "caption", "id": "id", "objects": "objects"},
        }
    ]
    data["base_model"] = {"checkpoint": str(checkpoint)}
    data["stages"]["benchmark_suites"] = {"suites": []}
    if settings == "small":
        data["stages"] = {**SMALL_STAGES, "benchmark_suites": {"suites": []}}
    path = home / "recipe.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def materialize(defs: dg.Definitions, instance: dg.DagsterInstance, partitioned: list[str]) -> dict[str, dict]:
    """base_model, the partitioned data path over the whole shard range (one run, as `make demo`), the exports.

    Per asset: engine calls (the sum of its `llm/<role>/calls`), cache hits and seconds (the slowest partition's). A
    ranged step puts its engine stats (the whole step's) on every partition's materialization, so they are read once
    per asset and run.
    """
    keys = defs.resolve_asset_graph().get(dg.AssetKey("images")).partitions_def.get_partition_keys()
    out: dict[str, dict] = {}
    for selection in (["base_model"], partitioned, ["exports"]):
        tags = {}
        if selection is partitioned:
            tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
        result = dg.materialize(
            defs.assets, selection=selection, resources=defs.resources, instance=instance, tags=tags
        )
        if not result.success:
            raise RuntimeError(f"the run of {selection} failed")
        for event in result.get_asset_materialization_events():
            name = event.asset_key.to_user_string()
            md = event.materialization.metadata
            seconds = float(md["seconds"].value) if "seconds" in md else 0.0
            if name in out:
                out[name]["seconds"] = max(out[name]["seconds"], seconds)
                continue
            calls = sum(v.value for k, v in md.items() if k.startswith("llm/") and k.endswith("/calls"))
            hits = sum(v.value for k, v in md.items() if k.startswith("llm/") and k.endswith("/cache_hits"))
            out[name] = {"calls": int(calls), "cache_hits": int(hits), "seconds": seconds}
    return out


def other_rows(home: Path, partitioned: list[str], shards: int, image_ids: set[str]) -> dict[str, set[str]]:
    """Each table's rows of every image but `image_ids`, as canonical text (a row compared whole, by value)."""
    out = {}
    for name in partitioned:
        rows = set()
        for shard in range(shards):
            for r in pq.read_table(home / f"storage/{name}/p/{shard}.parquet").to_pylist():
                if r.get("image_id") not in image_ids:
                    rows.add(hashlib.sha256(repr(sorted(r.items())).encode()).hexdigest())
        out[name] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=400)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--settings", choices=["demo", "small"], default="demo")
    ap.add_argument("--change", choices=["attribute", "caption"], default="attribute")
    ap.add_argument("--fraction", type=float, default=0.01, help="share of the rows each draw changes")
    ap.add_argument("--draws", type=int, default=5, help="edits, one after another, each of its own random rows")
    ap.add_argument("--home", type=Path, help="default: a temporary folder, removed at the end")
    ap.add_argument("--checkpoint", type=Path, help="default: SmolLM2 unpacked as the tests do ($LGT_TEST_MODELS)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    home = args.home or Path(tempfile.mkdtemp(prefix="lgt-incremental-"))
    home.mkdir(parents=True, exist_ok=True)
    models = Path(os.environ.get("LGT_TEST_MODELS", Path(tempfile.gettempdir()) / "lgt-test-models"))
    checkpoint = args.checkpoint or unpack_gguf(smollm2_gguf(), models)
    rows = scene_rows(args.rows)
    source = home / "source"
    write_source(rows, source)
    recipe = load_recipe(recipe_file(home, source, args.shards, args.settings, checkpoint))
    partitioned = [a for a in PARTITIONED if a != "four_phase" or recipe.stages.four_phase.enabled]
    cache = CallCache(home / "cache" / "calls.sqlite")
    count = max(1, round(args.fraction * args.rows))
    print(f"{args.rows} rows in {args.shards} shards, {args.settings} settings, {count} rows per draw, home {home}")
    report: dict[str, Any] = {"rows": args.rows, "shards": args.shards, "settings": args.settings, "edits": []}
    with dg.instance_for_test() as instance:
        start = time.perf_counter()
        cold = materialize(build_definitions(recipe, base_path=str(home)), instance, partitioned)
        cold_s = time.perf_counter() - start
        # the calls the cold graph needs: made now, or found in the cache of a reused --home
        cold_calls = sum(c["calls"] + c["cache_hits"] for c in cold.values())
        if any(c["cache_hits"] for c in cold.values()):
            print("note: the cold run found calls in the cache of this home; its seconds are not a cold run's")
        elif cold_calls != cache.count():
            print(f"note: {cold_calls} calls counted, {cache.count()} cache rows")
        report["cold"] = {"seconds": round(cold_s, 1), "assets": cold}
        print(f"cold run: {cold_calls} calls, {cold_s:.0f} s", flush=True)
        for draw in range(args.draws):
            indices = edited_rows(args.rows, count, draw)
            image_ids = {image_id_of(rows[i]["image"]["bytes"]) for i in indices}  # the id hashes the image bytes
            expected = sent_share(home, args.shards, image_ids)
            before = other_rows(home, partitioned, args.shards, image_ids)
            rows = edit_rows(rows, indices, args.change)
            write_source(rows, source)
            start = time.perf_counter()
            inc = materialize(build_definitions(recipe, base_path=str(home)), instance, partitioned)
            seconds = time.perf_counter() - start
            after = other_rows(home, partitioned, args.shards, image_ids)
            edit = {
                "rows": indices,
                "seconds": round(seconds, 1),
                "sent_share": expected,
                "calls": {n: inc[n]["calls"] for n in inc},
                "other_rows": {n: len(before[n]) for n in partitioned},
                "other_rows_differing": {n: len(before[n] ^ after[n]) for n in partitioned},
            }
            edit["ratio"] = sum(edit["calls"].values()) / cold_calls if cold_calls else 0.0
            report["edits"].append(edit)
            print(
                f"draw {draw}: rows {indices}: {sum(edit['calls'].values())} calls = {edit['ratio']:.2%} of the cold "
                f"run's (their images held {expected:.2%} of the rated questions); other images' rows differing: "
                f"{sum(edit['other_rows_differing'].values())}; {seconds:.0f} s",
                flush=True,
            )

    head = f"{'asset':20s} {'cold calls':>10s} {'cold s':>7s} |" + "".join(f" draw {d:>2d}" for d in range(args.draws))
    print(head)
    for name in ("base_model", *partitioned, "exports"):
        needed = cold[name]["calls"] + cold[name]["cache_hits"]
        line = f"{name:20s} {needed:10d} {cold[name]['seconds']:7.1f} |"
        line += "".join(f" {e['calls'].get(name, 0):7d}" for e in report["edits"])
        print(line)
    ratios = [e["ratio"] for e in report["edits"]]
    bound = 1.5 * count / args.rows  # the 1.5 % for 1 %: 1.5 x the changed share of rows
    report["summary"] = {
        "rows_per_draw": count,
        "cold_calls": cold_calls,
        "mean_ratio": sum(ratios) / len(ratios) if ratios else 0.0,
        "worst_ratio": max(ratios, default=0.0),
        "bound": bound,
        "other_rows_differing": sum(sum(e["other_rows_differing"].values()) for e in report["edits"]),
    }
    sm = report["summary"]
    print(
        f"{args.draws} draws of {count} rows ({count / args.rows:.1%}): mean {sm['mean_ratio']:.2%}, worst "
        f"{sm['worst_ratio']:.2%} of the cold calls (bound {bound:.2%}); other images' rows differing in all draws: "
        f"{sm['other_rows_differing']}"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.home is None:
        shutil.rmtree(home, ignore_errors=True)
    record_results(args, report)


def record_results(args: argparse.Namespace, report: dict[str, Any]) -> None:
    """The summary's figure (benchmarks/results.py): the mean and worst share of the cold calls over the draws."""
    from results import command_line, record

    if not report["edits"]:
        return
    sm = report["summary"]
    pct = {k: f"{sm[k] * 100:.2f} %" for k in ("mean_ratio", "worst_ratio", "bound")}
    value = (
        f"mean {pct['mean_ratio']}, worst {pct['worst_ratio']} (bound {pct['bound']}); "
        f"{sm['other_rows_differing']} rows of other images changed"
    )
    notes = (
        f"{len(report['edits'])} draws of {sm['rows_per_draw']} of {args.rows} rows, {args.shards} shards; "
        f"cold {sm['cold_calls']:,} calls in {report['cold']['seconds']:,.0f} s"
    )
    figure = (
        f"calls {args.fraction * 100:g} % of the rows changed costs, share of the cold run's, {args.settings} settings"
    )
    record("incremental", figure, value, command=command_line(), notes=notes)


if __name__ == "__main__":
    main()
