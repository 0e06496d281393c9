"""What each stage of a materialized run cost, and what that extrapolates to at 1M questions.

    python benchmarks/stage_costs.py --dagster-home /tmp/demo-dagster --lgt-home /tmp/demo-lgt
    python benchmarks/stage_costs.py --questions 1000000 --json costs.json     # $DAGSTER_HOME, $LGT_HOME

It only reads: the instance's materializations (metadata `dagster/row_count`, `seconds`, `llm/<role>/calls`,
`cache_hits`, `tokens_in`, `tokens_out`, the funnel) and its event log (step durations, the stored size of each
materialization and planned-materialization event), the parquet files under $LGT_HOME/storage and the call cache's
size. For each asset and partition it takes the materialization that made the most engine calls (the cold run; the
earliest when none did), or the latest with --latest. The engine stats are the step's, repeated on every partition's
event of a ranged step: they are counted once per run; rows and funnels are each partition's own and are summed.

The extrapolation is linear: every row, call, token and second scales with the number of questions as the demo's
funnel had them, on the same hardware and at the demo's shard size (so the number of partitions grows too) unless
--questions-per-partition gives another. Event sizes: a partition's event holds its own metadata (previews,
funnel, counts: independent of the shard's size, as the previews show a fixed number of samples) plus the step's
engine stats and the IO manager's `folder` (resources/io_manager.py): nothing on it grows with a ranged run's
partitions, so one run's event log is P x (a constant event). Two earlier layouts are read too, and the current
event is derived from them where no newer event exists: events with `paths` (every partition's file of the run on
each event: P^2 bytes a run; shown as "with `paths`": their size less `paths`, plus the `folder` it becomes), and
events written before each partition got its own metadata (lgt_assets/factory.py: partition_output; they carry a
`partitions` list and `*_by_partition` keys and held every partition's previews; shown as "before": their fixed
part plus one partition's share of the previews, plus `range` and `folder`).
"Uncapped" multiplies the LLM stages by what their per-shard caps left out (funnel `sent`, `expanded`, `llm/images`
against the stage's input), which is what a recipe without caps (recipes/paper.yaml) sends. Assets whose cost does
not depend on the data's size (the model, the fixed benchmark suites and their scores, the report) are not scaled.
No GPU measurement exists in benchmarks/README.md, so there is no GPU row: the hours are this machine's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sqlite3
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

# cost independent of how many questions the data has: unpacking the model, the recipe's fixed suites, their scores
FIXED = frozenset({"base_model", "benchmark_suites", "benchmark_scores", "report"})
# what `exports` reads, every partition at once (lgt_assets/datasets.py: build_exports_asset)
EXPORTS_READS = (
    "images",
    "questions",
    "simple_cots",
    "long_cots",
    "difficulty",
    "four_phase",
    "sft_data",
    "dpo_pairs",
    "rl_prompts",
)
# funnel steps that count what a per-shard cap let through to the model
SENT_STEPS = ("sent", "expanded", "llm/images")
SQLITE_MAX_LENGTH = 1_000_000_000  # SQLite's default limit on one TEXT value: one stored event
DAGSTER_PARTITIONS_ADVICE = 100_000  # per asset, Dagster's documented recommendation (UI load times above it)
GIB = 1024**3


@dataclass(frozen=True)
class StageCost:
    """One asset's measured cost over the materializations picked (one per partition)."""

    asset: str
    partitions: int
    rows: int
    calls: int  # engine calls made (not served from the cache)
    cache_hits: int
    tokens_in: int
    tokens_out: int
    seconds: float
    seconds_from: str  # step (event log), metadata (`seconds`), shared step (counted on another asset), none
    # one partition's stored materialization event as the code writes it now: a part that does not grow with its
    # run's partitions and the bytes each partition of the run adds (0 since `folder` replaced `paths`)
    event_const: int = 0
    event_per_partition: int = 0
    event_from: str = ""  # measured (ranged run), measured (single-partition runs), derived (`paths` or old events)
    planned_event: int = 0  # its ASSET_MATERIALIZATION_PLANNED event, one per partition and run
    # the same split for the layout with every partition's `paths` on each event; 0 when none was read or derived
    paths_event_const: int = 0
    paths_event_per_partition: int = 0
    # the same split for events written before each partition got its own metadata; 0 when none was read
    old_event_const: int = 0
    old_event_per_partition: int = 0
    storage_bytes: int = 0
    arrow_bytes: int = 0  # uncompressed, as read into memory
    partitioned: bool = True
    funnel: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Projection:
    asset: str
    factor: float
    rows: float
    calls: float
    tokens_in: float
    tokens_out: float
    seconds: float
    arrow_bytes: float


