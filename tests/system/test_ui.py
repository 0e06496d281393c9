"""The Dagster UI in a real headless browser: `dagster dev` on loopback, one partition materialized through GraphQL.

`dagster dev` runs in its own process group (stopped, and checked gone, at the end). A run of the image and
question assets for synth/0 is launched with the GraphQL client and waited on; staleness is read over GraphQL;
Debian's Chromium, driven by the playwright package, screenshots the asset graph and the page of
questions_grounded (its funnel, and its preview opened), and the pages' text is checked against the Parquet files
and the stored metadata. With LGT_UPDATE_SCREENSHOTS=1 the screenshots are also copied to docs/ui/.

Skipped, with the reason printed, where Chromium (scripts/install-browser.sh) or playwright (the dev extra) is
missing; CI sets LGT_REQUIRE_BROWSER=1 so that a missing browser fails there instead.
"""

import json
import os
import re
import shutil
import signal
import socket
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.system.cli import ROOT, fresh_env, start, stop

CHROMIUM = shutil.which("chromium")
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

_missing = [
    what
    for what, ok in (
        ("no `chromium` on PATH (scripts/install-browser.sh installs Debian's)", CHROMIUM),
        ("no playwright package (pip install playwright: the dev extra)", sync_playwright),
    )
    if not ok
]
if _missing:
    if os.environ.get("LGT_REQUIRE_BROWSER") == "1":
        raise RuntimeError("LGT_REQUIRE_BROWSER=1 but " + "; ".join(_missing))
    pytestmark = pytest.mark.skip(reason="; ".join(_missing))

# without the background-networking flags Chromium keeps calling home, which floods a closed network
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}

RECIPE = """
name: ui
sources:
  - {name: synth, kind: synthetic_scenes, shards: 2, images_per_shard: 4, width: 256, height: 256, objects: [3, 6]}
models:
  vlm: {backend: transformers, model: base_model}
  reasoner: {backend: transformers, model: base_model}
  verifier: {backend: transformers, model: base_model}
  small_solver: {backend: transformers, model: base_model}
stages:
  questions_grounded: {llm: {enabled: false}}
  questions_composed: {rewrite: {enabled: false}}
automation: {enabled: false}
"""
PARTITION, OTHER = "synth/0", "synth/1"
# the image and question assets: with the LLM steps off above, none of them loads a model; automation off, so
# that the daemon of `dagster dev` starts no run of its own (the eager assets would build synth/1, the models' cron
# the traces) and the pages show the one partition materialized here
ASSETS = ["images", "images_quarantine", "questions_grounded", "questions_composed", "questions"]
DOWNSTREAM = "simple_cots"  # reads questions; never materialized here
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass
class UI:
    url: str
    port: int
    run_id: str
    storage: Path
    log: Path
    shots: Path


def _tail(log: Path, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        body = json.loads(r.read())
    assert not body.get("errors"), body["errors"]
    return body["data"]


def _wait_until_loaded(url: str, proc, log: Path, timeout: float = 240) -> None:
    """The webserver answers /server_info, then the code location has loaded (a load error fails at once)."""
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"dagster dev exited with {proc.returncode}:\n{_tail(log)}"
        assert time.monotonic() < deadline, f"dagster dev not ready after {timeout:.0f}s:\n{_tail(log)}"
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5):
                pass
            entries = _graphql(
                url,
                "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                "locationOrLoadError { __typename ... on PythonError { message } } } } } }",
            )["workspaceOrError"]["locationEntries"]
        except OSError:  # not listening yet
            time.sleep(1)
            continue
        errors = [e for e in entries if (e["locationOrLoadError"] or {}).get("__typename") == "PythonError"]
        assert not errors, f"the code location failed to load: {errors[0]['locationOrLoadError']['message']}"
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            return
        time.sleep(1)


def _run_errors(url: str, run_id: str) -> str:
    """The run's error lines, each failed step's error with them: why a run failed, for the assertion message."""
    events = _graphql(
        url,
        "query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { __typename "
        "... on MessageEvent { message level } ... on ExecutionStepFailureEvent { error { message } } } } } }",
        {"id": run_id},
    )["logsForRun"]["events"]
    lines = [f"{e['message']} {(e.get('error') or {}).get('message', '')}" for e in events if e.get("level") == "ERROR"]
    return "\n".join(lines)[-4000:]


