"""The report's markdown on a crafted summary (cells worked out by hand or from published intervals), the accuracy
chart and the loss curve as PNGs, and the markdown that embeds a PNG."""

import base64
import io
import re

import pytest
from PIL import Image

from lgt.evaluation.report import accuracy_chart_png, render_report
from lgt.plots import loss_curve_png, png_markdown


def row(model: str, benchmark: str, task: str, correct: int, n: int, **counts) -> dict:
    # lo/hi deliberately wrong: the report recomputes them at its own confidence
    return {
        "model": model,
        "benchmark": benchmark,
        "task": task,
        "n": n,
        "correct": correct,
        "accuracy": correct / n,
        "lo": -1.0,
        "hi": -1.0,
        "unreadable": counts.get("unreadable", 0),
        "errors": counts.get("errors", 0),
        "forced_close": counts.get("forced_close", 0),
    }


SUMMARY = [
    row("base_model", "cv", "count", 2, 4),
    row("base_model", "cv", "depth", 3, 6),
    row("base_model", "cv", "overall", 5, 10, unreadable=1, errors=1),
    row("base_model", "b2", "overall", 0, 10),
    row("sft_checkpoint", "cv", "count", 4, 4),
    row("sft_checkpoint", "cv", "depth", 4, 6),
    row("sft_checkpoint", "cv", "overall", 8, 10, forced_close=2),
    row("sft_checkpoint", "b2", "overall", 10, 10),
    row("dpo_checkpoint", "cv", "overall", 9, 10),  # no b2 scores: no average, no delta there
]
COSTS = {
    "sft_checkpoint": {"steps": 120, "tokens_seen": 1234567, "wall_seconds": 3725.4, "final_loss": 0.81234},
    "dpo_checkpoint": {"steps": 40, "tokens_seen": 98765, "wall_seconds": 75, "final_loss": None},
}