@dataclass(frozen=True)
class Limit:
    name: str
    at_target: float
    unit: str
    threshold: float | None
    breaks_at_questions: float | None  # the scale at which at_target reaches threshold; None: no threshold or never


@dataclass(frozen=True)
class CacheStats:
    rows: int
    bytes: int

    @property
    def bytes_per_row(self) -> float:
        return self.bytes / self.rows if self.rows else 0.0


# --- the pure part: extrapolation and limits ----------------------------------------------------------------------


def cap_factor(funnel: Sequence[Sequence]) -> float:
    """Input count / count sent to the model, from a funnel [[step, n], ...]; 1.0 when the stage sent everything."""
    steps = {str(k): int(n) for k, n in funnel}
    if not funnel:
        return 1.0
    first = int(funnel[0][1])
    for s in SENT_STEPS:
        if steps.get(s):
            return first / steps[s]
    return 1.0


def uncapped_multipliers(funnels: Mapping[str, Sequence[Sequence]]) -> dict[str, float]:
    """Per asset, how much more it would do with no per-shard cap: its own cap, times its input's when the funnel's
    first step names another asset (long_cots expands simple_cots, which were capped themselves)."""
    out: dict[str, float] = {}

    def factor(asset: str, seen: frozenset[str]) -> float:
        if asset in out:
            return out[asset]
        funnel = funnels.get(asset, ())
        f = cap_factor(funnel)
        upstream = str(funnel[0][0]) if funnel else ""
        if upstream in funnels and upstream not in seen:
            f *= factor(upstream, seen | {asset})
        out[asset] = f
        return f

    for a in funnels:
        factor(a, frozenset({a}))
    return out


def extrapolate(
    costs: Sequence[StageCost],
    demo_questions: int,
    target_questions: int,
    multipliers: Mapping[str, float] | None = None,
) -> list[Projection]:
    """Every measured quantity times target/demo (times the asset's multiplier); FIXED assets stay as measured, and
    so do the rows of unpartitioned assets (a manifest of files, a checkpoint's one row), though not their time."""
    if demo_questions <= 0:
        raise ValueError("the run has no questions to scale from")
    scale = target_questions / demo_questions
    out = []
    for c in costs:
        f = 1.0 if c.asset in FIXED else scale * (multipliers or {}).get(c.asset, 1.0)
        out.append(
            Projection(
                c.asset,
                f,
                c.rows * (f if c.partitioned else 1.0),
                c.calls * f,
                c.tokens_in * f,
                c.tokens_out * f,
                c.seconds * f,
                c.arrow_bytes * f,
            )
        )
    return out


def partitions_for(questions: float, questions_per_partition: float) -> int:
    return max(1, math.ceil(questions / questions_per_partition))


LAYOUTS = ("now", "paths", "old")  # `folder` on each event; every partition's `paths`; every partition's previews


def _event_terms(c: StageCost, layout: str = "now") -> tuple[int, int]:
    """(fixed, per partition of the run) bytes of one event in `layout`, where it was read (else the current one)."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: one of {LAYOUTS}")
    if layout == "old" and (c.old_event_const or c.old_event_per_partition):
        return c.old_event_const, c.old_event_per_partition
    if layout == "paths" and (c.paths_event_const or c.paths_event_per_partition):
        return c.paths_event_const, c.paths_event_per_partition
    return c.event_const, c.event_per_partition


def event_log_bytes(costs: Sequence[StageCost], partitions: int, layout: str = "now") -> float:
    """One ranged run over `partitions`: each partitioned asset records a planned and a materialization event per
    partition: P x (fixed + planned) + P^2 x per partition. Now the per-partition term is 0 (an event holds its own
    partition's metadata and the asset's `folder`); with `paths` it was a path per partition of the run, and before
    each partition got its own event (`old`) every partition's previews."""
    total = 0.0
    for c in costs:
        if c.asset in FIXED:
            continue
        const, per = _event_terms(c, layout)
        if c.partitioned:
            total += partitions * (const + c.planned_event + partitions * per)
        else:
            total += const + per + c.planned_event
    return total


def largest_event_bytes(costs: Sequence[StageCost], partitions: int, layout: str = "now") -> float:
    terms = [_event_terms(c, layout) for c in costs if c.partitioned and c.asset not in FIXED]
    return max((const + partitions * per for const, per in terms), default=0.0)


