"""Seeded procedural scenes: shapes drawn with PIL, exact boxes, a dense caption.

Every attribute is known by construction, so later stages can ask verifiable
questions about it. A scene is a pure function of (seed, shard, index, params).
Boxes are read back from each object's rasterised mask (amodal: the whole
shape, also where a later object covers it), so they are exact to the pixel.
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "orange": (245, 133, 24),
    "yellow": (238, 205, 30),
    "green": (44, 160, 44),
    "blue": (31, 90, 210),
    "purple": (134, 62, 186),
    "pink": (240, 120, 185),
    "brown": (128, 78, 38),
    "gray": (127, 127, 127),
    "black": (20, 20, 20),
    "white": (250, 250, 250),
    "cyan": (30, 200, 215),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "light gray": (214, 214, 214),
    "beige": (236, 226, 198),
    "pale blue": (204, 222, 242),
    "mint green": (208, 236, 214),
    "dark slate": (58, 66, 80),
}
SHAPES = ("circle", "square", "triangle", "star", "hexagon", "pentagon", "diamond", "ring", "cross", "rectangle")
TEXTURES = ("plain", "metallic", "striped", "dotted", "checkered")
SIZES = {"small": (0.07, 0.10), "medium": (0.13, 0.18), "large": (0.22, 0.28)}  # side / min(W, H)

DIFFICULTY = {
    # min visible fraction of every object, textures, background, rotation
    "easy": dict(min_visible=1.0, textures=("plain", "metallic"), floor=False, max_rotation=0),
    "medium": dict(min_visible=0.75, textures=TEXTURES, floor=False, max_rotation=15),
    "hard": dict(min_visible=0.5, textures=TEXTURES, floor=True, max_rotation=45),
}

NUMBER_WORDS = "zero one two three four five six seven eight nine ten eleven twelve".split()


@dataclass
class SceneObject:
    object_id: str
    shape: str
    color: str
    texture: str
    size: str
    bbox: tuple[int, int, int, int]  # x1, y1, x2, y2, pixels, exclusive end
    z: int
    pixels: int  # mask area
    visible: int = 0  # pixels not covered by later objects
    mask: np.ndarray | None = field(default=None, repr=False)  # bool, bbox-sized

    @property
    def label(self) -> str:
        return self.shape

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.bbox
        return (x1 + x2) / 2, (y1 + y2) / 2

    @property
    def area(self) -> int:
        x1, y1, x2, y2 = self.bbox
        return (x2 - x1) * (y2 - y1)

    @property
    def visible_fraction(self) -> float:
        return self.visible / self.pixels if self.pixels else 0.0

    def attributes(self) -> dict[str, str]:
        return {
            "color": self.color,
            "shape": self.shape,
            "texture": self.texture,
            "size": self.size,
            "z_order": str(self.z),
            "visible_fraction": f"{self.visible_fraction:.3f}",
        }


@dataclass
class Scene:
    width: int
    height: int
    background: str
    floor: bool
    objects: list[SceneObject]
    occlusions: list[tuple[str, str, int]]  # (front id, behind id, covered pixels)
    seed_key: str


def scene_rng(seed: int, shard: int, index: int) -> random.Random:
    # str seeds hash with SHA-512 in CPython: stable across processes and runs
    return random.Random(f"lgt-scene:{seed}:{shard}:{index}")


def _polygon(shape: str, s: float, rot: float) -> list[tuple[float, float]] | None:
    """Vertices in a box of side s centred at 0; None for round shapes."""
    r = s / 2

    def regular(k: int, radius: float, phase: float) -> list[tuple[float, float]]:
        return [
            (radius * math.cos(phase + 2 * math.pi * i / k), radius * math.sin(phase + 2 * math.pi * i / k))
            for i in range(k)
        ]

    if shape == "square":
        pts = [(-r, -r), (r, -r), (r, r), (-r, r)]
    elif shape == "rectangle":
        pts = [(-r, -r * 0.55), (r, -r * 0.55), (r, r * 0.55), (-r, r * 0.55)]
    elif shape == "triangle":
        pts = regular(3, r, -math.pi / 2)
    elif shape == "pentagon":
        pts = regular(5, r, -math.pi / 2)
    elif shape == "hexagon":
        pts = regular(6, r, 0)
    elif shape == "diamond":
        pts = [(0, -r), (r * 0.7, 0), (0, r), (-r * 0.7, 0)]
    elif shape == "star":
        outer, inner = regular(5, r, -math.pi / 2), regular(5, r * 0.45, -math.pi / 2 + math.pi / 5)
        pts = [p for pair in zip(outer, inner) for p in pair]
    elif shape == "cross":
        a = r * 0.34
        pts = [
            (-a, -r),
            (a, -r),
            (a, -a),
            (r, -a),
            (r, a),
            (a, a),
            (a, r),
            (-a, r),
            (-a, a),
            (-r, a),
            (-r, -a),
            (-a, -a),
        ]
    else:
        return None
    c, sn = math.cos(rot), math.sin(rot)
    return [(x * c - y * sn, x * sn + y * c) for x, y in pts]


def _mask(shape: str, side: int, rot_deg: float) -> Image.Image:
    """The shape's mask on a canvas just big enough for any rotation."""
    pad = int(side * 0.75) + 2
    canvas = Image.new("1", (2 * pad, 2 * pad), 0)
    d = ImageDraw.Draw(canvas)
    pts = _polygon(shape, side, math.radians(rot_deg))
    if pts is None:
        r = side / 2
        d.ellipse((pad - r, pad - r, pad + r, pad + r), fill=1)
        if shape == "ring":
            h = r * 0.5
            d.ellipse((pad - h, pad - h, pad + h, pad + h), fill=0)
    else:
        d.polygon([(pad + x, pad + y) for x, y in pts], fill=1)
    return canvas.crop(canvas.getbbox())


