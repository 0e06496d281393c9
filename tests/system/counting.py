"""What the crash and concurrency tests share: a real `transformers serve` behind a proxy that counts every request
it forwards, a recipe whose one LLM stage calls that server, and readers for the call cache, the stored tables and
the runs' metadata.

The server is the conftest `served` fixture's, with its continuous-batching KV cache sized explicitly (16 pages of
256 tokens): left to itself it takes 80-90 % of the free RAM (14 GB of this machine's 24), which starves the
Dagster processes and any other server running beside it.
"""

import asyncio
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lgt.engines.server import LaunchedServer
from lgt.ids import in_share
from lgt.recipe import load_recipe
from tests.engines.faulty_proxy import FaultyProxy
from tests.fixtures import question_ids, with_shares

ASSETS = ("images", "images_quarantine", "questions_grounded", "questions_composed", "questions", "simple_cots")
PHASES = 2  # a thinking budget without min_tokens: every sample is a think call, then an answer call
# one process per run: the default multiprocess executor starts a process per step, ~10 s each on this machine
IN_PROCESS = json.dumps({"execution": {"config": {"in_process": {}}}})


@pytest.fixture(scope="module")
def small_served(smollm2):
    """`transformers serve --continuous-batching` on loopback with a small KV cache; stopped after the module."""
    args = ["--device", "cpu", "--cb-num-blocks", "16", "--cb-max-batch-tokens", "1024"]
    server = LaunchedServer(
        "transformers", str(smollm2), extra_args=args, startup_timeout_s=180, env={"HF_HUB_OFFLINE": "1"}
    )
    server.start()
    try:
        yield {"model": str(smollm2), "port": server.port}
    finally:
        # a short grace: a server still holding a killed client's keep-alive connection waits out the whole default
        server.stop(grace_s=5)


class CountingProxy(FaultyProxy):
    """A fault-free FaultyProxy (counts['forwarded'] counts the requests the server got) with two controls.

    limit: only requests up to this number (`admitted` counts them) are forwarded; later ones are held
        (counts['held']) and never reach the server, however long they wait or whatever becomes of their client.
    barrier: a request is forwarded only once this many have arrived since the barrier was set, so runs started
        together do call the server at the same time.
    in_flight / max_in_flight: admitted requests (at the barrier or the server) not yet answered, now and at most.
    """

    def __init__(self, upstream_port: int):
        super().__init__(upstream_port, fault_rate=0.0)
        self.limit: int | None = None
        self.admitted = self.in_flight = self.max_in_flight = 0
        self._barrier, self._arrived = 1, 0

    def set_barrier(self, n: int) -> None:
        self._barrier, self._arrived, self.max_in_flight = n, 0, 0

    async def _handle(self, reader, writer):
        self._arrived += 1
        if self.limit is not None and self.admitted >= self.limit:
            self.counts["held"] += 1
            try:
                await reader.read()  # until the client goes away; the request is never forwarded
            except ConnectionError:
                pass
            writer.close()
            return
        self.admitted += 1
        self.in_flight += 1
        try:
            while self._arrived < self._barrier:
                await asyncio.sleep(0.05)
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            await super()._handle(reader, writer)
        finally:
            self.in_flight -= 1


def recipe(model: str, port: int, questions: int, concurrency: int) -> str:
    """Two synthetic shards, LLM-free questions, and `simple_cots` over HTTP: greedy, one sample per question, the
    share of questions sent the one that sends exactly `questions` of synth/0 (`sent_questions` says how many of
    every partition)."""
    return with_shares(lambda share: _recipe(model, port, share, concurrency), questions)


def sent_questions(text: str, partition: str) -> int:
    """How many questions of a partition the recipe's simple_cots share sends."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recipe.yaml"
        path.write_text(text)
        r = load_recipe(path)
    return sum(in_share(r.stages.simple_cots.share, q) for q in question_ids(r, int(partition.split("/")[1])))


def _recipe(model: str, port: int, share: float, concurrency: int) -> str:
    role = (
        f"{{backend: openai, model: {model}, base_url: 'http://127.0.0.1:{port}/v1', max_concurrency: {concurrency}}}"
    )
    return f"""
name: calls
sources:
  - {{name: synth, kind: synthetic_scenes, shards: 2, images_per_shard: 2, width: 128, height: 128, objects: [3, 5]}}
models:
  vlm: {role}
  reasoner: {role}
  verifier: {role}
  small_solver: {role}
stages:
  questions_grounded:
    llm: {{enabled: false}}
    attributes: {{color: {{noun: colour, values: [red, green, blue, yellow, purple, orange]}}}}
  questions_composed: {{rewrite: {{enabled: false}}}}
  simple_cots:
    share: {share!r}
    sampling: {{n: 1, temperature: 0.0, thinking: {{max_tokens: 8, answer_max_tokens: 6}}}}
"""


def materialize(partition: str) -> tuple[str, ...]:
    """The CLI arguments that materialize the images, question and simple_cots assets of one partition."""
    return ("asset", "materialize", "-m", "definitions", "--select", ",".join(ASSETS), "--partition", partition,
            "--config-json", IN_PROCESS)  # fmt: skip


def cache_rows(env: dict[str, str]) -> dict[str, tuple]:
    """The call cache of a run's LGT_HOME: key -> (model, text, finish_reason, prompt and completion tokens)."""
    path = Path(env["LGT_HOME"]) / "cache" / "calls.sqlite"
    if not path.exists():
        return {}
    with sqlite3.connect(path, timeout=60) as conn:
        rows = conn.execute("SELECT key, model, text, finish_reason, prompt_tokens, completion_tokens FROM calls")
        return {r[0]: r[1:] for r in rows}


def tables(env: dict[str, str], partition: str) -> dict[str, pa.Table]:
    """Every stored table of ASSETS for one partition."""
    storage = Path(env["LGT_HOME"]) / "storage"
    return {a: pq.read_table(storage / a / f"{partition}.parquet") for a in ASSETS}


def llm_calls(env: dict[str, str], partition: str) -> tuple[int, int]:
    """(llm/vlm/calls, llm/vlm/cache_hits) of the latest `simple_cots` materialization of a partition."""
    before = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]  # the project's dagster.yaml takes its base_dir from it
    try:
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("simple_cots"), asset_partitions=[partition]), limit=1
            ).records
    finally:
        if before is None:
            del os.environ["DAGSTER_HOME"]
        else:
            os.environ["DAGSTER_HOME"] = before
    meta = records[0].asset_materialization.metadata
    return meta["llm/vlm/calls"].value, meta["llm/vlm/cache_hits"].value


def wait_for(condition: Callable[[], bool], timeout: float, what: str, alive: Callable[[], bool]) -> None:
    """Polls `condition` until true; fails when `alive()` turns false first or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert alive(), f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.2)