def _quadratic_root(a: float, b: float, c: float) -> float | None:
    """The positive root of a x^2 + b x - c = 0 (a, b, c >= 0)."""
    if a > 0:
        return (-b + math.sqrt(b * b + 4 * a * c)) / (2 * a)
    return c / b if b > 0 else None


def event_limits(
    costs: Sequence[StageCost],
    questions_per_partition: float,
    target_questions: int,
    disk_bytes: float,
    event_copies: int = 1,
    layout: str = "now",
) -> list[Limit]:
    """The event log of one ranged run over every partition (vs free disk) and its largest event (vs SQLite's limit
    on one value), in `layout` (see LAYOUTS)."""
    p_target = partitions_for(target_questions, questions_per_partition)
    scaled = [c for c in costs if c.asset not in FIXED]
    terms = [(_event_terms(c, layout), c.planned_event) for c in scaled if c.partitioned]
    # B P^2 + C P (+ unpartitioned constants), P = questions / per partition
    b = sum(per for (_, per), _ in terms)
    c_ = sum(const + planned for (const, _), planned in terms)
    fixed = sum(sum(_event_terms(c, layout)) + c.planned_event for c in scaled if not c.partitioned)
    root = _quadratic_root(b, c_, max(disk_bytes / event_copies - fixed, 0.0))
    suffix = {"now": "", "paths": ", with every partition's `paths` on each event", "old": ", before the fix"}[layout]
    # one stored event: const + P * per_partition must stay under SQLite's limit on one value
    crossings = [(SQLITE_MAX_LENGTH - const) / per for (const, per), _ in terms if per > 0]
    return [
        Limit(
            f"Dagster event log, one ranged run over every partition{suffix} (vs free disk)",
            event_log_bytes(costs, p_target, layout) * event_copies,
            "bytes",
            disk_bytes,
            root * questions_per_partition if root is not None else None,
        ),
        Limit(
            f"largest single materialization event{suffix} (vs SQLite's 1e9-byte value limit)",
            largest_event_bytes(costs, p_target, layout),
            "bytes",
            SQLITE_MAX_LENGTH,
            min(crossings) * questions_per_partition if crossings else None,
        ),
    ]


def limits(
    costs: Sequence[StageCost],
    cache: CacheStats,
    demo_questions: int,
    questions_per_partition: float,
    target_questions: int,
    ram_bytes: float,
    disk_bytes: float,
    multipliers: Mapping[str, float] | None = None,
    event_copies: int = 1,
) -> list[Limit]:
    """What each shared resource holds at the target, and the number of questions at which it reaches its limit.

    `event_copies`: how many times the instance stores each event (Dagster's SQLite storage: twice, in the run's
    own database and in index.db, as the demo's instance shows)."""
    proj = {p.asset: p for p in extrapolate(costs, demo_questions, target_questions, multipliers)}
    per_q = 1.0 / target_questions  # the projections are linear in questions: value(q) = value(target) * q / target
    p_target = partitions_for(target_questions, questions_per_partition)
    out = event_limits(costs, questions_per_partition, target_questions, disk_bytes, event_copies)
    exports = sum(proj[a].arrow_bytes for a in EXPORTS_READS if a in proj)
    out.append(
        Limit(
            "exports: every partition of its inputs in memory at once (vs RAM)",
            exports,
            "bytes",
            ram_bytes,
            ram_bytes / (exports * per_q) if exports else None,
        )
    )
    cache_rows = sum(proj[c.asset].calls + c.cache_hits * proj[c.asset].factor for c in costs if c.asset not in FIXED)
    cache_bytes = cache_rows * cache.bytes_per_row
    out.append(
        Limit(
            "call cache: one SQLite file on one host (vs free disk)",
            cache_bytes,
            "bytes",
            disk_bytes,
            disk_bytes / (cache_bytes * per_q) if cache_bytes else None,
        )
    )
    out.append(
        Limit(
            "partitions per asset (vs Dagster's advice)",
            p_target,
            "partitions",
            DAGSTER_PARTITIONS_ADVICE,
            DAGSTER_PARTITIONS_ADVICE * questions_per_partition,
        )
    )
    n_partitioned = sum(1 for c in costs if c.partitioned and c.asset not in FIXED)
    out.append(Limit("parquet files (one per asset partition)", p_target * n_partitioned, "files", None, None))
    hours = sum(p.seconds for p in proj.values() if p.asset not in FIXED) / 3600
    out.append(Limit("compute on the measured machine, one process", hours, "hours", None, None))
    return out


