"""Synthetic scene generation: throughput on one core and peak memory across shards.

    python benchmarks/scenes.py                 # full run (~2 min on a 2-core VM)
    python benchmarks/scenes.py --quick         # smoke run (< 30 s)
    python benchmarks/scenes.py --images 1024   # more images per throughput case

Part 1, throughput, in this process pinned to ONE CPU (os.sched_setaffinity):
  a) generate_scene + render (PNG)            -- the generator alone, at
     png_compress_level 1 (the recipe default) and 6 (PIL's default), with PNG sizes
  b) a + caption                              -- what read_synthetic computes
  c) read_synthetic -> build_shard            -- + validation (full PNG decode,
                                                 sha256, boxes) and Arrow conversion
  d) c + write_table (zstd parquet, temp dir) -- the whole per-shard asset path
  plus a per-stage breakdown (generate / render / caption alone, and PNG encoding
  alone: Pillow level 1 vs a numpy "Up"-filter + zlib prototype, png_up_filter below).
  Every case sees the same (seed, shard, index) scenes, is warmed up once, runs
  --repeats times interleaved with the others; the table shows the median and best.

Part 2, peak memory, one FRESH subprocess per case (1, 4, 16 shards), each pinned
to one CPU, materializing its shards one after another like the asset does
(read_synthetic -> build_shard -> write_table to a temp dir, then drop the result).
Reported per case: RSS after imports, peak RSS (ru_maxrss and /proc VmHWM), the peak
above the import baseline (the shards' working set), RSS left after the last shard,
and the wall time.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import random
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET = 100.0  # images/s per core at 512x512, PNG
MIB = 1024 * 1024
PNG_CASE = {1: "a  generate+render  (PNG level 1)", 6: "a' generate+render  (PNG level 6)"}


def pin_one_cpu() -> int:
    """Pin this process to the first CPU it may run on; return that CPU."""
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def proc_status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def make_source(shards: int, images_per_shard: int, size: int, compress_level: int = 1):
    from lgt.images.sources import SyntheticScenesSource

    return SyntheticScenesSource(
        kind="synthetic_scenes",
        name="bench",
        shards=shards,
        images_per_shard=images_per_shard,
        width=size,
        height=size,
        png_compress_level=compress_level,
    )


# --------------------------------------------------------------------------- part 1


def png_up_filter(a: np.ndarray, level: int = 1) -> bytes:
    """Prototype encoder for comparison: RGB8 PNG, PNG "Up" filter on every row in
    numpy, one zlib stream. Pillow instead tries all five filters per row (adaptive)."""
    h, w, c = a.shape
    flat = a.reshape(h, w * c)
    raw = np.empty((h, w * c + 1), np.uint8)
    raw[:, 0] = 2  # filter type Up
    raw[0, 1:] = flat[0]
    np.subtract(flat[1:], flat[:-1], out=raw[1:, 1:])  # uint8 wraps mod 256, as PNG wants

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw.tobytes(), level))
        + chunk(b"IEND", b"")
    )


def keys_of(src) -> list[tuple[int, int]]:
    return [(s, i) for s in range(src.shards) for i in range(src.images_per_shard)]


def throughput(n_images: int, repeats: int, size: int, images_per_shard: int) -> dict:
    from lgt.images.captions import caption
    from lgt.images.scenes import generate_scene, render
    from lgt.images.sources.synthetic import read_synthetic
    from lgt.images.validate import build_shard
    from lgt.storage import artifact_path, write_table

    ips = min(images_per_shard, n_images)
    shards = max(1, n_images // ips)
    src = make_source(shards, ips, size)
    keys = keys_of(src)
    n = len(keys)
    objects = tuple(src.objects)

    def gen(s, i):
        return generate_scene(src.seed, s, i, src.width, src.height, objects, src.difficulty)

    def cap_rng(s, i):  # exactly as read_synthetic seeds it
        return random.Random(f"lgt-caption:{src.seed}:{s}:{i}")

    sizes: dict[int, list[int]] = {1: [], 6: []}

    def case_gen_render(level):
        def run():
            out = [len(render(gen(s, i), level)) for s, i in keys]
            sizes[level] = out

        return run

    def case_gen_render_caption():
        for s, i in keys:
            sc = gen(s, i)
            caption(sc, cap_rng(s, i))
            render(sc, src.png_compress_level)

    def case_build_shard():
        for s in range(src.shards):
            r = build_shard(read_synthetic(src, s))
            assert r.images.num_rows == src.images_per_shard, r.reasons()
            del r

    tmp = tempfile.TemporaryDirectory(prefix="lgt-bench-")

    def case_build_write():
        for s in range(src.shards):
            r = build_shard(read_synthetic(src, s))
            write_table(r.images, artifact_path(tmp.name, "images", f"bench/{s}"))
            write_table(r.quarantine, artifact_path(tmp.name, "images_quarantine", f"bench/{s}"))
            del r

    def case_generate_only():
        for s, i in keys:
            gen(s, i)

    def case_caption_only():
        for sc, (s, i) in zip(scenes, keys):
            caption(sc, cap_rng(s, i))

    def case_render_only():
        for sc in scenes:
            render(sc, 1)

    scenes = [gen(s, i) for s, i in keys]  # for the render-/caption-only cases
    from PIL import Image

    pixels = [Image.open(io.BytesIO(render(sc, 1))).convert("RGB") for sc in scenes]  # for encode-only
    arrays = [np.asarray(im) for im in pixels]
    assert all(np.array_equal(np.asarray(Image.open(io.BytesIO(png_up_filter(a)))), a) for a in arrays[:8])

    def case_pil_encode():
        for im in pixels:
            im.save(io.BytesIO(), format="PNG", compress_level=1)

    def case_up_encode():
        for a in arrays:
            png_up_filter(a)

    cases = {
        PNG_CASE[1]: case_gen_render(1),
        PNG_CASE[6]: case_gen_render(6),
        "b  + caption": case_gen_render_caption,
        "c  read_synthetic -> build_shard": case_build_shard,
        "d  c + write_table (parquet)": case_build_write,
        "   generate_scene only": case_generate_only,
        "   render only (level 1)": case_render_only,
        "   caption only": case_caption_only,
        "   PNG encode only, PIL level 1": case_pil_encode,
        "   PNG encode only, Up filter+zlib 1": case_up_encode,
    }

    # warm up once: every code path, outside the timed region
    warm = make_source(1, 2, size)
    for s, i in keys_of(warm):
        sc = generate_scene(warm.seed, s, i, warm.width, warm.height, objects, warm.difficulty)
        caption(sc, random.Random(0))
        render(sc, 1)
        render(sc, 6)
    write_table(build_shard(read_synthetic(warm, 0)).images, artifact_path(tmp.name, "warm", "w/0"))

    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(repeats):
        for name, fn in cases.items():  # interleaved, so drift hits every case alike
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    tmp.cleanup()

    rows = []
    for name, ts in times.items():
        med, best = statistics.median(ts), min(ts)
        rows.append(
            {
                "case": name,
                "images": n,
                "median_s": med,
                "img_per_s": n / med,
                "best_img_per_s": n / best,
                "spread_pct": 100 * (max(ts) - best) / med,
                "ms_per_image": 1000 * med / n,
                "vs_target": (n / med) / TARGET,
            }
        )
    png = {
        lvl: {
            "mean_kib": statistics.mean(v) / 1024,
            "total_mib": sum(v) / MIB,
            "img_per_s": n / statistics.median(times[PNG_CASE[lvl]]),
        }
        for lvl, v in sizes.items()
    }
    png["up_filter_mean_kib"] = statistics.mean(len(png_up_filter(a)) for a in arrays) / 1024
    return {"rows": rows, "png": png, "images": n, "shards": src.shards, "images_per_shard": src.images_per_shard}


def print_throughput(res: dict, cpu: int, repeats: int) -> None:
    print(
        f"\n== Throughput, one core (pinned to CPU {cpu}), {res['images']} images "
        f"({res['shards']} x {res['images_per_shard']}), 512x512 PNG, median of {repeats} ==\n"
    )
    hdr = f"{'case':<36} {'img/s':>8} {'best':>8} {'spread':>7} {'ms/img':>8} {'vs 100/s':>9}"
    print(hdr)
    print("-" * len(hdr))
    for i, r in enumerate(res["rows"]):
        if i == 5:
            print(f"{'  breakdown (same scenes):':<36}")
        print(
            f"{r['case']:<36} {r['img_per_s']:>8.1f} {r['best_img_per_s']:>8.1f} {r['spread_pct']:>6.1f}% "
            f"{r['ms_per_image']:>8.2f} {r['vs_target']:>8.2f}x"
        )
    p1, p6 = res["png"][1], res["png"][6]
    print("\n== PNG compress_level (generate+render) ==\n")
    hdr = f"{'level':>5} {'img/s':>8} {'mean KiB/img':>13} {'MiB total':>10}"
    print(hdr)
    print("-" * len(hdr))
    for lvl, p in ((1, p1), (6, p6)):
        print(f"{lvl:>5} {p['img_per_s']:>8.1f} {p['mean_kib']:>13.1f} {p['total_mib']:>10.2f}")
    print(
        f"level 6 vs 1: {p6['img_per_s'] / p1['img_per_s']:.2f}x the speed, "
        f"{p6['mean_kib'] / p1['mean_kib']:.2f}x the size"
    )
    print(f"prototype Up filter + zlib level 1 (same pixels): {res['png']['up_filter_mean_kib']:.1f} KiB/img")


# --------------------------------------------------------------------------- part 2


def memory_child(shards: int, images_per_shard: int, size: int) -> None:
    """Run in a fresh interpreter: materialize `shards` shards, print one JSON line."""
    cpu = pin_one_cpu()
    from lgt.images.sources.synthetic import read_synthetic
    from lgt.images.validate import build_shard
    from lgt.storage import artifact_path, write_table

    src = make_source(shards, images_per_shard, size)
    gc.collect()
    base_kib = proc_status_kib("VmRSS")
    after_shard = []
    rows = 0
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lgt-mem-") as tmp:
        for s in range(shards):
            result = build_shard(read_synthetic(src, s))
            write_table(result.images, artifact_path(tmp, "images", f"bench/{s}"))
            write_table(result.quarantine, artifact_path(tmp, "images_quarantine", f"bench/{s}"))
            rows += result.images.num_rows
            del result
            after_shard.append(proc_status_kib("VmRSS"))
    wall = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "cpu": cpu,
                "shards": shards,
                "rows": rows,
                "wall_s": wall,
                "base_kib": base_kib,
                "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,  # KiB on Linux
                "hwm_kib": proc_status_kib("VmHWM"),
                "rss_after_first_kib": after_shard[0],
                "rss_after_last_kib": after_shard[-1],
            }
        )
    )


def memory(shard_counts: list[int], images_per_shard: int, size: int) -> list[dict]:
    out = []
    for n in shard_counts:
        cmd = [
            sys.executable,
            __file__,
            "--_memory-child",
            str(n),
            "--images-per-shard",
            str(images_per_shard),
            "--size",
            str(size),
        ]
        p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        if p.returncode != 0:
            sys.exit(f"memory child for {n} shards failed:\n{p.stderr}")
        out.append(json.loads(p.stdout.strip().splitlines()[-1]))
    return out


def print_memory(res: list[dict], images_per_shard: int) -> None:
    print(f"\n== Peak memory, fresh process per case, {images_per_shard} images/shard, one core ==\n")
    hdr = (
        f"{'shards':>6} {'images':>7} {'base MiB':>9} {'peak MiB':>9} {'HWM MiB':>8} {'peak-base':>10} "
        f"{'RSS 1st':>8} {'RSS last':>9} {'wall s':>7} {'img/s':>6}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in res:
        print(
            f"{r['shards']:>6} {r['rows']:>7} {r['base_kib'] / 1024:>9.1f} {r['maxrss_kib'] / 1024:>9.1f} "
            f"{r['hwm_kib'] / 1024:>8.1f} {(r['maxrss_kib'] - r['base_kib']) / 1024:>10.1f} "
            f"{r['rss_after_first_kib'] / 1024:>8.1f} {r['rss_after_last_kib'] / 1024:>9.1f} "
            f"{r['wall_s']:>7.2f} {r['rows'] / r['wall_s']:>6.1f}"
        )
    lo, hi = res[0], res[-1]
    ratio = hi["maxrss_kib"] / lo["maxrss_kib"]
    dratio = (hi["maxrss_kib"] - hi["base_kib"]) / max(1, lo["maxrss_kib"] - lo["base_kib"])
    print(f"\npeak({hi['shards']})/peak({lo['shards']}) = {ratio:.3f}x; above the import baseline: {dratio:.3f}x")


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=None, help="images per throughput case (default 512, quick 64)")
    ap.add_argument("--quick", action="store_true", help="small smoke run, < 30 s")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs per case (default 3, quick 1)")
    ap.add_argument("--images-per-shard", type=int, default=None, help="default 64, quick 16")
    ap.add_argument("--shards", default="1,4,16", help="shard counts for the memory part")
    ap.add_argument("--size", type=int, default=512, help="image width and height")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    ap.add_argument("--_memory-child", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()

    ips = a.images_per_shard or (16 if a.quick else 64)
    if a._memory_child is not None:
        memory_child(a._memory_child, ips, a.size)
        return

    images = a.images or (64 if a.quick else 512)
    repeats = a.repeats or (1 if a.quick else 3)
    shard_counts = [int(x) for x in a.shards.split(",")]

    import numpy
    import PIL
    import pyarrow

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"{platform.platform()}\nPython {platform.python_version()}, Pillow {PIL.__version__}, "
        f"numpy {numpy.__version__}, pyarrow {pyarrow.__version__}\n"
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    t0 = time.perf_counter()
    results: dict = {}
    if not a.skip_memory:  # first, while this process is still small
        results["memory"] = memory(shard_counts, ips, a.size)
    if not a.skip_throughput:
        cpu = pin_one_cpu()
        results["throughput"] = throughput(images, repeats, a.size, ips)
        print_throughput(results["throughput"], cpu, repeats)
    if not a.skip_memory:
        print_memory(results["memory"], ips)
    print(f"\ntotal {time.perf_counter() - t0:.1f} s")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2, default=str))
    if not a.quick:
        record_results(results, repeats)


def record_results(res: dict, repeats: int) -> None:
    """The summary's figures (benchmarks/results.py): images/s of the generator and of the shard path (medians),
    and the peak RSS over the shard counts of the memory part."""
    from results import command_line, record

    cmd = command_line()
    if "throughput" in res:
        rate = {r["case"]: r["img_per_s"] for r in res["throughput"]["rows"]}
        notes = f"median of {repeats}, {res['throughput']['images']} images of {res['throughput']['images_per_shard']}"
        value = f"{rate[PNG_CASE[1]]:.0f} images/s ({rate['b  + caption']:.0f} with captions)"
        record("stage throughput", "synthetic scenes, generate + render, one core", value, command=cmd, notes=notes)
        c, d = rate["c  read_synthetic -> build_shard"], rate["d  c + write_table (parquet)"]
        value = f"{c:.0f} / {d:.0f} images/s (build_shard / + parquet)"
        figure = "`images` shard path (validate, Arrow, parquet), one core"
        record("stage throughput", figure, value, command=cmd, notes=notes)
    if "memory" in res:
        mem = res["memory"]
        peaks = " / ".join(f"{r['maxrss_kib'] / 1024:.1f}" for r in mem)
        shards = " / ".join(str(r["shards"]) for r in mem)
        ratio = mem[-1]["maxrss_kib"] / mem[0]["maxrss_kib"]
        value = f"{peaks} MiB at {shards} shards ({mem[-1]['shards']}/{mem[0]['shards']} = {ratio:.2f}x)"
        ips = mem[0]["rows"] // mem[0]["shards"]
        record("memory", f"scenes: peak RSS over shards ({ips} images each)", value, command=cmd)


if __name__ == "__main__":
    main()
