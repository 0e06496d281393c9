"""Prompts are Jinja2 files in `prompts/`; a prompt's version is the hash of its file.

`LGT_PROMPTS` names another folder to read them from (default: the repository's `prompts/`), so an edited copy
can be tried without touching the repository: `cp -r prompts /tmp/p`, edit `/tmp/p/long_cot.j2`, and run with
`LGT_PROMPTS=/tmp/p`. The variable is read each time a prompt is loaded, and a relative path is taken from the
working directory. A file is read once per process and folder: an edit made while a process runs is seen through
a new folder (or a new process). The version hashes the file's content only, so an unedited copy gives the same
versions, and the same code versions, as `prompts/`.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"
PROMPTS_ENV = "LGT_PROMPTS"


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str  # "<name>@<sha256[:12]>"
    template: jinja2.Template

    def render(self, **values) -> str:
        return self.template.render(**values).strip()


def prompts_dir() -> Path:
    """The folder prompts are read from: $LGT_PROMPTS, else the repository's `prompts/`."""
    chosen = os.environ.get(PROMPTS_ENV)
    return Path(chosen).expanduser().resolve() if chosen else PROMPTS_DIR


@cache
def _environment(folder: Path) -> jinja2.Environment:
    """One Jinja2 environment per folder, so `{% include %}` and the templates come from the same place."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,  # a missing variable is an error, not an empty string
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def load_prompt(name: str) -> Prompt:
    """The prompt `name` from `prompts_dir()`."""
    return _load(prompts_dir(), name)


@cache  # keyed by folder and name: two folders never share a cached prompt
def _load(folder: Path, name: str) -> Prompt:
    if not folder.is_dir():
        where = f" (${PROMPTS_ENV})" if folder != PROMPTS_DIR else ""
        raise FileNotFoundError(f"the prompts folder {folder}{where} does not exist or is not a folder")
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"prompt {name!r} not found in {folder}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return Prompt(name, f"{name.removesuffix('.j2')}@{digest}", _environment(folder).get_template(name))
