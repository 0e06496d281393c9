"""The engines resource: a recipe role -> a cached, logged Engine; launched servers torn down after the step.

Built from the same `Recipe` object and artifact home as every asset (see `lgt_assets.build_definitions`), so the
roles a step calls are the ones its code version hashed; nothing re-reads the recipe file during a run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg

from lgt.base_model import base_model_path
from lgt.engines import CallCache, Engine, make_backend
from lgt.engines.server import LaunchedServer, server_flags
from lgt.recipe import Recipe


class Engines:
    """One Engine per model role, over backends built once per run (per step with the multiprocess executor) and
    shared by roles that name the same model and backend settings; every engine shares the call cache."""

    def __init__(self, recipe: Recipe, lgt_home: str):
        self.recipe, self.lgt_home = recipe, lgt_home
        self._backends: dict[str, Any] = {}
        self._servers: list[LaunchedServer] = []
        self._base_model: str | None = None

    def cache_path(self) -> Path:
        """<lgt_home>/cache/calls.sqlite; SQLite needs a local disk, so a remote home caches in the user's cache."""
        home = self.lgt_home.removeprefix("file://")
        if "://" in home:
            return Path.home() / ".cache" / "lgt" / "calls.sqlite"
        return Path(home) / "cache" / "calls.sqlite"

    def model_path(self, model: str) -> str:
        """A role's model: the `base_model` asset's checkpoint (resolved once: it hashes the GGUF), or the name."""
        if model != "base_model":
            return model
        if self._base_model is None:
            self._base_model = str(
                base_model_path(self.recipe.base_model.checkpoint, self.lgt_home, self.recipe.base_model.dtype)
            )
        return self._base_model

    def engine(self, role_name: str, log: Callable[[str], None] | None = None, model: str | None = None) -> Engine:
        """A fresh Engine (its own stats) over the role's backend; `model` (a checkpoint folder) replaces the role's
        model, with the role's backend settings (how a fine-tuned checkpoint is served for its benchmark scores).

        Roles that name the same model with the same backend settings share one backend (the demo's four roles
        are one SmolLM2): one model load, not four.
        """
        role = getattr(self.recipe.models, role_name)
        model = model or self.model_path(role.model)
        # the image size is applied per call, not by the backend: roles differing only in it share one model
        shared = json.dumps([model, role.model_dump(mode="json", exclude={"sampling", "max_pixels"})], sort_keys=True)
        if shared not in self._backends:
            url = None
            if role.launch and role.backend in ("vllm", "sglang"):
                extra = server_flags(role.engine_args)
                server = LaunchedServer(role.backend, model, extra_args=extra, python=role.python).start()
                self._servers.append(server)
                url = server.base_url
            self._backends[shared] = make_backend(role, model, url)
        return Engine(self._backends[shared], CallCache(self.cache_path()), log=log, max_pixels=role.max_pixels)

    def close(self) -> None:
        for b in self._backends.values():
            b.close()
        for s in self._servers:
            s.stop()
        self._backends.clear()
        self._servers.clear()


def engines_resource(recipe: Recipe, lgt_home: str) -> dg.ResourceDefinition:
    """The `engines` resource: an `Engines` per run in process (per step in a subprocess), closed at its end."""

    def init(_: dg.InitResourceContext) -> Iterator[Engines]:
        engines = Engines(recipe, lgt_home)
        try:
            yield engines
        finally:
            engines.close()

    return dg.ResourceDefinition(resource_fn=init, description="model roles -> cached engines; servers torn down")


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
        f"{p}forced_close": st["forced_close"],  # samples whose thinking budget ran out
    }
