"""Dagster resources: the artifact store, and the engines with their call cache."""

from resources.engines import Engines, engine_metadata, engines_resource
from resources.io_manager import ParquetIOManager, concat

__all__ = ["Engines", "ParquetIOManager", "concat", "engine_metadata", "engines_resource"]
