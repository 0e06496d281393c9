"""Prompts are Jinja2 files in `prompts/`; a prompt's version is the hash of its file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(PROMPTS_DIR),
    undefined=jinja2.StrictUndefined,  # a missing variable is an error, not an empty string
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=False,
    autoescape=False,
)


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str  # "<name>@<sha256[:12]>"
    template: jinja2.Template

    def render(self, **values) -> str:
        return self.template.render(**values).strip()


@cache
def load_prompt(name: str) -> Prompt:
    path = PROMPTS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"prompt {name!r} not found in {PROMPTS_DIR}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return Prompt(name, f"{name.removesuffix('.j2')}@{digest}", _env.get_template(name))