def _group_members(pgid: int) -> list[int]:
    """The live processes of a process group (field 5 of /proc/<pid>/stat), zombies left out."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(stat.parent.name))
    return pids


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """`dagster dev` on a free loopback port with synth/0 of ASSETS materialized by a run launched over GraphQL."""
    from dagster_graphql import DagsterGraphQLClient

    tmp = tmp_path_factory.mktemp("ui")
    env = fresh_env(tmp, RECIPE, "ui")
    # as `make ui` does: the project's instance settings (no telemetry, no first-run dialog over the pages)
    shutil.copy(ROOT / "dagster.yaml", Path(env["DAGSTER_HOME"]) / "dagster.yaml")
    port, log = _free_port(), tmp / "dagster-dev.log"
    url = f"http://127.0.0.1:{port}"
    proc = start(env, "dev", "-m", "definitions", "-h", "127.0.0.1", "-p", str(port), log=log)
    try:
        _wait_until_loaded(url, proc, log)
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        # the implicit asset job over the selection, one partition by its tag; one process for the run's steps
        run_id = client.submit_job_execution(
            "__ASSET_JOB",
            asset_selection=[[a] for a in ASSETS],
            tags={"dagster/partition": PARTITION},
            run_config={"execution": {"config": {"in_process": {}}}},
        )
        deadline = time.monotonic() + 300
        while (status := client.get_run_status(run_id).value) not in TERMINAL:
            assert time.monotonic() < deadline, f"run {run_id} still {status} after 300s:\n{_tail(log)}"
            time.sleep(1)
        assert status == "SUCCESS", f"run {run_id}: {status}\n{_run_errors(url, run_id)}\n{_tail(log)}"
        yield UI(url, port, run_id, Path(env["LGT_HOME"]) / "storage", log, tmp / "screenshots")
    finally:
        stop(proc)  # SIGTERM to the group: dagster dev stops its webserver, daemon and code servers
        deadline = time.monotonic() + 30
        while (left := _group_members(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.5)
        if left:
            os.killpg(proc.pid, signal.SIGKILL)  # leave nothing running, then say so
        assert not left, f"dagster dev's process group {proc.pid} still had {left} 30 s after SIGTERM"


@pytest.fixture(scope="module")
def browser_context():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # bypass_csp: the UI's Content-Security-Policy forbids eval, which playwright's wait_for_function uses
        context = browser.new_context(viewport=VIEWPORT, bypass_csp=True)
        # the left navigation collapsed to icons: more room for the graph and the tables
        context.add_init_script("localStorage.setItem('dagster-nav-collapsed', 'true')")
        context.set_default_timeout(60_000)
        yield context
        browser.close()


def _save(page, ui: UI, name: str) -> Path:
    ui.shots.mkdir(parents=True, exist_ok=True)
    path = ui.shots / name
    page.screenshot(path=str(path))
    if os.environ.get("LGT_UPDATE_SCREENSHOTS") == "1":
        (ROOT / "docs" / "ui").mkdir(parents=True, exist_ok=True)
        shutil.copy(path, ROOT / "docs" / "ui" / name)
    return path


def _materialization(ui: UI, asset: str) -> dict:
    """The latest materialization of `asset` for PARTITION: its run and its metadata by label."""
    (event,) = _graphql(
        ui.url,
        "query($key: AssetKeyInput!, $p: [String!]) { assetOrError(assetKey: $key) { ... on Asset { "
        "assetMaterializations(partitions: $p, limit: 1) { partition runId metadataEntries { label "
        "... on JsonMetadataEntry { jsonString } ... on MarkdownMetadataEntry { mdStr } "
        "... on IntMetadataEntry { intValue } } } } } }",
        {"key": {"path": [asset]}, "p": [PARTITION]},
    )["assetOrError"]["assetMaterializations"]
    return {
        "partition": event["partition"],
        "run_id": event["runId"],
        **{e["label"]: e for e in event["metadataEntries"]},
    }


def _rows(ui: UI, asset: str) -> list[dict]:
    return pq.read_table(ui.storage / asset / f"{PARTITION}.parquet").to_pylist()


def test_the_run_materialized_one_partition_and_staleness_says_so(ui):
    nodes = _graphql(
        ui.url,
        "query($keys: [AssetKeyInput!], $p: String!, $q: String!) { assetNodes(assetKeys: $keys) { "
        "assetKey { path } here: staleStatus(partition: $p) other: staleStatus(partition: $q) "
        "causes: staleCauses(partition: $p) { reason } "
        "assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions } } } }",
        {"keys": [{"path": [a]} for a in [*ASSETS, DOWNSTREAM]], "p": PARTITION, "q": OTHER},
    )["assetNodes"]
    by = {n["assetKey"]["path"][0]: n for n in nodes}
    assert sorted(by) == sorted([*ASSETS, DOWNSTREAM])
    for asset in ASSETS:
        # Dagster's staleness: FRESH once materialized with its inputs' current versions and its code version
        assert (by[asset]["here"], by[asset]["causes"]) == ("FRESH", []), asset
        assert by[asset]["other"] == "MISSING", asset  # never materialized
        assert by[asset]["assetPartitionStatuses"]["materializedPartitions"] == [PARTITION], asset
        assert _materialization(ui, asset)["run_id"] == ui.run_id, asset
    assert (by[DOWNSTREAM]["here"], by[DOWNSTREAM]["other"]) == ("MISSING", "MISSING")
    assert by[DOWNSTREAM]["assetPartitionStatuses"]["materializedPartitions"] == []
    # the metadata counts are the files' rows
    for asset in ASSETS:
        assert _materialization(ui, asset)["dagster/row_count"]["intValue"] == len(_rows(ui, asset)), asset
    assert len(_rows(ui, "images")) == 4  # images_per_shard
    # ours was the only run: nothing started by itself
    runs = _graphql(ui.url, "{ runsOrError { ... on Runs { results { runId status } } } }")["runsOrError"]["results"]
    assert runs == [{"runId": ui.run_id, "status": "SUCCESS"}]


def test_asset_graph_shows_the_partition_materialized(ui, browser_context):
    page = browser_context.new_page()
    groups = ",".join(f"global@global:{g}" for g in ("images", "questions", "traces"))
    page.goto(f"{ui.url}/asset-groups?expanded={urllib.parse.quote(groups)}", wait_until="networkidle")
    page.get_by_text("questions_grounded", exact=True).first.wait_for()
    # hide the asset tree, then filter: the graph is fitted to the wider pane, large enough to draw each node's
    # facets (Dagster draws bare names below 0.6x)
    page.locator("button:has([aria-label='panel_show_right'])").first.click()
    page.locator(".CodeMirror").first.click()
    page.keyboard.type(f"group:images or group:questions or key:{DOWNSTREAM}")
    page.keyboard.press("Enter")
    page.get_by_text("Global asset lineage").click()  # the cursor out of the search box
    # one partition of two: 50% for the materialized assets, 0% for the one downstream
    page.wait_for_function("n => document.body.innerText.split('50% filled').length - 1 === n", arg=len(ASSETS))
    page.get_by_text("0% filled", exact=True).wait_for()
    page.wait_for_load_state("networkidle")
    text = page.inner_text("body")
    for asset in [*ASSETS, DOWNSTREAM]:
        assert page.get_by_text(asset, exact=True).count() >= 1, asset
    assert "difficulty" not in text  # filtered out: the selection was applied
    assert text.count("1 / 1 Passed") == len(ASSETS)  # each asset's schema check, run with it
    assert text.count("0 / 1 Passed") == 1  # the downstream one's, not run
    _save(page, ui, "asset-graph.png")
    page.close()


FADED_IN = """() => {
    const d = document.querySelector('[role=dialog]');
    if (!d || document.getAnimations().some(a => a.playState === 'running')) return false;
    for (let n = d; n; n = n.parentElement) if (parseFloat(getComputedStyle(n).opacity) < 1) return false;
    return true;
}"""


def test_asset_page_shows_the_funnel_and_the_preview(ui, browser_context):
    asset = "questions_grounded"
    stored = _materialization(ui, asset)
    rows = _rows(ui, asset)
    page = browser_context.new_page()
    page.goto(f"{ui.url}/assets/{asset}?view=partitions&partition={urllib.parse.quote(PARTITION, safe='')}")
    page.get_by_text("Latest materialization").wait_for()
    funnel = page.locator("tr", has=page.get_by_text("funnel", exact=True)).first
    funnel.get_by_text("kept", exact=True).wait_for()
    page.wait_for_load_state("networkidle")

    text = page.inner_text("body")
    assert asset in text and PARTITION in text
    assert "Materialized" in text and "Missing (1)" in text and "Materialized (1)" in text
    assert ui.run_id[:8] in text  # the run that wrote it
    # the funnel as the page renders it: its step rows are the stored counts, the first and last the files' rows
    shown = dict(re.findall(r"^([\w/]+)\t(\d+)$", funnel.inner_text(), re.M))
    steps = json.loads(stored["funnel_counts"]["jsonString"])
    rejects = json.loads(stored["rejects_by_reason"]["jsonString"])
    assert {k: int(v) for k, v in shown.items()} == {**dict(steps), **rejects}
    assert steps[0] == ["images", len(_rows(ui, "images"))] and steps[-1] == ["kept", len(rows)]
    _save(page, ui, "asset-page.png")

    # the preview: the markdown opened in its dialog, each question one of the file's with its image drawn
    page.locator("tr", has=page.get_by_text("preview", exact=True)).first.get_by_text("[Show Markdown]").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("img").first.wait_for()
    page.wait_for_function("() => [...document.querySelectorAll('[role=dialog] img')].every(i => i.complete)")
    shown_text = dialog.inner_text()
    blocks = re.findall(r"^(\w+) \(stage 1, ", shown_text, re.M)
    # which questions: the families taken in turn, in name order, each its rows in file order, up to
    # preview_questions (6 by default); worked out here by ranking each row within its family and sorting
    rank: Counter = Counter()
    ranked = []
    for i, r in enumerate(rows):
        ranked.append((rank[r["family"]], r["family"], i))
        rank[r["family"]] += 1
    expected = [rows[i] for _, _, i in sorted(ranked)[:6]]
    assert blocks == [r["family"] for r in expected]
    for r in expected:
        assert r["question"] in shown_text and r["answer"] in shown_text, r["question_id"]
    widths = dialog.locator("img").evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert len(widths) == len(blocks) and all(w > 0 for w in widths)  # every thumbnail decoded
    # the dialog opens scrolled to its buttons: back to the top for the screenshot
    dialog.evaluate("d => { for (let n = d; n; n = n.parentElement) n.scrollTop = 0; }")
    # the dialog and its backdrop fade in: shoot once every transition has ended and nothing is see-through
    page.wait_for_function(FADED_IN)
    _save(page, ui, "asset-preview.png")
    page.close()