def _shade(rgb: tuple[int, int, int], f: float) -> tuple[int, int, int]:
    if f >= 1:
        return tuple(int(c + (255 - c) * (f - 1)) for c in rgb)  # type: ignore[return-value]
    return tuple(int(c * f) for c in rgb)  # type: ignore[return-value]


def _fill(texture: str, rgb: tuple[int, int, int], w: int, h: int) -> Image.Image:
    img = Image.new("RGB", (w, h), rgb)
    d = ImageDraw.Draw(img)
    other = _shade(rgb, 0.55) if sum(rgb) > 200 else _shade(rgb, 1.6)
    step = max(6, min(w, h) // 5)
    if texture == "striped":
        for k in range(-h, w, step):
            d.line([(k, 0), (k + h, h)], fill=other, width=max(2, step // 3))
    elif texture == "dotted":
        rad = max(1, step // 5)
        for y in range(step // 2, h, step):
            for x in range(step // 2, w, step):
                d.ellipse((x - rad, y - rad, x + rad, y + rad), fill=other)
    elif texture == "checkered":
        for y in range(0, h, step):
            for x in range((y // step) % 2 * step, w, 2 * step):
                d.rectangle((x, y, x + step - 1, y + step - 1), fill=other)
    elif texture == "metallic":
        # a vertical sheen: bright band fading to a darker rim
        t = np.abs(np.linspace(-1.0, 1.0, w, dtype=np.float32))[None, :, None]
        base = np.asarray(rgb, dtype=np.float32)[None, None, :]
        bright = base + (255 - base) * 0.65
        dark = base * 0.6
        col = np.where(t < 0.3, bright - (bright - base) * (t / 0.3), base - (base - dark) * ((t - 0.3) / 0.7))
        img = Image.fromarray(np.repeat(col, h, axis=0).clip(0, 255).astype(np.uint8), "RGB")
    return img


def _color_ok(color: str, background: str) -> bool:
    a, b = COLORS[color], BACKGROUNDS[background]
    return sum((x - y) ** 2 for x, y in zip(a, b)) > 90**2


def generate_scene(
    seed: int,
    shard: int,
    index: int,
    width: int = 512,
    height: int = 512,
    objects: tuple[int, int] = (3, 12),
    difficulty: str = "medium",
) -> Scene:
    rng = scene_rng(seed, shard, index)
    cfg = DIFFICULTY[difficulty]
    background = rng.choice(list(BACKGROUNDS))
    colors = [c for c in COLORS if _color_ok(c, background)]
    n = rng.randint(*objects)
    side_unit = min(width, height)
    labels = np.zeros((height, width), dtype=np.int16)  # 0 = background, k = object k (1-based)
    placed: list[SceneObject] = []
    occlusions: dict[tuple[int, int], int] = {}
    min_vis = cfg["min_visible"]

    for k in range(n):
        for attempt in range(60):
            size = rng.choices(list(SIZES), weights=(3, 3, 2) if attempt < 30 else (1, 0, 0))[0]
            lo, hi = SIZES[size]
            side = max(8, int(side_unit * rng.uniform(lo, hi)))
            shape = rng.choice(SHAPES)
            rot = rng.uniform(-cfg["max_rotation"], cfg["max_rotation"]) if shape not in ("circle", "ring") else 0.0
            m = np.asarray(_mask(shape, side, rot), dtype=bool)
            mh, mw = m.shape
            if mw >= width or mh >= height:
                continue
            x1, y1 = rng.randint(0, width - mw), rng.randint(0, height - mh)
            crop = labels[y1 : y1 + mh, x1 : x1 + mw]
            under = crop[m]
            if min_vis >= 1.0 and under.any():
                continue  # easy scenes: no overlap at all
            covered = np.bincount(under, minlength=len(placed) + 1)[1:]
            ok = all((o.visible - int(c)) >= min_vis * o.pixels for o, c in zip(placed, covered) if c)
            if not ok:
                continue
            for j, c in enumerate(covered):
                if c:
                    placed[j].visible -= int(c)
                    occlusions[(k, j)] = int(c)
            crop[m] = k + 1
            obj = SceneObject(
                object_id=str(k),
                shape=shape,
                color=rng.choice(colors),
                texture=rng.choice(cfg["textures"]),
                size=size,
                bbox=(x1, y1, x1 + mw, y1 + mh),
                z=k,
                pixels=int(m.sum()),
                mask=m,
            )
            obj.visible = obj.pixels
            placed.append(obj)
            break
    # the last object may be placed with fewer tries; keep the minimum count honest
    if len(placed) < objects[0]:
        raise RuntimeError(f"could not place {objects[0]} objects in a {width}x{height} scene (seed {seed})")
    occ = [(placed[a].object_id, placed[b].object_id, px) for (a, b), px in sorted(occlusions.items())]
    return Scene(width, height, background, cfg["floor"], placed, occ, f"{seed}:{shard}:{index}")


def render(scene: Scene, compress_level: int = 1) -> bytes:
    """PNG bytes of the scene."""
    bg = BACKGROUNDS[scene.background]
    img = Image.new("RGB", (scene.width, scene.height), bg)
    d = ImageDraw.Draw(img)
    if scene.floor:  # a faint tiled floor: clutter for the hard setting
        line = _shade(bg, 0.9)
        step = max(16, scene.width // 12)
        for x in range(0, scene.width, step):
            d.line([(x, 0), (x, scene.height)], fill=line)
        for y in range(0, scene.height, step):
            d.line([(0, y), (scene.width, y)], fill=line)
    for o in scene.objects:
        x1, y1, x2, y2 = o.bbox
        w, h = x2 - x1, y2 - y1
        mask = Image.fromarray(o.mask.astype(np.uint8) * 255, "L")
        img.paste(_fill(o.texture, COLORS[o.color], w, h), (x1, y1), mask)
        # a darker rim so touching shapes of one colour stay apart
        rim = Image.fromarray((o.mask & ~_erode(o.mask)).astype(np.uint8) * 255, "L")
        img.paste(_shade(COLORS[o.color], 0.5 if o.color != "black" else 1.8), (x1, y1, x2, y2), rim)
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


def _erode(m: np.ndarray) -> np.ndarray:
    e = m.copy()
    e[1:, :] &= m[:-1, :]
    e[:-1, :] &= m[1:, :]
    e[:, 1:] &= m[:, :-1]
    e[:, :-1] &= m[:, 1:]
    return e
