"""The project's instance settings (dagster.yaml: retries, run monitoring, pools) in every DAGSTER_HOME.

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
