"""Test data: images that show what their Chinese caption says, written in the final shard format.

Coloured shapes (several of one kind per image) at random positions, sizes and rotations on varied
backgrounds; captions name the count, colour and shape through several templates. Held-out images
go to an image folder (one sub-folder per class) for zero-shot evaluation.
"""

from __future__ import annotations

import io
import json
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

from shards.format import AtomicTarWriter, sample_members

from shards.atomic import write_json_atomic

COLOURS = {"红色": (220, 30, 30), "绿色": (30, 170, 40), "蓝色": (30, 60, 220), "黄色": (240, 210, 20),
           "紫色": (150, 40, 180)}
SHAPES = ["圆形", "正方形", "三角形", "五角星", "十字"]
BACKGROUNDS = {"白色": (245, 245, 245), "灰色": (128, 128, 128), "黑色": (20, 20, 20),
               "米色": (235, 220, 190), "浅蓝色": (190, 215, 235)}
NUMBERS = ["一", "两", "三"]
TEMPLATES = [
    "{n}个{c}的{s}",
    "画面中有{n}个{c}{s}",
    "{bg}背景上的{c}{s}",
    "一张图片，里面是{c}的{s}，共{n}个",
    "{c}{s}图案，{bg}底",
    "这是{n}个{s}，颜色是{c}",
]


def _polygon(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple[float, float]]:
    if shape == "正方形":
        pts = [(math.cos(angle + math.pi / 4 + k * math.pi / 2), math.sin(angle + math.pi / 4 + k * math.pi / 2))
               for k in range(4)]
    elif shape == "三角形":
        pts = [(math.cos(angle + k * 2 * math.pi / 3), math.sin(angle + k * 2 * math.pi / 3)) for k in range(3)]
    elif shape == "五角星":
        pts = [((1.0 if k % 2 == 0 else 0.42) * math.cos(angle + k * math.pi / 5),
                (1.0 if k % 2 == 0 else 0.42) * math.sin(angle + k * math.pi / 5)) for k in range(10)]
    elif shape == "十字":
        w = 0.33
        base = [(w, 1), (w, w), (1, w), (1, -w), (w, -w), (w, -1), (-w, -1), (-w, -w), (-1, -w), (-1, w), (-w, w), (-w, 1)]
        ca, sa = math.cos(angle), math.sin(angle)
        pts = [(x * ca - y * sa, x * sa + y * ca) for x, y in base]
    else:
        raise ValueError(shape)
    return [(cx + r * x, cy + r * y) for x, y in pts]


def draw_image(colour: str, shape: str, count: int, background: str, rng: random.Random, size: int = 80) -> bytes:
    bg = tuple(max(0, min(255, v + rng.randint(-12, 12))) for v in BACKGROUNDS[background])
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    fill = tuple(max(0, min(255, v + rng.randint(-20, 20))) for v in COLOURS[colour])
    for _ in range(count):
        r = rng.uniform(0.16, 0.28) * size
        cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
        if shape == "圆形":
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        else:
            d.polygon(_polygon(shape, cx, cy, r, rng.uniform(0, 2 * math.pi)), fill=fill)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def caption(colour: str, shape: str, count: int, background: str, rng: random.Random) -> str:
    return rng.choice(TEMPLATES).format(n=NUMBERS[count - 1], c=colour, s=shape, bg=background)


def random_sample(rng: random.Random, size: int = 80) -> tuple[bytes, str, dict]:
    colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
    count, background = rng.randint(1, 3), rng.choice(list(BACKGROUNDS))
    meta = {"colour": colour, "shape": shape, "count": count, "background": background}
    return draw_image(colour, shape, count, background, rng, size), caption(colour, shape, count, background, rng), meta


def write_shards(directory: str | Path, n_samples: int, per_shard: int, seed: int, size: int = 80,
                 key_prefix: str = "") -> list[Path]:
    """Final-format shards: NNNNNN.tar (+ sizes.json). Returns the tar paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths, sizes = [], {}
    for shard, start in enumerate(range(0, n_samples, per_shard)):
        path = directory / f"{shard:06d}.tar"
        with AtomicTarWriter(path) as w:
            for i in range(start, min(n_samples, start + per_shard)):
                jpg, cap, meta = random_sample(rng, size)
                key = f"{key_prefix}{i:09d}"
                w.write_sample(key, sample_members(jpg, cap, dict(meta, key=key, caption=cap)))
        sizes[path.name] = w.count
        paths.append(path)
    write_json_atomic(directory / "sizes.json", sizes)
    return paths


def write_class_folders(directory: str | Path, per_class: int, seed: int, attribute: str, size: int = 80) -> Path:
    """Held-out zero-shot images, one folder per class, and classnames.txt ("folder<TAB>name").

    attribute: "colour_shape" (25 classes), "shape" (5) or "colour" (5); the other attributes vary.
    """
    directory = Path(directory)
    rng = random.Random(seed)
    if attribute == "colour_shape":
        classes = [(c, s) for c in COLOURS for s in SHAPES]
        names = [f"{c}{s}" for c, s in classes]
    elif attribute == "shape":
        classes = [(None, s) for s in SHAPES]
        names = list(SHAPES)
    elif attribute == "colour":
        classes = [(c, None) for c in COLOURS]
        names = [f"{c}图形" for c in COLOURS]
    else:
        raise ValueError(attribute)
    lines = []
    for idx, ((colour, shape), name) in enumerate(zip(classes, names)):
        folder = directory / f"class_{idx:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            c = colour or rng.choice(list(COLOURS))
            s = shape or rng.choice(SHAPES)
            jpg = draw_image(c, s, rng.randint(1, 3), rng.choice(list(BACKGROUNDS)), rng, size)
            (folder / f"{j:04d}.jpg").write_bytes(jpg)
        lines.append(f"{folder.name}\t{name}")
    f = directory / "classnames.txt"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f


def write_bad_shard(path: str | Path) -> Path:
    """A shard whose samples are all unusable: broken JPEG, missing caption, empty caption."""
    path = Path(path)
    with AtomicTarWriter(path) as w:
        w.write_sample("bad000001", {"jpg": b"not a jpeg at all", "txt": "坏图片".encode()})
        w.write_sample("bad000002", {"jpg": draw_image("红色", "圆形", 1, "白色", random.Random(0))})
        w.write_sample("bad000003", {"jpg": draw_image("红色", "圆形", 1, "白色", random.Random(1)), "txt": b"  "})
        w.write_sample("bad000004", {"txt": "没有图片".encode(), "json": json.dumps({"caption": "x"}).encode()})
    return path
