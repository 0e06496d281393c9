"""Engines in Dagster: the base_model asset, the engines resource with its metadata, launched servers."""

import os
import textwrap
import urllib.request

import dagster as dg
import pytest

from lgt.base_model import smollm2_gguf, unpack_gguf
from lgt.engines import ModelRole, Request, Sampling, make_backend
from lgt.engines.checkpoint import REVISION_FILE, checkpoint_revision
from lgt.engines.offline import SGLangBackend
from lgt.engines.openai_backend import OpenAIBackend
from lgt.engines.server import LaunchedServer, server_command, server_flags
from lgt.recipe import load_recipe
from lgt_assets import build_definitions
from resources import Engines, engine_metadata
from tests.fixtures import SMALL_KV_CACHE


def recipe(tmp_path, checkpoint):
    p = tmp_path / "r.yaml"
    p.write_text(
        textwrap.dedent(f"""
        name: w
        sources: [{{name: s, kind: synthetic_scenes, images_per_shard: 1}}]
        base_model: {{checkpoint: {checkpoint}}}
        models:
          vlm: {{backend: transformers, model: base_model, batch_size: 4, sampling: {{n: 2, max_new_tokens: 5}}}}
          reasoner: {{backend: transformers, model: base_model}}
          verifier: {{backend: transformers, model: base_model}}
          small_solver: {{backend: transformers, model: base_model}}
        """)
    )
    return p


def test_unpacking_is_keyed_by_the_file_hash(smollm2):
    again = unpack_gguf(smollm2_gguf(), smollm2.parent)
    assert again == smollm2 and (smollm2 / REVISION_FILE).read_text().startswith("gguf-sha256:")
    assert smollm2.name.endswith(checkpoint_revision(smollm2).split(":")[1][:12])
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {f.name for f in smollm2.iterdir()}


def test_base_model_asset_and_an_llm_stage_through_the_engines_resource(smollm2, tmp_path):
    path = recipe(tmp_path, smollm2)
    defs = build_definitions(load_recipe(path), base_path=str(tmp_path / "home"))
    path.write_text("not a recipe: [")  # the run uses the Recipe object it was built from, not the file

    @dg.asset
    def probe(context: dg.AssetExecutionContext, engines: dg.ResourceParam[Engines]) -> dg.MaterializeResult:
        engine = engines.engine("vlm", log=context.log.info)
        engine.generate(
            [Request(messages=[{"role": "user", "content": "Hi"}], sampling=Sampling(n=2, max_new_tokens=5))]
        )
        return dg.MaterializeResult(metadata=engine_metadata(engine))

    base = defs.resolve_assets_def("base_model")
    r1 = dg.materialize([base, probe], resources=defs.resources, instance=dg.DagsterInstance.ephemeral())
    assert r1.success
    mat = {m.asset_key.path[0]: m for m in r1.get_asset_materialization_events()}
    assert mat["base_model"].materialization.metadata["revision"].value == checkpoint_revision(smollm2)
    meta = mat["probe"].materialization.metadata
    assert meta["llm/calls"].value == 2 and meta["llm/cache_hits"].value == 0 and meta["llm/tokens_out"].value > 0
    assert (tmp_path / "home" / "cache" / "calls.sqlite").exists()
    r2 = dg.materialize([probe], resources=defs.resources, instance=dg.DagsterInstance.ephemeral())
    meta = r2.get_asset_materialization_events()[0].materialization.metadata
    assert meta["llm/calls"].value == 0 and meta["llm/cache_hits"].value == 2  # resumed from the cache


def test_launched_server_answers_then_its_process_group_is_gone(smollm2):
    server = LaunchedServer(
        "transformers",
        str(smollm2),
        extra_args=["--device", "cpu", *SMALL_KV_CACHE],
        startup_timeout_s=180,
        env={"HF_HUB_OFFLINE": "1"},
    )
    with server:
        backend = make_backend(ModelRole(backend="openai", model=str(smollm2), base_url=server.base_url), str(smollm2))
        assert isinstance(backend, OpenAIBackend)
        from lgt.engines import Engine

        request = Request(prompt="1, 2, 3,", sampling=Sampling(temperature=0, max_new_tokens=4))
        (res,) = Engine(backend).generate([request])
        assert res.samples[0].ok and res.samples[0].text
        pgid = server.proc.pid
    assert server.proc.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{server.port}/health", timeout=2)


def test_sglang_says_what_is_missing():
    with pytest.raises(RuntimeError, match="needs the sglang package"):
        SGLangBackend("some/model")


def test_sglang_reports_each_call_as_it_finishes():
    """SGLang cannot be installed here (docs/gpu.md), so its offline backend's driving is
    checked against a stand-in engine: every call in flight at once, each reported the moment it finishes (what
    the call cache needs to keep finished samples through a kill), a failing call failing alone."""
    import asyncio

    from lgt.engines import Call

    class StandIn:  # sglang.Engine's async_generate on its own event loop
        loop = asyncio.new_event_loop()

        async def async_generate(self, prompt, sampling_params, image_data=None):
            n = sampling_params["max_new_tokens"]
            await asyncio.sleep(n / 50)
            if n == 2:
                raise RuntimeError("bad request")
            meta = {"finish_reason": {"type": "length"}, "prompt_tokens": 3, "completion_tokens": n}
            return {"text": prompt.upper(), "meta_info": meta}

    backend = SGLangBackend.__new__(SGLangBackend)
    backend.engine, backend.vision, backend.templater = StandIn(), False, None
    lengths = [9, 1, 2, 5]
    calls = [
        Call(i, 0, Request(prompt=f"p{i}", sampling=Sampling(max_new_tokens=n)), f"k{i}", i)
        for i, n in enumerate(lengths)
    ]
    got = []
    backend.run(calls, lambda c, s: got.append((c.index, s.text, s.error, s.completion_tokens)))
    assert got == [(1, "P1", None, 1), (2, "", "backend", 0), (3, "P3", None, 5), (0, "P0", None, 9)]
    backend.engine.loop.close()