@dataclass(frozen=True)
class EventSplit:
    """One stored materialization event of a run over several partitions: what grows with them and what does not."""

    const: int
    per_partition: int
    old_const: int = 0  # the old layout's split, when the event was written by it
    old_per_partition: int = 0
    derived: bool = False  # const and per_partition derived from an earlier layout's event, not measured
    paths_const: int = 0  # the `paths` layout's split, when the event was written by it or the old layout
    paths_per_partition: int = 0


def is_old_layout(keys: Iterable[str]) -> bool:
    """An event a ranged step wrote before each partition got its own metadata: it has the range's `partitions`
    list and each partition's counts under `*_by_partition` (lgt_assets/datasets.py still reads those)."""
    return any(k == "partitions" or k.endswith("_by_partition") for k in keys)


def split_event(
    size: int,
    entries: Mapping[str, int],
    markdown: Iterable[str],
    partitions: int,
    range_entry: int = 0,
    folder_entry: int = 0,
) -> EventSplit:
    """Split one event of a run over `partitions`; `entries`: each metadata entry's stored bytes, `markdown`: the
    keys whose values are markdown.

    Now nothing grows: an event holds its partition's metadata and the asset's `folder` (resources/io_manager.py).
    An event with `paths` (every partition's file of the run) grew by a path a partition; the current event is
    derived from it: its size less `paths`, plus the `folder` entry (`folder_entry` bytes) written instead. In the
    old layout `partitions`, `*_by_partition` and every markdown value (each partition's previews) grew too; both
    later layouts are derived from such an event: its fixed part, one partition's share of the markdown and the
    `range` entry (`range_entry` bytes), with `paths` or with `folder`."""
    n = max(partitions, 1)
    paths = entries.get("paths", 0)
    if "folder" in entries or not paths and not is_old_layout(entries):  # the current layout, or one partition
        return EventSplit(size, 0)
    if not is_old_layout(entries):
        return EventSplit(
            size - paths + folder_entry, 0, derived=True, paths_const=size - paths, paths_per_partition=paths // n
        )
    md = sum(entries[k] for k in set(markdown) if k in entries)
    gone = sum(v for k, v in entries.items() if k == "partitions" or k.endswith("_by_partition"))
    old_const = size - paths - md - gone
    with_paths = old_const + md // n + range_entry
    return EventSplit(with_paths + folder_entry, 0, old_const, (paths + md + gone) // n, True, with_paths, paths // n)


def sum_funnels(funnels: Iterable[Sequence[Sequence]]) -> tuple[tuple[str, int], ...]:
    """Funnels [[step, n], ...] summed step by step, in the order the steps first appear."""
    total: dict[str, int] = {}
    for funnel in funnels:
        for step, n in funnel:
            total[str(step)] = total.get(str(step), 0) + int(n)
    return tuple(total.items())


# --- reading a materialized run ------------------------------------------------------------------------------------


def _num(value) -> float:
    v = getattr(value, "value", value)
    return v if isinstance(v, int | float) and not isinstance(v, bool) else 0


def _value(value):
    return getattr(value, "value", value)


def _llm_totals(metadata) -> dict[str, int]:
    out = {"calls": 0, "cache_hits": 0, "tokens_in": 0, "tokens_out": 0}
    for key, value in metadata.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] == "llm" and parts[2] in out:
            out[parts[2]] += int(_num(value))
    return out


def _storage(lgt_home: str, asset: str) -> tuple[int, int, int]:
    """(rows, bytes on disk, bytes in memory as Arrow) of an asset's parquet files, local or any fsspec URL.

    Arrow's size, not parquet's uncompressed size: dictionary-encoded text columns (the questions' prompts) take
    about 3x more once decoded."""
    import fsspec
    import pyarrow.parquet as pq

    fs, base = fsspec.core.url_to_fs(lgt_home.rstrip("/"))
    files = []
    if fs.isdir(f"{base}/storage/{asset}"):
        files = [f for f in fs.find(f"{base}/storage/{asset}") if f.endswith(".parquet")]
    elif fs.exists(f"{base}/storage/{asset}.parquet"):
        files = [f"{base}/storage/{asset}.parquet"]
    rows = disk = arrow = 0
    for f in files:
        disk += fs.size(f)
        with fs.open(f, "rb") as fh:
            table = pq.read_table(fh)
        rows, arrow = rows + table.num_rows, arrow + table.nbytes
    return rows, disk, arrow


