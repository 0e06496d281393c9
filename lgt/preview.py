"""Previews people look at: thumbnails with their boxes drawn, as markdown."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from PIL import Image, ImageDraw

BOX_COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324")


def thumbnail_png(
    image_bytes: bytes, objects: list[dict[str, Any]], size: int = 256, highlight: set[str] | None = None
) -> bytes:
    """A thumbnail with every box drawn; with `highlight`, those objects in thick red and the rest thin grey."""
    img = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    scale = size / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))))
    d = ImageDraw.Draw(img)
    for i, o in enumerate(objects):
        x1, y1, x2, y2 = (float(v) * scale for v in o["bbox_xyxy"])
        if highlight is None:
            color, width = BOX_COLORS[i % len(BOX_COLORS)], 2
        else:
            color, width = ("#ff0000", 3) if o["object_id"] in highlight else ("#9e9e9e", 1)
        d.rectangle((x1, y1, x2, y2), outline=color, width=width)
        if highlight is None or o["object_id"] in highlight:
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


def questions_markdown(questions: list[dict[str, Any]], images: dict[str, dict[str, Any]]) -> str:
    """One block per question: the image with its grounding objects highlighted, the question and options."""
    parts = []
    for q in questions:
        img = images.get(q["image_id"])
        pic = ""
        if img is not None:
            png = thumbnail_png(img["image"]["bytes"], img["objects"], 224, set(q["grounding_ids"]))
            pic = f"![{q['image_id'][:12]}](data:image/png;base64,{base64.b64encode(png).decode()})\n\n"
        if "options" in q:  # a formatted question: lettered options, the gold marked
            opts = "\n".join(
                f"- **{'ABCD'[i]}.** {html.escape(o)}{' ✅' if 'ABCD'[i] == q['gold_letter'] else ''}"
                for i, o in enumerate(q["options"])
            )
        else:
            opts = "\n".join([f"- {html.escape(q['answer'])} ✅"] + [f"- {html.escape(d)}" for d in q["distractors"]])
        parts.append(
            f"**{q['family']}** (stage {q['stage']}, {q['hops']} hop{'s' if q['hops'] > 1 else ''}, "
            f"grounding {', '.join(q['grounding_ids']) or '-'})\n\n{pic}{html.escape(q['question'])}\n\n{opts}\n"
        )
    return "\n---\n\n".join(parts) if parts else "_no questions in this partition_"


def funnel_markdown(funnel: dict[str, int], rejects: dict[str, int]) -> str:
    """The yield at each step, then the rejects by reason."""
    lines = ["| step | count |", "|---|---:|"] + [f"| {k} | {v} |" for k, v in funnel.items()]
    if rejects:
        lines += ["", "| rejected or skipped, by reason | count |", "|---|---:|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(rejects.items(), key=lambda kv: (-kv[1], kv[0])) if v]
    return "\n".join(lines)


def funnel_line(funnel: dict[str, int], rejects: dict[str, int], limit: int = 8, dropped: str = "dropped") -> str:
    """The funnel and the largest reject/skip reasons, largest first, on one log line:
    "images 73 -> template/rendered 956; dropped 5,043: skip/ambiguous_reference 5,015, skip/near_tie 28"."""
    steps = " -> ".join(f"{k} {v:,}" for k, v in funnel.items())
    reasons = sorted(((k, v) for k, v in rejects.items() if v), key=lambda kv: (-kv[1], kv[0]))
    if not reasons:
        return f"{steps}; nothing {dropped}"
    shown = ", ".join(f"{k} {v:,}" for k, v in reasons[:limit])
    more = f" and {len(reasons) - limit} more" if len(reasons) > limit else ""
    return f"{steps}; {dropped} {sum(v for _, v in reasons):,}: {shown}{more}"


def traces_markdown(rows: list[dict[str, Any]], text_field: str, label_field: str, chars: int = 1200) -> str:
    """A block per trace: its label (category, consistency, ...), the answer and the text, cut at `chars`."""
    parts = []
    for r in rows:
        text = r[text_field] if len(r[text_field]) <= chars else r[text_field][:chars] + " …"
        answer = r.get("answer") or r.get("final_answer") or ""
        parts.append(
            f"**{r[label_field]}** · question {r['question_id'][:12]} · answer `{html.escape(str(answer))}`\n\n"
            f"```text\n{text}\n```\n"
        )
    return "\n---\n\n".join(parts) if parts else "_nothing kept in this partition_"
