"""The stage registry: every asset the engine can build, in data-flow order, one entry each.

`build_definitions`, the exports' funnel list, `python -m lgt_assets.selection` (and so `make demo` and CI) all
derive from it. Adding a stage: its pure module in lgt/<package>/, its `Artifact` in schemas/, its recipe section
in lgt/recipe.py `Stages`, and one `Stage` entry in lgt_assets/<package>.py. See docs/architecture.md.
"""

from __future__ import annotations

from lgt_assets import datasets, evaluation, images, models, questions, traces, training

REGISTRY = (
    *models.ENTRIES,
    *images.ENTRIES,
    *questions.ENTRIES,
    *traces.ENTRIES,
    *datasets.ENTRIES,
    *training.ENTRIES,
    *evaluation.ENTRIES,
)
