"""Shared wiring for LLM stages: one Engine per role per step, and their metadata."""

from typing import Any

import dagster as dg

from lgt.engines import Engine
from resources import Engines, engine_metadata


class RoleEngines:
    """`engine_for(role)` for `lgt` stage functions; remembers which roles a step used."""

    def __init__(self, engines: Engines, context: dg.AssetExecutionContext):
        self.engines, self.context, self.used = engines, context, {}

    def __call__(self, role: str) -> Engine:
        if role not in self.used:
            self.used[role] = self.engines.engine(role, log=self.context.log.info)
        return self.used[role]

    def metadata(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for role, engine in self.used.items():
            out.update(engine_metadata(engine, role))
        return out