def test_vllm_says_where_to_get_it(monkeypatch, tmp_path):
    import lgt.engines.offline as offline

    monkeypatch.delenv("LGT_VLLM_PYTHON", raising=False)
    monkeypatch.setattr(offline, "REPO", tmp_path)  # no .venv-vllm/ there; this venv has no vllm
    with pytest.raises(RuntimeError, match="scripts/setup-vllm.sh"):
        offline.vllm_python()
    (tmp_path / ".venv-vllm" / "bin").mkdir(parents=True)
    (tmp_path / ".venv-vllm" / "bin" / "python").touch()
    assert offline.vllm_python() == str(tmp_path / ".venv-vllm" / "bin" / "python")
    assert offline.vllm_python("/opt/py") == "/opt/py"  # the role's own
    monkeypatch.setenv("LGT_VLLM_PYTHON", "/usr/bin/py-vllm")
    assert offline.vllm_python() == "/usr/bin/py-vllm"


def test_a_dead_vllm_worker_fails_the_open_calls_with_its_log(monkeypatch, tmp_path, smollm2):
    """No hang when vLLM's worker dies mid-round: every open call fails as `backend`, with the log's tail."""
    import sys

    import lgt.engines.offline as offline
    from lgt.engines import Call

    worker = tmp_path / "worker.py"  # answers one sample, then dies as an out-of-memory kill would look
    worker.write_text(
        textwrap.dedent("""
        import json, sys
        print(json.dumps({"ready": True}), flush=True)
        first = json.loads(sys.stdin.readline())["requests"][0]
        answer = {"id": first["id"], "text": "ok", "finish_reason": "stop", "prompt_tokens": 1, "completion_tokens": 1}
        print(json.dumps(answer), flush=True)
        sys.exit("worker: out of memory")
        """)
    )
    monkeypatch.setattr(offline, "WORKER", worker)
    backend = offline.VLLMBackend(str(smollm2), python=sys.executable)
    calls = [Call(i, 0, Request(prompt=f"p{i}"), f"k{i}", i) for i in range(3)]
    got = {}
    backend.run(calls, lambda c, s: got.__setitem__(c.key, s))
    backend.close()
    assert got["k0"].ok and got["k0"].text == "ok"
    for k in ("k1", "k2"):
        assert got[k].error == "backend" and "worker: out of memory" in got[k].error_detail
        assert str(backend.log_path) in got[k].error_detail


def test_openai_role_needs_its_url():
    with pytest.raises(ValueError, match="needs base_url"):
        ModelRole(backend="openai", model="m")


def test_engine_args_are_for_vllm_and_sglang_and_become_a_launched_servers_flags():
    with pytest.raises(ValueError, match="engine_args are vLLM's or SGLang's settings"):
        ModelRole(backend="transformers", model="m", engine_args={"tensor_parallel_size": 2})
    role = ModelRole(
        backend="vllm",
        launch=True,
        model="m",
        engine_args={"tensor_parallel_size": 4, "data_parallel_size": 2, "enforce_eager": True, "log_stats": False},
    )
    cmd = server_command("vllm", "m", 8000, server_flags(role.engine_args))
    flags = ["--tensor-parallel-size", "4", "--data-parallel-size", "2", "--enforce-eager", "--no-log-stats"]
    assert cmd[-6:] == flags and cmd[:-6] == server_command("vllm", "m", 8000)
    assert server_flags({"tp_size": 4, "dp_size": 2}) == ["--tp-size", "4", "--dp-size", "2"]


def test_base_model_and_the_engines_resource_share_one_home(tmp_path, monkeypatch):
    """The defect this guards: base_model took its home from $LGT_HOME while the engines took the base path."""
    monkeypatch.setenv("LGT_HOME", str(tmp_path / "elsewhere"))
    p = tmp_path / "r.yaml"
    p.write_text(
        recipe(tmp_path, "x").read_text().replace("base_model: {checkpoint: x}\n", "")
    )  # the embedded model, unpacked under the home
    home = tmp_path / "home"
    defs = build_definitions(load_recipe(p), base_path=str(home))
    result = dg.materialize([defs.resolve_assets_def("base_model")], instance=dg.DagsterInstance.ephemeral())
    path = result.get_asset_materialization_events()[0].materialization.metadata["path"].value
    assert path.startswith(str(home / "models")) and not (tmp_path / "elsewhere").exists()
    engines = Engines(load_recipe(p), str(home))
    assert engines.model_path("base_model") == path and engines.cache_path() == home / "cache" / "calls.sqlite"
