"""What the system tests share: a recipe in a fresh Dagster instance and LGT home, and the real Dagster CLI."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def fresh_env(tmp_path: Path, recipe: str, name: str = "run") -> dict[str, str]:
    """The environment of a run of `recipe` (YAML text) with its own empty DAGSTER_HOME and LGT_HOME under tmp_path.

    DAGSTER_HOME starts empty, as a user's first run would: no dagster.yaml is copied in."""
    base = tmp_path / name
    (base / "dagster").mkdir(parents=True, exist_ok=True)
    path = base / "recipe.yaml"
    path.write_text(textwrap.dedent(recipe))
    return {
        **os.environ,
        "LGT_RECIPE": str(path),
        "LGT_HOME": str(base / "lgt"),
        "DAGSTER_HOME": str(base / "dagster"),
    }


def dagster(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`dagster <args>` from the project root, as a user types it; stdout and stderr captured."""
    return subprocess.run([DAGSTER, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def start(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen:
    """`dagster <args>` in its own process group (so `stop` reaches every child), output to `log`."""
    out = open(log, "w")  # noqa: SIM115 - the child writes it until stopped
    return subprocess.Popen(
        [DAGSTER, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """Signal the whole process group; SIGKILL what is left after `timeout`."""
    try:
        os.killpg(proc.pid, sig)
        proc.wait(timeout)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
