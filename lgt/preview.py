"""Previews people look at: thumbnails with their boxes drawn, as markdown."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from PIL import Image, ImageDraw

BOX_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324")


def thumbnail_png(image_bytes: bytes, objects: list[dict[str, Any]], size: int = 256) -> bytes:
    img = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    scale = size / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    d = ImageDraw.Draw(img)
    for i, o in enumerate(objects):
        x1, y1, x2, y2 = (float(v) * scale for v in o["bbox_xyxy"])
        color = BOX_COLORS[i % len(BOX_COLORS)]
        d.rectangle((x1, y1, x2, y2), outline=color, width=2)
        d.text((x1 + 2, y1 + 1), f"{o['object_id']}:{o['label']}", fill=color)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return out.getvalue()


def images_markdown(rows: list[dict[str, Any]], caption_chars: int = 600) -> str:
    """A markdown block per image: the thumbnail with boxes, then the caption."""
    parts = []
    for r in rows:
        b64 = base64.b64encode(thumbnail_png(r["image"]["bytes"], r["objects"])).decode()
        cap = r["caption"] if len(r["caption"]) <= caption_chars else r["caption"][:caption_chars] + "..."
        parts.append(
            f"**{r['image_id'][:12]}** ({r['width']}x{r['height']}, {len(r['objects'])} objects)\n\n"
            f"![{r['image_id'][:12]}](data:image/png;base64,{b64})\n\n> {html.escape(cap)}\n"
        )
    return "\n---\n\n".join(parts) if parts else "_no images in this partition_"
