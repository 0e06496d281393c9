"""The engines resource: a recipe role -> a cached, logged Engine, and launched servers torn down after the step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from lgt.base_model import base_model_path
from lgt.engines import CallCache, Engine, make_backend
from lgt.engines.server import LaunchedServer
from lgt.recipe import load_recipe


class Engines(dg.ConfigurableResource):
    """Builds one Engine per model role for a step, sharing the call cache under LGT_HOME."""

    lgt_home: str = Field(description="LGT_HOME: the call cache lives in <lgt_home>/cache/calls.sqlite")
    recipe_path: str = Field(description="the recipe whose `models` section names the roles")

    _backends: dict[str, Any] = PrivateAttr(default_factory=dict)
    _servers: list[LaunchedServer] = PrivateAttr(default_factory=list)

    def cache_path(self) -> Path:
        home = self.lgt_home.removeprefix("file://")
        if "://" in home:  # SQLite needs a local disk
            return Path.home() / ".cache" / "lgt" / "calls.sqlite"
        return Path(home) / "cache" / "calls.sqlite"

    def model_path(self, model: str) -> str:
        recipe = load_recipe(self.recipe_path)
        return str(base_model_path(recipe.base_model.checkpoint, self.lgt_home)) if model == "base_model" else model

    def engine(self, role_name: str, log: Any = None) -> Engine:
        """A fresh Engine (its own stats) over the role's backend, which is built once per step."""
        if role_name not in self._backends:
            role = getattr(load_recipe(self.recipe_path).models, role_name)
            model = self.model_path(role.model)
            url = None
            if role.launch and role.backend in ("vllm", "sglang"):
                server = LaunchedServer(role.backend, model).start()
                self._servers.append(server)
                url = server.base_url
            self._backends[role_name] = make_backend(role, model, url)
        return Engine(self._backends[role_name], CallCache(self.cache_path()), log=log)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        for b in self._backends.values():
            b.close()
        for s in self._servers:
            s.stop()


def engine_metadata(engine: Engine, role: str | None = None) -> dict[str, Any]:
    """What an LLM stage shows on its materialization: calls, cache hits, tokens, tokens/s, errors by kind.

    With `role`, keys are `llm/<role>/...`, so a stage that calls several roles shows each.
    """
    st = engine.stats.as_metadata()
    p = f"llm/{role}/" if role else "llm/"
    return {
        f"{p}model": engine.backend.model_id,
        f"{p}calls": st["calls"],
        f"{p}cache_hits": st["cache_hits"],
        f"{p}tokens_in": st["prompt_tokens"],
        f"{p}tokens_out": st["completion_tokens"],
        f"{p}tokens_per_s": st["tokens_per_s"],
        f"{p}errors_by_kind": dg.MetadataValue.json(st["errors_by_kind"]),
        f"{p}finish_reasons": dg.MetadataValue.json(st["finish_reasons"]),
    }
