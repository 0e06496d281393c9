"""PNG charts for Dagster's markdown metadata: training loss curves, and the way any PNG is embedded.

Figures are built with matplotlib's object API on the Agg canvas, never through pyplot, so no global figure
state is shared between assets running in one process and no display is needed.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def figure(width: float, height: float):
    """A matplotlib Figure drawn by Agg (no display, no pyplot state)."""
    import matplotlib

    matplotlib.use("Agg")  # the backend for anything that does reach pyplot in this process
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight")
    return out.getvalue()


def loss_curve_png(points: Sequence[tuple[int, float]], title: str) -> bytes:
    """A line plot of training loss against optimizer step."""
    if not points:
        raise ValueError(f"loss_curve_png: no (step, loss) points for {title!r}")
    for i, (step, loss) in enumerate(points):
        if not math.isfinite(float(loss)):  # a NaN would silently break the line
            raise ValueError(f"loss_curve_png: point {i} (step {step}): field loss is {loss}")
    steps, losses = zip(*sorted(points))
    fig = figure(6.4, 3.6)
    ax = fig.add_subplot()
    ax.plot(steps, losses, marker="o" if len(points) <= 30 else None, markersize=3, linewidth=1.5)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return figure_png(fig)


def png_markdown(png: bytes, alt: str) -> str:
    """A PNG inline in markdown as a data URL, as lgt/preview.py embeds its thumbnails."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError(f"png_markdown: the bytes for {alt!r} are not a PNG")
    alt = alt.replace("[", "(").replace("]", ")").replace("\n", " ")  # brackets would end the alt text early
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
