"""Parquet IO manager on Dagster's UPathIOManager: one pyarrow file per asset partition under LGT_HOME.

Layout: <base>/storage/<asset>/<source>/<shard>.parquet, or <base>/storage/<asset>.parquet when unpartitioned.
Local writes are atomic (lgt.storage.write_table), so a killed run never leaves half a partition behind.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
import pyarrow as pa
from pydantic import Field
from upath import UPath

from lgt.storage import read_table, write_table


class ParquetUPathIOManager(dg.UPathIOManager):
    """Writes and reads `pyarrow.Table`s; several partitions of an input arrive concatenated, in key order."""

    extension = ".parquet"

    def dump_to_path(self, context: dg.OutputContext, obj: pa.Table, path: UPath) -> None:
        if not isinstance(obj, pa.Table):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a pyarrow.Table, got {type(obj).__name__}")
        write_table(obj, str(path))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pa.Table:
        return read_table(str(path))

    def load_input(self, context: dg.InputContext) -> Any:
        value = super().load_input(context)
        return pa.concat_tables(list(value.values())) if isinstance(value, dict) else value

    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        if ".." in partition.split("/"):
            raise ValueError(f"partition key {partition!r} may not contain '..'")
        return super().make_safe_partition_path(base_path, partition)


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Stores `pyarrow.Table` outputs at <base_path>/storage/<asset>/<source>/<shard>.parquet."""

    base_path: str = Field(description="local folder or fsspec URL (s3://bucket/prefix)")

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetUPathIOManager:
        return ParquetUPathIOManager(base_path=UPath(self.base_path.rstrip("/")) / "storage")
