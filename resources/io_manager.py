"""Parquet IO manager: one pyarrow file per asset partition under LGT_HOME."""

from __future__ import annotations

import dagster as dg
import pyarrow as pa
from pydantic import Field

from lgt.storage import artifact_path, read_table, write_table
from schemas import ARROW_SCHEMAS


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores `pyarrow.Table` outputs at <base_path>/storage/<asset>/<source>/<shard>.parquet."""

    base_path: str = Field(description="local folder or fsspec URL (s3://bucket/prefix)")

    def _url(self, asset_key: dg.AssetKey, partition_key: str | None) -> str:
        return artifact_path(self.base_path, "/".join(asset_key.path), partition_key)

    def handle_output(self, context: dg.OutputContext, obj: pa.Table) -> None:
        if not isinstance(obj, pa.Table):
            raise TypeError(f"{context.asset_key.to_user_string()}: expected a pyarrow.Table, got {type(obj).__name__}")
        name = "/".join(context.asset_key.path)
        if name in ARROW_SCHEMAS:
            obj = obj.cast(ARROW_SCHEMAS[name])
        url = self._url(context.asset_key, context.partition_key if context.has_partition_key else None)
        write_table(obj, url)
        context.add_output_metadata({"path": dg.MetadataValue.path(url)})

    def load_input(self, context: dg.InputContext) -> pa.Table:
        key = context.asset_key
        if context.has_asset_partitions:
            tables = [read_table(self._url(key, pk)) for pk in context.asset_partition_keys]
            return tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        return read_table(self._url(key, None))
