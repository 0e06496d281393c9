"""A local checkpoint folder's revision: what the call cache keys a local model's samples by."""

from __future__ import annotations

import hashlib
from pathlib import Path

REVISION_FILE = "lgt_revision.txt"  # written next to a checkpoint built from a known file


def checkpoint_revision(path: Path) -> str:
    """The unpacked file's hash, or a hash of the config and weight files' names and sizes."""
    rev = Path(path) / REVISION_FILE
    if rev.is_file():
        return rev.read_text().strip()
    h = hashlib.sha256((Path(path) / "config.json").read_bytes())
    for f in sorted(Path(path).glob("*")):
        if f.suffix in (".safetensors", ".bin"):
            h.update(f"{f.name}:{f.stat().st_size}".encode())
    return "files-sha256:" + h.hexdigest()[:16]