def cache_stats(lgt_home: str) -> CacheStats:
    """Rows and bytes (with the WAL) of the call cache; a remote home caches in the user's cache (resources.engines)."""
    home = lgt_home.removeprefix("file://")
    path = Path.home() / ".cache/lgt/calls.sqlite" if "://" in home else Path(home) / "cache" / "calls.sqlite"
    if not path.exists():
        return CacheStats(0, 0)
    size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    return CacheStats(rows, size)


def collect(instance, lgt_home: str, latest: bool = False) -> list[StageCost]:
    """One StageCost per materialized asset: per partition the cold (or latest) materialization.

    A ranged run repeats its step's engine stats on every partition's event: they (and the step's time) are counted
    once per run. Rows and funnels are each partition's own and are summed; an old-layout event holds the range's
    sum instead, counted once for the run (in proportion to its partitions that were picked)."""
    import dagster as dg
    from dagster._core.events import DagsterEventType
    from dagster._serdes import serialize_value

    step_seconds: dict[str, dict[str, float]] = {}
    planned: dict[str, dict[str, int]] = {}

    def steps_of(run_id: str) -> dict[str, float]:
        if run_id not in step_seconds:
            step_seconds[run_id] = {
                e.step_key: e.dagster_event.event_specific_data.duration_ms / 1000
                for e in instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS)
            }
        return step_seconds[run_id]

    def planned_of(run_id: str) -> dict[str, int]:
        """Per asset, the largest planned-materialization event of the run (one per partition)."""
        if run_id not in planned:
            sizes: dict[str, int] = {}
            for e in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED):
                name = e.dagster_event.event_specific_data.asset_key.to_user_string()
                sizes[name] = max(sizes.get(name, 0), len(serialize_value(e)))
            planned[run_id] = sizes
        return planned[run_id]

    seen_steps: set[tuple[str, str]] = set()
    costs = []
    for key in sorted(instance.get_asset_keys(), key=lambda k: k.to_user_string()):
        asset = key.to_user_string()
        records, cursor = [], None
        while True:  # at most 10,000 records a call
            page = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=10_000, cursor=cursor)
            records += page.records
            if not page.has_more:
                break
            cursor = page.cursor
        if not records:
            continue
        # per partition, the chosen record: most calls made (the cold run), then earliest; or the latest
        chosen: dict[str | None, object] = {}
        for r in sorted(records, key=lambda r: r.storage_id):
            pk = r.event_log_entry.asset_materialization.partition
            prev = chosen.get(pk)
            calls = _llm_totals(r.event_log_entry.asset_materialization.metadata)["calls"]
            if prev is None or latest:
                chosen[pk] = r
            elif calls > _llm_totals(prev.event_log_entry.asset_materialization.metadata)["calls"]:
                chosen[pk] = r
        runs: dict[str, list] = defaultdict(list)
        for r in sorted(chosen.values(), key=lambda r: r.storage_id):
            runs[r.run_id].append(r)
        partitioned = any(pk is not None for pk in chosen)
        totals = defaultdict(float)
        seconds, sources, funnels = 0.0, set(), []
        splits: list[tuple[str, EventSplit]] = []
        planned_event, has_rows = 0, False
        for run_id, rs in runs.items():
            mds = [r.event_log_entry.asset_materialization.metadata for r in rs]
            old = is_old_layout(mds[0])
            for k, v in _llm_totals(mds[0]).items():  # the step's, on each of its partitions' events
                totals[k] += v
            if old:  # one sum over the range: count the share of its partitions picked here
                share = len(rs) / max(len(_value(mds[0]["partitions"]) or ()), 1)
                own = [(mds[0], share)]
            else:
                own = [(md, 1.0) for md in mds]
            for md, share in own:
                if "dagster/row_count" in md:
                    totals["rows"] += _num(md["dagster/row_count"]) * share
                    has_rows = True
                if "funnel_counts" in md:
                    funnels.append(_value(md["funnel_counts"]))
            step = rs[0].event_log_entry.step_key or asset
            if (run_id, step) in seen_steps:
                sources.add("shared step")
            elif step in steps_of(run_id):
                seen_steps.add((run_id, step))
                seconds += steps_of(run_id)[step]
                sources.add("step")
            elif any("seconds" in md for md in mds):  # the partitions ran side by side: the slowest
                seconds += max(_num(md.get("seconds")) for md in mds)
                sources.add("metadata")
            planned_event = max(planned_event, planned_of(run_id).get(asset, 0))
            for r, md in zip(rs, mds):
                paths = _value(md.get("paths")) or {}
                n = len(_value(md["partitions"]) or ()) if old else len(paths) or 1
                range_entry = folder_entry = 0
                if old:  # what the new code writes in place of the list: "first...last (n partitions in one step)"
                    keys = _value(md["partitions"])
                    text = f"{keys[0]}...{keys[-1]} ({n} partitions in one step)"
                    range_entry = len(serialize_value({"range": dg.MetadataValue.text(text)}))
                if paths:  # the `folder` the IO manager now writes instead: a file's path less "<key>.parquet"
                    pk, path = next(iter(paths.items()))
                    folder = str(path)[: -len(f"{pk}.parquet")].rstrip("/")
                    folder_entry = len(serialize_value({"folder": dg.MetadataValue.path(folder)}))
                entries = {k: len(serialize_value({k: v})) for k, v in md.items()}
                markdown = [k for k, v in md.items() if isinstance(v, dg.MarkdownMetadataValue)]
                size = len(serialize_value(r.event_log_entry))
                split = split_event(size, entries, markdown, n, range_entry, folder_entry)
                kind = "derived" if old else "paths" if paths else "ranged" if "range" in md else "single"
                splits.append((kind, split))
        stored_rows, disk, arrow = _storage(lgt_home, asset)
        # the current event: measured where the instance has one from a ranged run, else derived from a `paths`
        # event (exact but for the folder's bytes), else a single-partition run's, else derived from the old events;
        # the fixed part is the mean over partitions, their previews differ
        by_kind = {k: [x for kind, x in splits if kind == k] for k in ("ranged", "paths", "single", "derived")}
        kind = next(k for k in ("ranged", "paths", "single", "derived") if by_kind[k])
        event_from = {
            "ranged": "measured (ranged run)",
            "paths": "derived (events with `paths`)",
            "single": "measured (single-partition runs)",
            "derived": "derived (old-layout events)",
        }[kind]
        olds = by_kind["derived"]
        # the `paths` layout: measured where such events were read, else derived from the old ones
        withp = by_kind["paths"] or olds
        costs.append(
            StageCost(
                asset=asset,
                partitions=len(chosen),
                rows=round(totals["rows"]) if has_rows else stored_rows,  # checkpoints: one row each, stored
                calls=int(totals["calls"]),
                cache_hits=int(totals["cache_hits"]),
                tokens_in=int(totals["tokens_in"]),
                tokens_out=int(totals["tokens_out"]),
                seconds=round(seconds, 2),
                seconds_from="+".join(sorted(sources)) or "none",
                event_const=round(sum(x.const for x in by_kind[kind]) / len(by_kind[kind])),
                event_per_partition=max(x.per_partition for x in by_kind[kind]),
                event_from=event_from if partitioned else "measured",
                planned_event=planned_event,
                paths_event_const=round(sum(x.paths_const for x in withp) / len(withp)) if withp else 0,
                paths_event_per_partition=max((x.paths_per_partition for x in withp), default=0),
                old_event_const=round(sum(x.old_const for x in olds) / len(olds)) if olds else 0,
                old_event_per_partition=max((x.old_per_partition for x in olds), default=0),
                storage_bytes=disk,
                arrow_bytes=arrow,
                partitioned=partitioned,
                funnel=sum_funnels(funnels),
            )
        )
    return costs


