"""The engine API's data: requests in, results out.

A request is chat messages (text and images) or a raw prompt, an optional
prefill that the assistant turn starts with, and sampling settings. A result
holds the `n` samples, each with its finish reason, token counts, latency and,
where it failed after retries, an error kind. Images carry an optional text
stand-in (the caption and object list) used when the model has no vision.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

from lgt.engines.settings import Sampling

__all__ = ["ImageInput", "Request", "Sample", "Result", "Call"]


@dataclass(frozen=True)
class ImageInput:
    data: bytes  # encoded image (PNG, JPEG, ...)
    stand_in: str | None = None  # what a text-only model reads instead

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def data_url(self) -> str:
        mime = "image/png" if self.data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
        return f"data:{mime};base64,{base64.b64encode(self.data).decode()}"


@dataclass
class Request:
    messages: list[dict[str, Any]] | None = None  # [{"role", "content": str | [{"type": "text"|"image", ...}]}]
    prompt: str | None = None
    prefill: str = ""
    sampling: Sampling = field(default_factory=Sampling)

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("a request has either messages or a prompt")

    def images(self) -> list[ImageInput]:
        return [
            part["image"]
            for m in self.messages or []
            if isinstance(m.get("content"), list)
            for part in m["content"]
            if part.get("type") == "image"
        ]


@dataclass
class Sample:
    text: str
    finish_reason: str | None  # "stop", "length", or None when it failed
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: str | None = None  # kind: http_429, http_5xx, connection, timeout, bad_request, no_vision, backend
    error_detail: str | None = None
    cached: bool = False
    key: str = ""  # the call's cache key; under a thinking budget, the last phase's
    forced_close: bool = False  # the thinking budget ran out and the engine closed the thought
    forced_continue: bool = False  # the thought ended before thinking.min_tokens and the engine made it go on

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failed(cls, kind: str, exc: BaseException) -> Sample:
        return cls("", None, error=kind, error_detail=f"{type(exc).__name__}: {str(exc)[:500]}")


@dataclass
class Result:
    samples: list[Sample]
    grounding: str  # "image": the model saw the image; "caption": its text stand-in; "text": no image involved
    ban_enforced: bool = False  # the request's banned_words were banned at decode time (none: False)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.samples]


@dataclass
class Call:
    """One sample of one request, as sent to a backend."""

    index: int  # the request's position
    sample_index: int
    request: Request  # after grounding: images kept only for vision models
    key: str
    seed: int  # per-sample seed: the request's seed + sample index


def word_forms(word: str) -> list[str]:
    """The casings a banned word is banned in: as written, capitalized, lower case (each backend adds spacing)."""
    return sorted({word, word.capitalize(), word.lower()})
