"""A COCO-format dataset with the flaws of real annotations, and the truth of what each image shows.

Images are synthetic scenes with COCO-like labels. Each image gets one flaw, in turn:
- a crowd region: all but one instance of a label boxed as one `iscrowd` region (a stadium of people);
- a group box: every instance of a group-boxed label (oranges, books, donuts) in one box (a bunch of bananas);
- a missing annotation: one instance of a label with several left unboxed, while the caption counts them all;
- a tiny object: a 5x5 figure, annotated, that a person finds only by elimination.
`truth` holds every object as drawn (crowd members and unboxed ones included) with the pixels it covers; a
question's gold must agree with the truth, not with the annotations.
"""

from __future__ import annotations

import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from lgt.images.scenes import generate_scene, render

LABELS = {
    "circle": "orange",
    "square": "book",
    "triangle": "kite",
    "star": "umbrella",
    "hexagon": "clock",
    "pentagon": "cup",
    "diamond": "vase",
    "ring": "donut",
    "cross": "bird",
    "rectangle": "bus",
}
GROUP_BOXED = ("orange", "book", "donut")
FLAWS = ("crowd_region", "group_box", "missing_annotation", "tiny_object")
NUMBERS = "zero one two three four five six seven eight nine ten eleven twelve".split()
TINY = 5


def _plural(label: str) -> str:
    return label + ("es" if label.endswith(("s", "x", "ch", "sh")) else "s")


def caption_of(labels: list[str]) -> str:
    counts = Counter(labels)
    parts = [f"{NUMBERS[n]} {_plural(lab) if n > 1 else lab}" for lab, n in sorted(counts.items())]
    return "A picture with " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]) + "."


@dataclass
class CocoFixture:
    images: Path
    instances: Path
    captions: Path
    truth: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> {width, height, objects, _areas}
    flaws: Counter = field(default_factory=Counter)  # how many of each flaw were written
    tiny: dict[str, str] = field(default_factory=dict)  # file name -> the tiny object's label


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def write_coco_fixture(root: Path, n_images: int = 80, seed: int = 11, size: int = 320) -> CocoFixture:
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    fx = CocoFixture(root / "images", root / "instances.json", root / "captions.json")
    cats = {lab: i + 1 for i, lab in enumerate(sorted(set(LABELS.values())))}
    images, anns, caps = [], [], []
    next_id = 0
    for i in range(n_images):
        scene = generate_scene(seed, 0, i, size, size, (4, 10), "medium")
        img = Image.open(io.BytesIO(render(scene))).convert("RGB")
        truth = [
            {"id": o.object_id, "label": LABELS[o.shape], "box": tuple(o.bbox), "area": o.visible}
            for o in scene.objects
        ]
        flaw = FLAWS[i % len(FLAWS)]
        by_label: dict[str, list[dict]] = defaultdict(list)
        for t in truth:
            by_label[t["label"]].append(t)
        annotated = [{**t, "crowd": False} for t in truth]
        if flaw == "tiny_object":
            x, y = size - TINY - 2, size - TINY - 2
            ImageDraw.Draw(img).rectangle([x, y, x + TINY - 1, y + TINY - 1], fill=(20, 20, 20))
            tiny = {"id": "tiny", "label": "bird", "box": (x, y, x + TINY, y + TINY), "area": TINY * TINY}
            truth.append(tiny)
            annotated.append({**tiny, "crowd": False})
            fx.tiny[f"{i:04d}.png"] = "bird"
            fx.flaws[flaw] += 1
        elif flaw == "group_box":
            several = [lab for lab in GROUP_BOXED if len(by_label[lab]) >= 2]
            if several:
                members = by_label[several[0]]
                annotated = [a for a in annotated if a["label"] != several[0]]
                box = _union([m["box"] for m in members])
                annotated.append(
                    {"label": several[0], "box": box, "area": sum(m["area"] for m in members), "crowd": False}
                )
                fx.flaws[flaw] += 1
        else:
            several = [lab for lab in sorted(by_label) if lab not in GROUP_BOXED and len(by_label[lab]) >= 2]
            if several and flaw == "crowd_region":
                first, *rest = by_label[several[0]]
                gone = {m["id"] for m in rest}
                annotated = [a for a in annotated if a["id"] not in gone]
                box = _union([m["box"] for m in rest])
                annotated.append({"label": several[0], "box": box, "area": sum(m["area"] for m in rest), "crowd": True})
                fx.flaws[flaw] += 1
            elif several:  # missing_annotation
                gone = by_label[several[0]][-1]["id"]
                annotated = [a for a in annotated if a["id"] != gone]
                fx.flaws[flaw] += 1
        name = f"{i:04d}.png"
        img.save(fx.images / name)
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        caps.append({"id": i + 1, "image_id": i + 1, "caption": caption_of([t["label"] for t in truth])})
        for a in annotated:
            x1, y1, x2, y2 = a["box"]
            next_id += 1
            anns.append(
                {
                    "id": next_id,
                    "image_id": i + 1,
                    "category_id": cats[a["label"]],
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": float(a["area"]),
                    "iscrowd": int(a["crowd"]),
                }
            )
        fx.truth[name] = {
            "width": size,
            "height": size,
            "objects": [
                {"object_id": f"t{t['id']}", "label": t["label"], "bbox_xyxy": list(t["box"]), "attributes": []}
                for t in truth
            ],
            "_areas": {f"t{t['id']}": t["area"] for t in truth},
        }
    categories = [{"id": c, "name": lab, "supercategory": "thing"} for lab, c in cats.items()]
    fx.instances.write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    fx.captions.write_text(json.dumps({"annotations": caps}))
    (root / "truth.json").write_text(json.dumps(fx.truth))  # for benchmarks/fidelity.py --coco
    return fx
