"""The project's instance settings (dagster.yaml: retries, run monitoring, pools) in every DAGSTER_HOME, and runs
whose process was killed released, so the pool slot they held does not block every later run.

Dagster reads `$DAGSTER_HOME/dagster.yaml` and nothing else (with DAGSTER_HOME unset, the CLI's temporary instance
reads the one in the working folder, the project root). So loading the definitions copies the project's file into
a DAGSTER_HOME that has none: the daemon, the UI and every later run then apply it, however they were started. The
process that copies it started its instance before the copy; what a single run needs from it is also in the code
(the model-calling and training assets' retry policy), so even that first run retries a failed model step.
"""

import os
import sys
import tempfile
from pathlib import Path

import dagster as dg

SETTINGS = Path(__file__).resolve().parent.parent / "dagster.yaml"


def install_settings(home: str | None = None) -> Path | None:
    """Copies dagster.yaml into `home` (default $DAGSTER_HOME) when it has none; returns the new file, else None."""
    home = home or os.environ.get("DAGSTER_HOME")
    if not home or not Path(home).is_dir():  # unset, or Dagster will refuse the folder itself
        return None
    target = Path(home) / "dagster.yaml"
    if target.exists():  # the user's own settings win
        return None
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".dagster.yaml.")
    with os.fdopen(fd, "wb") as f:
        f.write(SETTINGS.read_bytes())
    os.replace(tmp, target)  # atomic: a webserver and a daemon starting together never read half a file
    print(f"lgt: wrote the project's instance settings to {target}", file=sys.stderr)
    return target


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Marks failed the runs still STARTED whose every process is gone (`kill -9`, a lost machine), and frees the
    pool slots they held: Dagster frees a run's slots only when the run ends, so the next run of the pool would
    wait for ever. Only on a local SQLite instance, where a run's processes are on this machine. Returns their ids."""
    if "Sqlite" not in type(instance.event_log_storage).__name__:
        return []
    released = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        pids = {e.dagster_event.pid for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.pid}
        if not pids or any(_alive(p) for p in pids):
            continue
        instance.report_run_failed(run, f"lgt: every process of this run is gone (pids {sorted(pids)}): killed")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        released.append(run.run_id)
    return released


def prepare_instance() -> None:
    """What loading the definitions does to $DAGSTER_HOME: the settings copied in, dead runs released."""
    install_settings()
    if os.environ.get("DAGSTER_HOME") and Path(os.environ["DAGSTER_HOME"]).is_dir():
        with dg.DagsterInstance.get() as instance:
            for run_id in release_dead_runs(instance):
                print(
                    f"lgt: run {run_id} had no live process left; marked failed, its pool slots freed", file=sys.stderr
                )
