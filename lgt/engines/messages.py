"""Request messages in a backend's own shape: one converter, the image part's rendering chosen per backend.

A message's content is a string or a list of parts (`{"type": "text", "text"}` or
`{"type": "image", "image": ImageInput}`); only the image parts differ between backends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ImagePart = Callable[[dict[str, Any]], dict[str, Any]]  # an image part -> the backend's part


def image_placeholder(part: dict[str, Any]) -> dict[str, Any]:
    """A chat template's image slot; the processor receives the pixels separately."""
    return {"type": "image"}


def image_url(part: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI chat format: the image inline as a data URL."""
    return {"type": "image_url", "image_url": {"url": part["image"].data_url()}}


def convert_content(content: Any, image: ImagePart) -> Any:
    """A string (or None) stays as it is; a list of parts becomes text parts and `image(part)` parts."""
    if not isinstance(content, list):
        return content
    return [image(p) if p.get("type") == "image" else {"type": "text", "text": p["text"]} for p in content]


def convert_messages(messages: list[dict[str, Any]] | None, image: ImagePart) -> list[dict[str, Any]]:
    """Each message as role and converted content (other keys are dropped)."""
    return [{"role": m["role"], "content": convert_content(m.get("content"), image)} for m in messages or []]


def render_prompt(templater, request) -> str:
    """The exact text a model continues: its chat template over the messages (+ the prefill, continued), or the raw
    prompt + prefill. `templater` is the model's tokenizer or processor; images stay placeholders."""
    if request.prompt is not None:
        return request.prompt + request.prefill
    msgs = convert_messages(request.messages, image_placeholder)
    if request.prefill:
        msgs.append({"role": "assistant", "content": request.prefill})
        return templater.apply_chat_template(msgs, tokenize=False, continue_final_message=True)
    return templater.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
