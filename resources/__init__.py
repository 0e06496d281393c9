"""Dagster resources: the artifact store (and, from the engines issue on, engines and the call cache)."""

from resources.io_manager import ParquetIOManager

__all__ = ["ParquetIOManager"]
