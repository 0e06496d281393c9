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
    """Writes and reads `pyarrow.Table`s, one file per partition.

    An input over several partitions arrives as {partition: table} (`concat` makes one table of it); a step over a
    partition range (a single-run backfill) returns {partition: table} and gets one file per partition.
    """

    extension = ".parquet"

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if not (context.has_asset_partitions and len(context.asset_partition_keys) > 1):
            return super().handle_output(context, obj)
        paths = self._get_paths_for_partitions(context)
        if not isinstance(obj, dict) or set(obj) != set(paths):
            got = sorted(obj) if isinstance(obj, dict) else type(obj).__name__
            raise TypeError(
                f"{context.asset_key.to_user_string()}: a ranged step must return {{partition: table}} for "
                f"{sorted(paths)}, got {got}"
            )
        for pk, path in paths.items():
            self.make_directory(path.parent)
            self.dump_to_path(context=context, obj=obj[pk], path=path)
        # the folder, not every file: each partition's event carries this, so a list of the range's files would grow
        # the run's event log as partitions squared (each file is <folder>/<partition key>.parquet)
        pk, path = next(iter(paths.items()))
        folder = str(path)[: -len(f"{pk}{self.extension}")].rstrip("/")
        context.add_output_metadata({"folder": dg.MetadataValue.path(folder)})

    def dump_to_path(self, context: dg.OutputContext, obj: pa.Table, path: UPath) -> None:
        if not isinstance(obj, pa.Table):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a pyarrow.Table, got {type(obj).__name__}")
        write_table(obj, str(path))

    def load_from_path(self, context: dg.InputContext, path: UPath) -> pa.Table:
        return read_table(str(path))

    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        if ".." in partition.split("/"):
            raise ValueError(f"partition key {partition!r} may not contain '..'")
        return super().make_safe_partition_path(base_path, partition)


def concat(value: pa.Table | dict[str, pa.Table]) -> pa.Table:
    """An input read over several partitions as one table, in the partitions' order."""
    return pa.concat_tables(list(value.values())) if isinstance(value, dict) else value


class ParquetIOManager(dg.ConfigurableIOManagerFactory):
    """Stores `pyarrow.Table` outputs at <base_path>/storage/<asset>/<source>/<shard>.parquet."""

    base_path: str = Field(description="local folder or fsspec URL (s3://bucket/prefix)")

    def create_io_manager(self, context: dg.InitResourceContext) -> ParquetUPathIOManager:
        return ParquetUPathIOManager(base_path=UPath(self.base_path.rstrip("/")) / "storage")
