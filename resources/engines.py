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

    _engines: dict[str, Engine] = PrivateAttr(default_factory=dict)
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
        if role_name not in self._engines:
            role = getattr(load_recipe(self.recipe_path).models, role_name)
            model = self.model_path(role.model)
            url = None
            if role.launch and role.backend in ("vllm", "sglang"):
                server = LaunchedServer(role.backend, model).start()
                self._servers.append(server)
                url = server.base_url
            self._engines[role_name] = Engine(make_backend(role, model, url), CallCache(self.cache_path()), log=log)
        return self._engines[role_name]

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        for e in self._engines.values():
            e.backend.close()
        for s in self._servers:
            s.stop()


def engine_metadata(engine: Engine) -> dict[str, Any]:
    """What an LLM stage shows on its materialization: calls, cache hits, tokens, tokens/s, errors by kind."""
    st = engine.stats.as_metadata()
    return {
        "llm/model": engine.backend.model_id,
        "llm/calls": st["calls"],
        "llm/cache_hits": st["cache_hits"],
        "llm/tokens_in": st["prompt_tokens"],
        "llm/tokens_out": st["completion_tokens"],
        "llm/tokens_per_s": st["tokens_per_s"],
        "llm/errors_by_kind": dg.MetadataValue.json(st["errors_by_kind"]),
        "llm/finish_reasons": dg.MetadataValue.json(st["finish_reasons"]),
    }
