"""The evaluation report, in the papers' layout: accuracy per model and benchmark with intervals, deltas against the
baseline, per-task tables, answer-reading counts and training cost; and the bar chart of the overall accuracies.

Intervals are recomputed here from each row's (correct, n) at the report's confidence, so every number in the
report uses the same confidence whatever `summarize` was called with.
"""

from __future__ import annotations

from typing import Any

from lgt.evaluation.scoring import OVERALL, difference_interval, wilson_interval
from lgt.plots import figure, figure_png

DASH = "—"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _cell(r: dict[str, Any], confidence: float) -> str:
    lo, hi = wilson_interval(r["correct"], r["n"], confidence)
    return f"{_pct(r['correct'] / r['n'])} % [{_pct(lo)}, {_pct(hi)}]"


def _table(header: list[str], rows: list[list[str]], right_from: int = 1) -> list[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _index(summary: list[dict[str, Any]]) -> tuple[list[str], list[str], dict[tuple[str, str, str], dict]]:
    models: list[str] = []
    benchmarks: list[str] = []
    rows: dict[tuple[str, str, str], dict] = {}
    for i, r in enumerate(summary):
        for field in ("model", "benchmark", "task", "n", "correct"):
            if field not in r:
                raise ValueError(f"summary row {i}: field {field} is missing")
        if r["n"] <= 0:
            raise ValueError(f"summary row {i}: field n: {r['n']} (a summary row has at least one question)")
        if r["model"] not in models:
            models.append(r["model"])
        if r["benchmark"] not in benchmarks:
            benchmarks.append(r["benchmark"])
        rows[(r["model"], r["benchmark"], r["task"])] = r
    return models, sorted(benchmarks), rows


def _duration(seconds: float) -> str:
    minutes, s = divmod(round(seconds), 60)
    h, m = divmod(minutes, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {s:02d}s"


def _cost_cells(cost: dict[str, Any] | None) -> list[str]:
    if not cost:
        return [DASH] * 4
    fmt = [
        ("steps", lambda v: f"{int(v):,}"),
        ("tokens_seen", lambda v: f"{int(v):,}"),
        ("wall_seconds", _duration),
        ("final_loss", lambda v: f"{float(v):.4f}"),
    ]
    return [DASH if cost.get(k) is None else f(cost[k]) for k, f in fmt]


def render_report(
    summary: list[dict[str, Any]], costs: dict[str, dict[str, Any]], baseline: str, confidence: float, title: str
) -> str:
    """The evaluation report as markdown (see the module docstring for its tables)."""
    models, benchmarks, rows = _index(summary)
    if baseline not in models:
        raise ValueError(f"render_report: the baseline {baseline!r} has no scores (models: {', '.join(models)})")
    conf = f"{100 * confidence:g} %"
    overall = {(m, b): rows.get((m, b, OVERALL)) for m in models for b in benchmarks}
    out = [f"# {title}", ""]

    # main table: a model's average only where it has every benchmark, else it compares unlike sets
    main = []
    for m in models:
        cells = [_cell(overall[m, b], confidence) if overall[m, b] else DASH for b in benchmarks]
        accs = [overall[m, b]["correct"] / overall[m, b]["n"] for b in benchmarks if overall[m, b]]
        avg = f"{_pct(sum(accs) / len(accs))} %" if len(accs) == len(benchmarks) else DASH
        main.append([m, *cells, avg])
    out += ["## Accuracy", ""]
    out += _table(["model", *benchmarks, "Average"], main)

    # deltas against the baseline, with the difference interval and whether the two accuracy intervals overlap
    deltas = []
    for m in models:
        if m == baseline:
            continue
        for b in benchmarks:
            mine, base = overall[m, b], overall[baseline, b]
            if not mine or not base:
                deltas.append([m, b, DASH, DASH])
                continue
            d = mine["correct"] / mine["n"] - base["correct"] / base["n"]
            lo, hi = difference_interval(mine["correct"], mine["n"], base["correct"], base["n"], confidence)
            l1, u1 = wilson_interval(mine["correct"], mine["n"], confidence)
            l2, u2 = wilson_interval(base["correct"], base["n"], confidence)
            overlap = "yes" if l1 <= u2 and l2 <= u1 else "no"
            deltas.append([m, b, f"{100 * d:+.1f} pts [{100 * lo:+.1f}, {100 * hi:+.1f}]", overlap])
    if deltas:
        out += ["", f"## Change against {baseline}", ""]
        out += _table(["model", "benchmark", f"Δ accuracy [{conf} interval]", f"{conf} intervals overlap"], deltas, 2)
        out += [
            "",
            "A difference whose interval excludes 0 is significant at that level; overlapping accuracy intervals "
            "alone do not show there is no difference.",
        ]

    # per task, one table per benchmark; a cell shows its n only where it differs from the row's
    out += ["", "## Per task"]
    for b in benchmarks:
        tasks = sorted({t for (m, bb, t) in rows if bb == b and t != OVERALL})
        table = []
        for t in [*tasks, OVERALL]:
            present = [rows[m, b, t] for m in models if (m, b, t) in rows]
            n = present[0]["n"] if present else 0
            cells = []
            for m in models:
                r = rows.get((m, b, t))
                cells.append(DASH if r is None else _cell(r, confidence) + (f" (n={r['n']})" if r["n"] != n else ""))
            table.append([f"**{t}**" if t == OVERALL else t, str(n), *cells])
        out += ["", f"### {b}", ""]
        out += _table(["task", "n", *models], table)

    # how the answers were read: unreadable and failed calls count as wrong above
    reading = [
        [m, b, str(r["n"]), str(r.get("unreadable", 0)), str(r.get("errors", 0)), str(r.get("forced_close", 0))]
        for m in models
        for b in benchmarks
        if (r := overall[m, b])
    ]
    out += ["", "## Answers read", ""]
    out += _table(["model", "benchmark", "n", "unreadable", "call errors", "thought closed by budget"], reading, 2)

    cost_rows = [[m, *_cost_cells(costs.get(m))] for m in [*models, *(m for m in costs if m not in models)]]
    out += ["", "## Training cost", ""]
    out += _table(["model", "steps", "tokens seen", "wall time", "final loss"], cost_rows)

    ns = []
    for b in benchmarks:
        per_model = {m: overall[m, b]["n"] for m in models if overall[m, b]}
        if len(set(per_model.values())) == 1:
            ns.append(f"{b} {next(iter(per_model.values())):,}")
        else:
            ns.append(f"{b} (" + ", ".join(f"{m} {v:,}" for m, v in per_model.items()) + ")")
    out += [
        "",
        f"Questions per benchmark (n): {', '.join(ns)}. Accuracies are shown with their Wilson score interval at "
        f"{conf}; differences with Newcombe's hybrid score interval (method 10) at {conf}. The Average is the mean "
        "of the benchmarks' overall accuracies. Unreadable answers and failed calls count as wrong.",
        "",
    ]
    return "\n".join(out)


def accuracy_chart_png(summary: list[dict[str, Any]], confidence: float) -> bytes:
    """Grouped bars: benchmarks on x, one bar per model, overall accuracy with its interval as error bars."""
    models, benchmarks, rows = _index(summary)
    if not benchmarks:
        raise ValueError("accuracy_chart_png: the summary has no rows")
    fig = figure(max(6.0, 1.2 + 0.5 * len(benchmarks) * (len(models) + 1)), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / len(models)
    for j, m in enumerate(models):
        xs, accs, below, above = [], [], [], []
        for i, b in enumerate(benchmarks):
            r = rows.get((m, b, OVERALL))
            if r is None:
                continue
            acc = r["correct"] / r["n"]
            lo, hi = wilson_interval(r["correct"], r["n"], confidence)
            xs.append(i - 0.4 + width * (j + 0.5))
            accs.append(100 * acc)
            below.append(100 * (acc - lo))
            above.append(100 * (hi - acc))
        ax.bar(xs, accs, width, yerr=[below, above], capsize=3, label=m)
    ax.set_xticks(range(len(benchmarks)), benchmarks, rotation=20 if len(benchmarks) > 4 else 0)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"Overall accuracy, {100 * confidence:g} % Wilson intervals")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    return figure_png(fig)
