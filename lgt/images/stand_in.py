"""The text a model without vision reads instead of an image: the caption and the object list, or the caption alone.

Boxes are given as fractions of the width and height (x1, y1, x2, y2), so the
text does not depend on the image's resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def object_list(row: dict[str, Any], keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The objects of an `images` row with normalised boxes, as prompts render them.

    `keys`: the attributes to show (the recipe's question attributes); None shows all.
    """
    w, h = float(row["width"]), float(row["height"])
    out = []
    for o in row["objects"]:
        x1, y1, x2, y2 = (float(v) for v in o["bbox_xyxy"])
        attrs = {a["key"]: a["value"] for a in o["attributes"] or ()}
        out.append(
            {
                "id": o["object_id"],
                "label": o["label"],
                "attributes": {k: v for k, v in attrs.items() if keys is None or k in keys},
                "box": [round(x1 / w, 3), round(y1 / h, 3), round(x2 / w, 3), round(y2 / h, 3)],
            }
        )
    return out


def object_lines(row: dict[str, Any], keys: Sequence[str] | None = None) -> str:
    lines = []
    for o in object_list(row, keys):
        attrs = ", ".join(f"{k}={v}" for k, v in o["attributes"].items())
        box = ", ".join(f"{v:.3f}" for v in o["box"])
        lines.append(f"- {o['id']}: {o['label']}{' (' + attrs + ')' if attrs else ''} at [{box}]")
    return "\n".join(lines)


def stand_in(row: dict[str, Any], keys: Sequence[str] | None = None, objects: bool = True) -> str:
    """What a text-only model is told about the image: the caption, and unless `objects` is false the object list."""
    caption = f"Image description: {row['caption']}"
    if not objects:
        return caption
    return f"{caption}\nObjects (boxes as fractions of width and height, x1, y1, x2, y2):\n{object_lines(row, keys)}"
