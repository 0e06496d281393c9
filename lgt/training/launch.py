"""Start the training runner as a subprocess and stream its output.

`command` builds the command line: plain `python -m lgt.training.train job.json` (CPU, one GPU), or accelerate's
launcher (`-m` runs a module, as `python -m` does) with a config file such as recipes/accelerate/zero3.yaml and one
process per GPU. `run` runs it in its own process group, so stopping the parent (a Dagster run being cancelled)
stops every worker the launcher started, not only the launcher.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["RUNNER_MODULE", "command", "run"]

RUNNER_MODULE = "lgt.training.train"
TAIL_LINES = 40
_STOP_GRACE_S = 15  # SIGTERM first so DeepSpeed workers can exit; SIGKILL after this


def _setting(settings: Any, name: str) -> Any:
    return settings[name] if isinstance(settings, Mapping) else getattr(settings, name)


def command(job_path: Path | str, settings: Any, python: str) -> list[str]:
    """The command line for a job; `settings` is a TrainingSettings or its dict (launcher, accelerate_config,
    num_processes)."""
    launcher = _setting(settings, "launcher")
    if launcher == "python":
        return [python, "-m", RUNNER_MODULE, str(job_path)]
    if launcher == "accelerate":
        config = _setting(settings, "accelerate_config")
        if config is None:
            raise ValueError("launcher 'accelerate' needs accelerate_config")
        return [
            python,
            "-m",
            "accelerate.commands.launch",
            "--config_file",
            str(config),
            "--num_processes",
            str(int(_setting(settings, "num_processes"))),
            "-m",
            RUNNER_MODULE,
            str(job_path),
        ]
    raise ValueError(f"launcher: {launcher!r} is not 'python' or 'accelerate'")


def _stop_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    try:  # workers may outlive the launcher: the group is killed even when the launcher itself has exited
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def run(cmd: Sequence[str], log: Callable[[str], None], env: Mapping[str, str] | None = None) -> None:
    """Run `cmd`, passing each output line (stdout and stderr together) to `log`.

    `env` adds to (or overrides) this process's environment. On a non-zero exit this raises RuntimeError with the
    last lines of output; if this process is interrupted meanwhile, the whole process group is stopped first.
    """
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}  # lines arrive as they are printed
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    proc = subprocess.Popen(
        list(cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=full_env,
        text=True,  # universal newlines: progress bars' carriage returns end lines too
        errors="replace",
        bufsize=1,
        start_new_session=True,  # its own process group, to stop it and every worker it starts
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            tail.append(line)
            log(line)
        rc = proc.wait()
    except BaseException:
        _stop_group(proc)
        raise
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    if rc != 0:
        body = "\n".join(tail)
        raise RuntimeError(f"training command exited with status {rc}: {' '.join(cmd)}\n--- last output ---\n{body}")