def table_rows(md: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after `heading`, as cells."""
    lines = md.split(heading + "\n", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append([c.strip() for c in line.strip("|").split("|")])
    return block[2:]  # without the header and the alignment row


@pytest.fixture(scope="module")
def md() -> str:
    return render_report(SUMMARY, COSTS, "base_model", 0.95, "Visual reasoning evaluation")


def test_the_accuracy_table(md):
    assert md.startswith("# Visual reasoning evaluation\n")
    assert "| model | b2 | cv | Average |" in md
    # Wilson 95 %: 5/10 [23.66, 76.34]; 8/10 [49.02, 94.33]; 0/10 hi = 3.8415 / 13.8415 = 27.75; 10/10 lo = 72.25;
    # 9/10 [59.58, 98.21] (centre (0.9 + 0.19207) / 1.38415, half 1.95996 / 1.38415 * sqrt(0.009 + 0.0096036))
    assert table_rows(md, "## Accuracy") == [
        ["base_model", "0.0 % [0.0, 27.8]", "50.0 % [23.7, 76.3]", "25.0 %"],
        ["sft_checkpoint", "100.0 % [72.2, 100.0]", "80.0 % [49.0, 94.3]", "90.0 %"],
        ["dpo_checkpoint", "—", "90.0 % [59.6, 98.2]", "—"],
    ]


def test_the_delta_table(md):
    # 10/10 vs 0/10: Newcombe 1998 method 10 gives 0.6075 to 1.0000; 8/10 vs 5/10: -0.1067 to 0.5999 from the two
    # Wilson intervals (0.3 - hypot(0.8 - 0.4902, 0.7634 - 0.5), 0.3 + hypot(0.9433 - 0.8, 0.5 - 0.2366));
    # 9/10 vs 5/10: 0.4 - hypot(0.3042, 0.2634) = -0.0024, 0.4 + hypot(0.0821, 0.2634) = 0.6759
    assert table_rows(md, "## Change against base_model") == [
        ["sft_checkpoint", "b2", "+100.0 pts [+60.8, +100.0]", "no"],
        ["sft_checkpoint", "cv", "+30.0 pts [-10.7, +60.0]", "yes"],
        ["dpo_checkpoint", "b2", "—", "—"],
        ["dpo_checkpoint", "cv", "+40.0 pts [-0.2, +67.6]", "yes"],
    ]


def test_the_per_task_tables(md):
    # 2/4: centre 0.5, half 1.95996 / 1.96036 * sqrt(0.0625 + 0.060024) = 0.34996; 4/4 lo = 4 / 7.84146 = 0.5101;
    # 3/6 [18.76, 81.24]; 4/6 [29.99, 90.32]
    assert table_rows(md, "### cv") == [
        ["count", "4", "50.0 % [15.0, 85.0]", "100.0 % [51.0, 100.0]", "—"],
        ["depth", "6", "50.0 % [18.8, 81.2]", "66.7 % [30.0, 90.3]", "—"],
        ["**overall**", "10", "50.0 % [23.7, 76.3]", "80.0 % [49.0, 94.3]", "90.0 % [59.6, 98.2]"],
    ]
    assert table_rows(md, "### b2") == [["**overall**", "10", "0.0 % [0.0, 27.8]", "100.0 % [72.2, 100.0]", "—"]]


def test_the_reading_and_cost_tables_and_the_n_line(md):
    assert table_rows(md, "## Answers read")[:3] == [
        ["base_model", "b2", "10", "0", "0", "0"],
        ["base_model", "cv", "10", "1", "1", "0"],
        ["sft_checkpoint", "b2", "10", "0", "0", "0"],
    ]
    assert table_rows(md, "## Training cost") == [
        ["base_model", "—", "—", "—", "—"],
        ["sft_checkpoint", "120", "1,234,567", "1h 02m", "0.8123"],
        ["dpo_checkpoint", "40", "98,765", "1m 15s", "—"],
    ]
    assert "Questions per benchmark (n): b2 10, cv 10." in md
    uneven = render_report([*SUMMARY[:8], row("dpo_checkpoint", "cv", "overall", 9, 9)], {}, "base_model", 0.95, "t")
    assert "(n): b2 10, cv (base_model 10, sft_checkpoint 10, dpo_checkpoint 9)." in uneven
    assert "Wilson score interval at 95 %" in md


def test_the_report_follows_its_confidence_and_checks_the_baseline():
    md90 = render_report(SUMMARY, {}, "base_model", 0.90, "t")
    # 5/10 at 90 %: z = 1.64485, centre (0.5 + 0.13528) / 1.27055 = 0.5, half 1.29460 * sqrt(0.025 + 0.0067639)
    assert "50.0 % [26.9, 73.1]" in md90 and "Wilson score interval at 90 %" in md90
    with pytest.raises(ValueError, match="baseline 'nobody'"):
        render_report(SUMMARY, {}, "nobody", 0.95, "t")
    with pytest.raises(ValueError, match="summary row 0: field n"):
        render_report([row("a", "b", "overall", 0, 1) | {"n": 0}], {}, "a", 0.95, "t")


# ---------------------------------------------------------------- PNGs

TAB_BLUE, TAB_ORANGE, TAB_GREEN = (0x1F, 0x77, 0xB4), (0xFF, 0x7F, 0x0E), (0x2C, 0xA0, 0x2C)  # matplotlib's cycle


def colours(png: bytes) -> set[tuple[int, int, int]]:
    img = Image.open(io.BytesIO(png))
    img.load()
    return {c for _, c in img.convert("RGB").getcolors(maxcolors=1 << 20)}


def test_accuracy_chart_has_one_bar_colour_per_model():
    png = accuracy_chart_png(SUMMARY, 0.95)
    assert png.startswith(b"\x89PNG")
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.width > 300 and img.height > 200
    assert {TAB_BLUE, TAB_ORANGE, TAB_GREEN} <= colours(png)
    one_model = accuracy_chart_png([r for r in SUMMARY if r["model"] == "base_model"], 0.95)
    assert TAB_BLUE in colours(one_model) and TAB_ORANGE not in colours(one_model)


def test_loss_curve_png_and_its_markdown():
    png = loss_curve_png([(10, 2.1), (0, 2.5), (20, 1.7), (30, 1.4)], "sft loss")
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.width > 300 and img.height > 200
    assert TAB_BLUE in colours(png)  # the line was drawn
    md = png_markdown(png, "sft [loss]")
    m = re.fullmatch(r"!\[(.*)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", md)
    assert m and m.group(1) == "sft (loss)"
    assert base64.b64decode(m.group(2)) == png
    with pytest.raises(ValueError, match="not a PNG"):
        png_markdown(b"GIF89a", "x")
    with pytest.raises(ValueError, match="no .* points"):
        loss_curve_png([], "empty")
    with pytest.raises(ValueError, match=r"point 1 \(step 5\): field loss"):
        loss_curve_png([(0, 1.0), (5, float("nan"))], "nan")
