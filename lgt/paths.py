"""Where things are: the project's own folder, the default recipe, and the artifact home ($LGT_HOME)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECIPE = PROJECT_ROOT / "recipes" / "demo.yaml"


def lgt_home() -> str:
    """$LGT_HOME, else .lgt/ in the project. May be an fsspec URL (s3://bucket/prefix)."""
    return os.environ.get("LGT_HOME") or str(PROJECT_ROOT / ".lgt")