# --- printing ------------------------------------------------------------------------------------------------------


def _h(n: float, unit: str = "bytes") -> str:
    if unit != "bytes":
        return f"{n:,.0f}" if n >= 100 or n == int(n) else f"{n:,.1f}"
    for u, s in (("TiB", 1024**4), ("GiB", GIB), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= s:
            return f"{n / s:,.1f} {u}"
    return f"{n:,.0f} B"


def _q(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:,.2f}M" if n >= 1e6 else f"{n / 1e3:,.1f}k" if n >= 1e3 else f"{n:,.0f}"


def report(
    costs: list[StageCost],
    cache: CacheStats,
    target: int,
    ram: float,
    disk: float,
    questions_per_partition: float | None = None,
    event_copies: int = 1,
) -> dict:
    by = {c.asset: c for c in costs}
    if "questions" not in by or not by["questions"].rows:
        sys.exit("stage_costs: the instance has no materialized `questions` asset to scale from")
    demo_q = by["questions"].rows
    demo_per_part = demo_q / by["questions"].partitions
    q_per_part = questions_per_partition or demo_per_part
    mult = uncapped_multipliers({c.asset: c.funnel for c in costs if c.funnel})
    mult = {a: m for a, m in mult.items() if by[a].calls or by[a].cache_hits}  # only the stages that call a model

    print("## Measured, per asset\n")
    print(
        "| asset | partitions | rows out | engine calls | cache hits | tokens in | tokens out | seconds (from) "
        "| one event: fixed + per partition of its run (from) | planned event | parquet | in memory |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|")
    for c in costs:
        print(
            f"| {c.asset} | {c.partitions} | {c.rows:,} | {c.calls:,} | {c.cache_hits:,} | {c.tokens_in:,} "
            f"| {c.tokens_out:,} | {c.seconds:,.1f} ({c.seconds_from}) | {_h(c.event_const)} + "
            f"{_h(c.event_per_partition)} ({c.event_from}) | {_h(c.planned_event)} | {_h(c.storage_bytes)} "
            f"| {_h(c.arrow_bytes)} |"
        )
    withp = [c for c in costs if c.paths_event_const or c.paths_event_per_partition]
    old = [c for c in costs if c.old_event_const or c.old_event_per_partition]
    if withp or old:
        print("\nEarlier layouts (read or derived from this instance's events), one event: fixed + per partition of")
        print("its run. With `paths`: every partition's file on every event; before: every partition's previews too.\n")
        print("| asset | with `paths` | before the fix |")
        print("|---|---|---|")
        for c in costs:
            if c in withp or c in old:
                wp = f"{_h(c.paths_event_const)} + {_h(c.paths_event_per_partition)}" if c in withp else "-"
                bf = f"{_h(c.old_event_const)} + {_h(c.old_event_per_partition)}" if c in old else "-"
                print(f"| {c.asset} | {wp} | {bf} |")
    print(
        f"\n{demo_q:,} questions in {by['questions'].partitions} partitions ({demo_per_part:,.0f} per partition); "
        f"call cache {cache.rows:,} rows, {_h(cache.bytes)} ({cache.bytes_per_row:,.0f} B a row)\n"
    )

    plain = extrapolate(costs, demo_q, target)
    unc = {p.asset: p for p in extrapolate(costs, demo_q, target, mult)}
    shards = f"{q_per_part:,.0f} questions per partition, {partitions_for(target, q_per_part):,} partitions"
    print(f"## Extrapolated to {target:,} questions (the measured machine; {shards})\n")
    print("| asset | x | rows | engine calls | tokens in | tokens out | hours | uncapped x | uncapped calls | hours |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in plain:
        u = unc[p.asset]
        extra = f"{u.factor:,.0f} | {u.calls:,.0f} | {u.seconds / 3600:,.1f}" if p.asset in mult else "| |"
        print(
            f"| {p.asset} | {p.factor:,.0f} | {p.rows:,.0f} | {p.calls:,.0f} | {p.tokens_in:,.0f} | "
            f"{p.tokens_out:,.0f} | {p.seconds / 3600:,.1f} | {extra} |"
        )
    total = sum(p.seconds for p in plain) / 3600
    total_u = sum(p.seconds for p in unc.values()) / 3600
    print(f"| **total** | | | | | | **{total:,.1f}** | | | **{total_u:,.1f}** |\n")

    found = limits(costs, cache, demo_q, q_per_part, target, ram, disk, event_copies=event_copies)
    found_u = limits(costs, cache, demo_q, q_per_part, target, ram, disk, mult, event_copies)
    print(f"## What each shared resource holds at {target:,} questions\n")
    print("| resource | limit | at target | reached at | uncapped: at target | reached at |")
    print("|---|---:|---:|---:|---:|---:|")
    for lim, lu in zip(found, found_u):
        thr = _h(lim.threshold, lim.unit) if lim.threshold is not None else "-"
        print(
            f"| {lim.name} | {thr} | {_h(lim.at_target, lim.unit)} | {_q(lim.breaks_at_questions)} "
            f"| {_h(lu.at_target, lu.unit)} | {_q(lu.breaks_at_questions)} |"
        )
    # the earlier layouts, for comparison: with `paths` (P^2 in a path a partition), before the fix (in the previews)
    with_paths = event_limits(costs, q_per_part, target, disk, event_copies, "paths") if withp else []
    before = event_limits(costs, q_per_part, target, disk, event_copies, "old") if old else []
    for lim in (*with_paths, *before):
        thr = _h(lim.threshold, lim.unit)
        print(f"| {lim.name} | {thr} | {_h(lim.at_target, lim.unit)} | {_q(lim.breaks_at_questions)} | | |")
    firsts = {}
    for label, found_ in (("as configured", found), ("uncapped", found_u)):
        reached = [lim for lim in found_ if lim.breaks_at_questions]
        if not reached:
            print(f"\nNothing measured reaches its limit ({label}).")
            continue
        first = min(reached, key=lambda lim: lim.breaks_at_questions)
        at = first.breaks_at_questions
        firsts[label] = asdict(first)
        print(
            f"\nBreaks first ({label}): {first.name}, at about {_q(at)} questions "
            f"({partitions_for(at, q_per_part):,} partitions of {q_per_part:,.0f} questions)."
        )
    return {
        "demo_questions": demo_q,
        "questions_per_partition": q_per_part,
        "demo_questions_per_partition": demo_per_part,
        "cache": asdict(cache),
        "costs": [asdict(c) for c in costs],
        "projection": [asdict(p) for p in plain],
        "uncapped_multipliers": mult,
        "projection_uncapped": [asdict(p) for p in unc.values()],
        "limits": [asdict(lim) for lim in found],
        "limits_uncapped": [asdict(lim) for lim in found_u],
        "limits_with_paths": [asdict(lim) for lim in with_paths],
        "limits_before_the_fix": [asdict(lim) for lim in before],
        "breaks_first": firsts,
    }


def _ram_bytes() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def main(argv: Sequence[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dagster-home", default=os.environ.get("DAGSTER_HOME"), help="default: $DAGSTER_HOME")
    ap.add_argument("--lgt-home", default=os.environ.get("LGT_HOME"), help="default: $LGT_HOME")
    ap.add_argument("--questions", type=int, default=1_000_000, help="the scale to extrapolate to")
    ap.add_argument(
        "--questions-per-partition",
        type=float,
        help="shard size to extrapolate with (default: the run's); a ranged run stores events per partition",
    )
    ap.add_argument(
        "--event-copies",
        type=int,
        default=2,
        help="times the instance stores each event (2: Dagster's SQLite storage, run database and index.db)",
    )
    ap.add_argument("--latest", action="store_true", help="the latest materializations instead of the cold ones")
    ap.add_argument("--ram-gib", type=float, help="memory of the machine that runs exports (default: this one's)")
    ap.add_argument("--disk-gib", type=float, help="free disk for the instance and cache (default: DAGSTER_HOME's)")
    ap.add_argument("--json", help="also write everything here")
    a = ap.parse_args(argv)
    if not a.dagster_home or not a.lgt_home:
        ap.error("give --dagster-home and --lgt-home (or set DAGSTER_HOME and LGT_HOME)")
    if not Path(a.dagster_home).is_dir():
        ap.error(f"--dagster-home {a.dagster_home}: no such folder")
    os.environ["DAGSTER_HOME"] = str(Path(a.dagster_home).resolve())  # the project's dagster.yaml reads it
    import dagster as dg

    instance = dg.DagsterInstance.get()
    costs = collect(instance, a.lgt_home, latest=a.latest)
    ram = a.ram_gib * GIB if a.ram_gib else _ram_bytes()
    disk = a.disk_gib * GIB if a.disk_gib else shutil.disk_usage(a.dagster_home).free
    out = report(costs, cache_stats(a.lgt_home), a.questions, ram, disk, a.questions_per_partition, a.event_copies)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    record_results(out, a.questions)
    return out


def record_results(out: dict, target: int) -> None:
    """The summary's figure (benchmarks/results.py): the hours at the target scale, as configured and uncapped,
    and the shared resource that reaches its limit first."""
    from results import command_line, record

    def hours(rows: list[dict]) -> str:
        h = sum(p["seconds"] for p in rows) / 3600
        return f"{h:,.1f}" if h < 1000 else f"{h:,.0f}"

    def m(q: float) -> str:
        return f"{q / 1e6:.3g}M"

    value = f"{hours(out['projection'])} h as configured, {hours(out['projection_uncapped'])} h uncapped"
    first, unc = out["breaks_first"].get("as configured"), out["breaks_first"].get("uncapped")
    if first:
        value += f"; breaks first: {first['name']}, at {m(first['breaks_at_questions'])} questions"
        value += f" ({m(unc['breaks_at_questions'])} uncapped)" if unc else ""
    notes = (
        f"read from a run of {out['demo_questions']:,} questions, {out['demo_questions_per_partition']:,.0f} a shard"
    )
    scale = "1M" if target == 1_000_000 else f"{target:,}"
    record("main job", f"per-stage cost extrapolated to {scale} questions", value, command=command_line(), notes=notes)


if __name__ == "__main__":
    main()
