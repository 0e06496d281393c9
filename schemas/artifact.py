"""One declaration per artifact: its Arrow layout (how parquet stores it) paired with its pandera model (what
the blocking check asserts). `tests/test_schemas.py` checks that every pair names the same columns, in the same
order, with agreeing types."""

from __future__ import annotations

from dataclasses import dataclass

import pandera.pandas as pa
import pyarrow


@dataclass(frozen=True)
class Artifact:
    name: str
    arrow: pyarrow.Schema
    model: type[pa.DataFrameModel]
